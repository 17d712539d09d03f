package demo

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/internal/api"
)

// short is a demo small enough for a unit test: 1 MiB, three leechers.
func short(t *testing.T) Options {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return Options{Size: 1 << 20, PieceLen: 64 << 10, Leechers: 3, SeedUp: 256 << 10, LeechUp: 16 << 10,
		HelperUp: 1 << 20, TrackerAddr: addr, Timeout: 60 * time.Second, Dir: t.TempDir()}
}

// Ensure a shortened demo plays both rounds to the end and reports what it
// measured: every leecher completes both ways and the repeater uploads;
// its dashboard (--web) shows the helper's swarm and the tracker while
// round 2 runs, and the outcome after.
func TestDemoShort(t *testing.T) {
	o := short(t)
	d, err := StartDashboard("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var rounds [3]int
	var last Progress
	var during api.Status
	o.Helper = d.SetHelper
	o.Progress = func(p Progress) {
		rounds[p.Round]++
		last = p
		d.SetProgress(p)
		if p.Round == 2 && p.HelperUp > 0 && len(during.Torrents) == 0 {
			during = d.status(context.Background())
		}
	}
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	d.SetResult(res)
	if len(during.Torrents) != 1 || during.Torrents[0].BytesUploaded <= 0 || during.Tracker == nil || during.Tracker.Torrents != 1 {
		t.Errorf("dashboard status in round 2: torrents %+v, tracker %+v", during.Torrents, during.Tracker)
	}
	if after := d.status(context.Background()); len(after.NextSteps) == 0 || !strings.Contains(after.NextSteps[0], "sooner") {
		t.Errorf("dashboard status after the demo: %q", after.NextSteps)
	}
	// The one-time login link opens the dashboard.
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Get(d.LoginURL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "/pages/10-overview.js") {
		t.Errorf("login link: %s %.200s", resp.Status, body)
	}
	t.Logf("without %+v; with %+v; gain %.2f", res.Without, res.With, res.Gain())
	if rounds[1] == 0 || rounds[2] == 0 {
		t.Errorf("progress calls per round %v", rounds)
	}
	for _, r := range []Round{res.Without, res.With} {
		if r.Completed != o.Leechers || r.Mean <= 0 || r.Max < r.Mean || len(r.Times) != o.Leechers {
			t.Errorf("round %q: %+v", r.Label, r)
		}
	}
	if res.Without.HelperUp != 0 || res.With.HelperUp <= 0 || res.With.HelperDown <= 0 || res.With.Ratio <= 0 {
		t.Errorf("helper figures: without %+v, with %+v", res.Without, res.With)
	}
	for i, f := range last.Leechers {
		if f != 1 {
			t.Errorf("leecher %d at %.2f at the end", i, f)
		}
	}
}

// Ensure a taken dashboard port fails at once with a clear error.
func TestDemoDashboardPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = StartDashboard(ln.Addr().String(), nil)
	if !errors.Is(err, ErrPortTaken) || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("err = %v, want ErrPortTaken naming the address", err)
	}
}

// Ensure a taken tracker port fails the demo at once with a clear error.
func TestDemoPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o := short(t)
	o.TrackerAddr = ln.Addr().String()
	start := time.Now()
	_, err = Run(context.Background(), o)
	if !errors.Is(err, ErrPortTaken) || !strings.Contains(err.Error(), o.TrackerAddr) {
		t.Fatalf("err = %v, want ErrPortTaken naming %s", err, o.TrackerAddr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to fail", d)
	}
}

// BenchmarkDemo plays the full default demo and reports its figures: the
// crowd's mean completion without and with the helper, the gain (goal: the
// helper visibly helps, gain >= 0.1) and the helper's ratio (goal > 1).
// Run it alone: flock /tmp/btslave-bench.lock go test -run '^$' -bench Demo ./internal/demo/
func BenchmarkDemo(b *testing.B) {
	for i := 0; i < b.N; i++ {
		o := Default()
		o.TrackerAddr = "127.0.0.1:0"
		res, err := Run(context.Background(), o)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.Without.Mean.Seconds(), "without-s")
		b.ReportMetric(res.With.Mean.Seconds(), "with-s")
		b.ReportMetric(res.Gain(), "gain")
		b.ReportMetric(res.With.Ratio, "ratio")
	}
}
