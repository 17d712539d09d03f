package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/daemon"
	"github.com/btslave/btslave/internal/store"
)

func runCommand() *command {
	var g globalOptions
	var logLevel string
	return &command{
		name:  "run",
		short: "run the daemon in the foreground",
		long: `Runs the daemon until SIGINT or SIGTERM. The first signal stops it
gracefully (announce "stopped", flush state, close the database) within 5s;
a second signal exits at once. Runs on the embedded defaults when there is
no config file.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.StringVar(&logLevel, "log-level", "", "override [log] level: debug, info, warn or error")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 0 {
				return usageErr("run takes no arguments")
			}
			cfg, err := g.load(e)
			if err != nil {
				return err
			}
			if logLevel != "" {
				cfg.Log.Level = logLevel
				if err := cfg.Validate(); err != nil {
					return &exitError{exitUsage, fmt.Errorf("--log-level: %w", err)}
				}
			}
			log := daemon.NewLogger(cfg.Log, e.stderr)

			ctx, stop := signalContext(ctx, e)
			defer stop()
			app, err := daemon.New(cfg, log)
			if errors.Is(err, store.ErrLocked) {
				return &exitError{exitFailure, err}
			}
			if err != nil {
				return err
			}
			if err := app.Run(ctx); err != nil {
				return err
			}
			return nil
		},
	}
}

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits the process at once.
func signalContext(parent context.Context, e env) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(e.stderr, "btslave: got %v, stopping (send again to exit at once)\n", s)
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			fmt.Fprintf(e.stderr, "btslave: got %v again, exiting now\n", s)
			os.Exit(exitFailure)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

var writeFileAtomic = api.WriteFileAtomic
