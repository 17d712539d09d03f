package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/btslave/btslave/internal/api"
)

func cashinCommand() *command {
	var g globalOptions
	var master, torrentPath, magnet string
	return &command{
		name:  "cashin",
		args:  "INFOHASH",
		short: "ask friends, best balance first, to help your master with a torrent",
		long: `Asks the running daemon to cash in: it sends a help request for INFOHASH
to its friends, the one that owes us most first, until [friends]
cashin_helpers of them (default 2) accepted or all were asked. Each
helper joins the swarm and feeds your master at --master (default
[master] peer_address); what it delivers comes back as IOUs in the
ledger (btslave ledger). A friend refuses when its balance with us is
below -credit_limit, or its own caps or filters say no. Every friend
asked is printed, helping or refused, with its reason and balance.

EXIT STATUS
  0  at least one friend accepted
  1  no friend accepted, or the daemon failed
  2  bad usage, or [friends] is off`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.StringVar(&master, "master", "", "the master's peer `IP:PORT` (default [master] peer_address)")
			fs.StringVar(&torrentPath, "torrent", "", "send this .torrent `file` with the request")
			fs.StringVar(&magnet, "magnet", "", "send this magnet `link` with the request")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 {
				return usageErr("cashin takes one INFOHASH")
			}
			req := api.CashinRequest{InfoHash: args[0], Master: master, Magnet: magnet}
			if torrentPath != "" {
				b, err := os.ReadFile(torrentPath)
				if err != nil {
					return usageErr("--torrent: %v", err)
				}
				req.Torrent = b
			}
			var rep *api.CashinReply
			if err := g.callAPI(ctx, e, 60*time.Second, func(ctx context.Context, c *api.Client) (err error) {
				rep, err = c.Cashin(ctx, req)
				return err
			}); err != nil {
				return err
			}
			for _, h := range rep.Helpers {
				fmt.Fprintf(e.stdout, "friend %s helps your master with %s (balance %+d bytes: %s)\n", friendLabel(h), args[0], h.Balance, h.Reason)
			}
			for _, r := range rep.Refused {
				fmt.Fprintf(e.stdout, "friend %s refused (balance %+d bytes): %s\n", friendLabel(r), r.Balance, r.Reason)
			}
			return nil
		},
	}
}

// friendLabel is a cash-in answer's friend ID, with its name if it has
// one.
func friendLabel(a api.CashinAnswer) string {
	if a.Name != "" {
		return fmt.Sprintf("%s (%s)", a.Friend, a.Name)
	}
	return a.Friend
}
