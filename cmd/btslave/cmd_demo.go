package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/demo"
)

func demoCommand() *command {
	o := demo.Default()
	var size, seedUp, leechUp, helperUp string
	var web string
	var plain bool
	return &command{
		name:  "demo",
		short: "watch btslave help a seed-starved swarm, on loopback, in about 90 s",
		long: `demo needs no config and no other program. It starts the embedded tracker,
an in-process seed and a handful of in-process leechers on 127.0.0.1 (DHT,
PEX, LSD, uTP and UPnP off), each with an upload cap that leaves the crowd
short of upload, and runs the swarm twice: first without help, then with
btslave's repeater, the same code the daemon runs. It shows a progress bar
per leecher and the helper's upload, download and ratio, and at the end the
crowd's mean completion time both ways and the helper's ratio. The figures
are measured on this machine, not made up.

With --web ADDR the dashboard stays open on ADDR after the run (Ctrl-C
ends it); the login URL is printed.`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&size, "size", "3MiB", "torrent `size`")
			fs.IntVar(&o.Leechers, "leechers", o.Leechers, "leechers in the crowd")
			fs.StringVar(&seedUp, "seed-up", "384KiB", "the seed's upload cap per second")
			fs.StringVar(&leechUp, "leech-up", "24KiB", "each leecher's upload cap per second")
			fs.StringVar(&helperUp, "helper-up", "1MiB", "btslave's upload cap per second")
			fs.StringVar(&o.TrackerAddr, "tracker", o.TrackerAddr, "the embedded tracker's HTTP listen `address`")
			fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "give up on a round after this long")
			fs.StringVar(&web, "web", "", "keep the dashboard open on this `address` after the run (e.g. 127.0.0.1:7978)")
			fs.BoolVar(&plain, "plain", false, "print a progress line every few seconds instead of redrawing bars (the default when stdout is not a terminal)")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 0 {
				return usageErr("demo takes no arguments")
			}
			for _, f := range []struct {
				s string
				v *int64
				n string
			}{{size, &o.Size, "--size"}, {seedUp, &o.SeedUp, "--seed-up"}, {leechUp, &o.LeechUp, "--leech-up"}, {helperUp, &o.HelperUp, "--helper-up"}} {
				n, err := config.ParseSize(f.s)
				if err != nil || n <= 0 {
					return usageErr("%s %q: want a size such as 6MiB", f.n, f.s)
				}
				*f.v = int64(n)
			}
			if o.Leechers < 1 || o.Leechers > 32 {
				return usageErr("--leechers %d: want 1 to 32", o.Leechers)
			}
			return runDemo(ctx, e, o, web, plain)
		},
	}
}

func runDemo(ctx context.Context, e env, o demo.Options, web string, plain bool) error {
	// Ctrl-C stops the demo cleanly: its clients close, its files go.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	plain = plain || !isTerminal(e.stdout)
	fmt.Fprintf(e.stdout, "btslave demo: a %s torrent, a seed uploading %s/s, %d leechers uploading %s/s each;\n"+
		"btslave may upload %s/s. Round 1 runs without help, round 2 with btslave.\n\n",
		fmtBytes(o.Size), fmtBytes(o.SeedUp), o.Leechers, fmtBytes(o.LeechUp), fmtBytes(o.HelperUp))
	var dash *demoDashboard
	if web != "" {
		var err error
		if dash, err = startDemoDashboard(ctx, e, web); err != nil {
			return err
		}
		defer dash.close()
		o.Helper = dash.SetHelper
	}
	pr := &progressPrinter{w: e.stdout, plain: plain}
	o.Progress = func(p demo.Progress) {
		pr.show(p)
		if dash != nil {
			dash.setProgress(p)
		}
	}
	res, err := demo.Run(ctx, o)
	pr.finish()
	if ctx.Err() != nil {
		return errors.New("demo interrupted")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nThe crowd's mean time to complete: %s without help, %s with btslave (%.0f%% sooner).\n",
		res.Without.Mean.Round(100*time.Millisecond), res.With.Mean.Round(100*time.Millisecond), 100*res.Gain())
	fmt.Fprintf(e.stdout, "The slowest leecher: %s without help, %s with btslave.\n",
		res.Without.Max.Round(100*time.Millisecond), res.With.Max.Round(100*time.Millisecond))
	fmt.Fprintf(e.stdout, "btslave uploaded %s for %s downloaded: ratio %.2f.\n",
		fmtBytes(res.With.HelperUp), fmtBytes(res.With.HelperDown), res.With.Ratio)
	fmt.Fprintf(e.stdout, "\nNext: run the real daemon with 'btslave run', then 'btslave web' for the dashboard.\n")
	if dash != nil {
		dash.setResult(res)
		fmt.Fprintf(e.stdout, "The dashboard stays open on %s (a new one-time login link: %s); Ctrl-C ends it.\n", dash.url, dash.LoginURL())
		<-ctx.Done()
	}
	return nil
}

// progressPrinter draws one bar per leecher, redrawn in place on a
// terminal (or a line every few seconds with plain).
type progressPrinter struct {
	w      io.Writer
	plain  bool
	round  int
	lines  int
	last   time.Time
	latest demo.Progress
}

func (p *progressPrinter) show(pr demo.Progress) {
	if pr.Round != p.round {
		p.finish()
		p.round, p.lines, p.last = pr.Round, 0, time.Time{}
		fmt.Fprintf(p.w, "Round %d: %s\n", pr.Round, pr.Label)
	}
	p.latest = pr
	if p.plain {
		if time.Since(p.last) >= 5*time.Second {
			p.last = time.Now()
			p.line(pr)
		}
		return
	}
	if p.lines > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.lines)
	}
	p.lines = 0
	for i, f := range pr.Leechers {
		fmt.Fprintf(p.w, "\x1b[2K  leecher %d %s %3.0f%%\n", i+1, bar(f, 30), 100*f)
		p.lines++
	}
	fmt.Fprintf(p.w, "\x1b[2K  %5.1fs%s\n", pr.Elapsed.Seconds(), helperText(pr))
	p.lines++
}

// line prints pr on one line (plain output).
func (p *progressPrinter) line(pr demo.Progress) {
	var parts []string
	for _, f := range pr.Leechers {
		parts = append(parts, fmt.Sprintf("%3.0f%%", 100*f))
	}
	fmt.Fprintf(p.w, "  %5.1fs  leechers %s%s\n", pr.Elapsed.Seconds(), strings.Join(parts, " "), helperText(pr))
}

// finish prints the round's last state when plain (bars show it already).
func (p *progressPrinter) finish() {
	if p.plain && p.round != 0 && !p.last.IsZero() {
		p.line(p.latest)
		p.last = time.Time{}
	}
}

func helperText(pr demo.Progress) string {
	if pr.Round != 2 {
		return ""
	}
	ratio := 0.0
	if pr.HelperDown > 0 {
		ratio = float64(pr.HelperUp) / float64(pr.HelperDown)
	}
	return fmt.Sprintf("  btslave up %s down %s ratio %.2f", fmtBytes(pr.HelperUp), fmtBytes(pr.HelperDown), ratio)
}

func bar(f float64, width int) string {
	n := int(f*float64(width) + 0.5)
	n = min(max(n, 0), width)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
