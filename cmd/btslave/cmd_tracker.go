package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/btslave/btslave/internal/daemon"
	"github.com/btslave/btslave/internal/store"
)

func trackerCommand() *command {
	var g globalOptions
	var logLevel, whitelist string
	var httpListen, udpListen setString
	var open bool
	return &command{
		name:  "tracker",
		short: "run only the embedded BEP 21 tracker, in the foreground",
		long: `Runs the embedded BitTorrent tracker of the [tracker] section without the
rest of the daemon (no BitTorrent client, feeds or API), whether or not
[tracker] enabled is set, until SIGINT or SIGTERM; the first signal stops
it within 2s, a second exits at once. It keeps its downloaded counts in the
data dir, so it cannot run beside a daemon on the same data dir.

Flags override the config: for a quick open tracker on this machine,
  btslave tracker --open --http-listen 127.0.0.1:6969 --udp-listen ""`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.StringVar(&logLevel, "log-level", "", "override [log] level: debug, info, warn or error")
			fs.Var(&httpListen, "http-listen", "override tracker.http_listen: `host:port`, \"\" for no HTTP")
			fs.Var(&udpListen, "udp-listen", "override tracker.udp_listen: `host:port`, \"\" for no UDP")
			fs.StringVar(&whitelist, "whitelist", "", "override tracker.whitelist: a `file` of info-hashes to serve")
			fs.BoolVar(&open, "open", false, "serve any torrent (tracker.open = true)")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 0 {
				return usageErr("tracker takes no arguments")
			}
			cfg, err := g.load(e)
			if err != nil {
				return err
			}
			tr := &cfg.Tracker
			tr.Enabled = true // so that the checks of an enabled tracker apply
			if httpListen.set {
				tr.HTTPListen = httpListen.v
			}
			if udpListen.set {
				tr.UDPListen = udpListen.v
			}
			if whitelist != "" {
				tr.Whitelist, tr.Open = whitelist, false
			}
			if open {
				tr.Open, tr.Whitelist = true, ""
			}
			if logLevel != "" {
				cfg.Log.Level = logLevel
			}
			if err := cfg.Validate(); err != nil {
				return &exitError{exitUsage, fmt.Errorf("tracker: %w", err)}
			}
			ctx, stop := signalContext(ctx, e)
			defer stop()
			err = daemon.RunTracker(ctx, cfg, daemon.NewLogger(cfg.Log, e.stderr))
			if errors.Is(err, store.ErrLocked) {
				return &exitError{exitFailure, err}
			}
			return err
		},
	}
}

// setString is a string flag that knows whether it was given, so that
// an empty value can override a configured one.
type setString struct {
	v   string
	set bool
}

func (s *setString) String() string { return s.v }

func (s *setString) Set(v string) error {
	s.v, s.set = v, true
	return nil
}
