package web_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/btslave/btslave/internal/demo"
	"github.com/btslave/btslave/internal/lab"
)

// demoRoundTimeout bounds each demo round: a round takes about 30 s
// alone, and over a minute beside the repeater package's swarms under
// -race (the suite failed so twice on 2 cores, 2026-12-03); it guards
// against a hang, it measures nothing.
const demoRoundTimeout = 3 * time.Minute

// Ensure the dashboard of "btslave demo --web" shows the demo live in a
// real browser: the helper's traffic reaches the overview's chart and its
// swarm the swarms page while round 2 runs. Saves dashboard-demo.png.
func TestBrowserDemo(t *testing.T) {
	lab.Require(t, "chromium")
	d, err := demo.StartDashboard("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trackerAddr := ln.Addr().String()
	ln.Close()
	round2 := make(chan struct{})
	finished := make(chan struct{})
	o := demo.Options{Size: 2 << 20, PieceLen: 64 << 10, Leechers: 3, SeedUp: 256 << 10, LeechUp: 16 << 10, HelperUp: 1 << 20,
		TrackerAddr: trackerAddr, Timeout: demoRoundTimeout, Dir: t.TempDir(), Helper: d.SetHelper}
	var closed bool
	o.Progress = func(p demo.Progress) {
		d.SetProgress(p)
		if p.Round == 2 && !closed {
			closed = true
			close(round2)
		}
	}
	go func() {
		defer close(finished)
		res, err := demo.Run(context.Background(), o)
		if err != nil {
			t.Errorf("demo: %v", err)
			return
		}
		d.SetResult(res)
	}()
	defer func() { <-finished }()

	ctx, cancel := browser(t)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(d.LoginURL()), chromedp.WaitVisible(chromedp.ID("chart-rate"))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-round2:
	case <-time.After(demoRoundTimeout + 30*time.Second):
		t.Fatal("round 2 did not start")
	}
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`btslave.history.length > 3 && btslave.history[btslave.history.length - 1].up >= 64 * 1024`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("the overview never saw the helper upload: %v", err)
	}
	time.Sleep(2500 * time.Millisecond) // one more poll: a rate point above zero
	legend, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#page-overview .legend`)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(legend, "up 0 B/s") && strings.Contains(legend, "down 0 B/s") {
		t.Logf("legend %q: the last sample moved nothing", legend)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(t), "dashboard-demo.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	doing, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("doing")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doing, "demo.bin") && !strings.Contains(doing, "The demo is over") {
		t.Errorf("the overview does not show the demo's swarm: %q", doing)
	}
}
