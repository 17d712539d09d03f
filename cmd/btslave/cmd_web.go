package main

import (
	"context"
	"fmt"
	"time"

	"github.com/btslave/btslave/internal/api"
)

func webCommand() *command {
	var g globalOptions
	return &command{
		name:  "web",
		short: "print a one-time login link to the running daemon's dashboard",
		long: `Asks the running daemon for a one-time login code and prints the dashboard's
login URL. Opening it in a browser logs that browser in with a session
cookie (HttpOnly, SameSite=Strict); the code is used up on first use and
expires after two minutes, and the API token itself never goes into a URL.
The dashboard is served on the API's address (api.listen), for localhost
only unless you changed that. Without a link, the login page also takes
the API token (the file api.token in the data dir).`,
		flags: g.addFlags,
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 0 {
				return usageErr("web takes no arguments")
			}
			cfg, err := g.load(e)
			if err != nil {
				return err
			}
			var lc *api.LoginCode
			if err := g.callAPI(ctx, e, 10*time.Second, func(ctx context.Context, c *api.Client) (err error) {
				lc, err = c.LoginCode(ctx)
				return err
			}); err != nil {
				return err
			}
			addr := api.DialAddr(cfg.DataDir, string(cfg.API.Listen))
			fmt.Fprintf(e.stdout, "Open this link within %s to log in to the dashboard (it works once):\n  http://%s%s\n",
				api.CodeTTL, addr, lc.Path)
			fmt.Fprintf(e.stdout, "Afterwards the dashboard is at http://%s/\n", addr)
			return nil
		},
	}
}
