package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/btslave/btslave/internal/api"
)

func everseedCommand() *command {
	var g globalOptions
	var asJSON bool
	return &command{
		name:  "everseed",
		args:  "INFOHASH FRIEND",
		short: "ask a friend to be a second everseed of a published torrent",
		long: `Asks the friend (its ID, see 'btslave friends') to keep a torrent you
published as a second everseed: if it fits the friend's [friends]
everseed_budget it downloads the torrent in full into its data dir and seeds
it, also while your daemon is off. The answer is recorded in both ledgers.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.BoolVar(&asJSON, "json", false, "print the answer as JSON")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 2 {
				return usageErr("everseed takes INFOHASH and FRIEND")
			}
			return g.callAPI(ctx, e, time.Minute, func(ctx context.Context, c *api.Client) error {
				rep, err := c.AskEverseed(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(e.stdout, rep)
				}
				verdict := "refused"
				if rep.Accepted {
					verdict = "accepted"
				}
				fmt.Fprintf(e.stdout, "%s %s: %s\n", termSafe(rep.Friend), verdict, termSafe(rep.Reason))
				return nil
			})
		},
	}
}
