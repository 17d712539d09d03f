package main

import (
	"context"
	"fmt"

	"github.com/btslave/btslave/internal/demo"
)

// demoDashboard is the dashboard of "btslave demo --web".
type demoDashboard struct {
	*demo.Dashboard
	url string
}

func startDemoDashboard(_ context.Context, e env, addr string) (*demoDashboard, error) {
	d, err := demo.StartDashboard(addr, nil)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stdout, "Dashboard: open %s (a one-time login link)\n\n", d.LoginURL())
	return &demoDashboard{Dashboard: d, url: d.URL()}, nil
}

func (d *demoDashboard) close()                      { d.Close() }
func (d *demoDashboard) setProgress(p demo.Progress) { d.SetProgress(p) }
func (d *demoDashboard) setResult(r demo.Result)     { d.SetResult(r) }
