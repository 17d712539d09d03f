package demo

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
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
// measured: every leecher completes both ways and the repeater uploads.
func TestDemoShort(t *testing.T) {
	o := short(t)
	var rounds [3]int
	var last Progress
	o.Progress = func(p Progress) { rounds[p.Round]++; last = p }
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
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
// helper visibly helps, gain > 0.2) and the helper's ratio (goal > 1).
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
