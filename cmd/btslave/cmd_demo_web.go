package main

import (
	"context"
	"errors"

	"github.com/btslave/btslave/internal/demo"
	"github.com/btslave/btslave/repeater"
	"github.com/btslave/btslave/tracker"
)

type demoDashboard struct{ url string }

func startDemoDashboard(ctx context.Context, e env, addr string) (*demoDashboard, error) {
	return nil, errors.New("--web: not yet")
}
func (d *demoDashboard) close()                                         {}
func (d *demoDashboard) setHelper(*repeater.Repeater, *tracker.Tracker) {}
func (d *demoDashboard) setProgress(demo.Progress)                      {}
func (d *demoDashboard) setResult(demo.Result)                          {}
