package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/btslave/btslave/internal/api"
)

func helpMasterCommand() *command {
	var g globalOptions
	var addr string
	return &command{
		name:  "help-master",
		args:  "--addr IP:PORT FILE.torrent | MAGNET | INFOHASH",
		short: "have the running daemon help a client download a torrent",
		long: `Has the running daemon help the BitTorrent client (the master) that takes
peers at --addr download a torrent: the daemon joins the swarm on the
master's behalf, dials the master and keeps that connection, and fetches
the pieces the master lacks first (those most peers hold first: the
master asks for the rarest itself), sending each to the
master as it arrives. Any client works; for Transmission, qBittorrent or
another btslave set [master] in the config instead, and every torrent the
master downloads is helped by itself. 'btslave status' shows the bytes
forwarded, the master's progress and the connection.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.StringVar(&addr, "addr", "", "the master's peer address `IP:PORT` (required)")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 {
				return usageErr("help-master takes one .torrent file, magnet link or info hash, and --addr")
			}
			if _, err := netip.ParseAddrPort(addr); err != nil {
				return usageErr("--addr %q is not IP:PORT, e.g. 192.168.1.10:51413", addr)
			}
			rr, err := repeatRequest(args[0])
			if err != nil {
				return err
			}
			var t *api.MasterTorrent
			if err := g.callAPI(ctx, e, 30*time.Second, func(ctx context.Context, client *api.Client) (err error) {
				t, err = client.Help(ctx, api.HelpRequest{RepeatRequest: rr, Addr: addr})
				return err
			}); err != nil {
				return err
			}
			name := termSafe(t.Name)
			if name == "" {
				name = "(metadata not yet received)"
			}
			fmt.Fprintf(e.stdout, "helping %s with %s %s\n", termSafe(t.Master), termSafe(t.InfoHash), name)
			return nil
		},
	}
}

// printMaster prints the master lines of the status.
func printMaster(w io.Writer, m api.MasterState) {
	if m.Kind == "" && len(m.Torrents) == 0 {
		return
	}
	if m.Kind != "" {
		fmt.Fprintf(w, "master\t%s: %s", termSafe(m.Kind), termSafe(m.State))
		if m.Peer != "" {
			fmt.Fprintf(w, ", peer %s", termSafe(m.Peer))
		}
		fmt.Fprintf(w, ", %d downloading", m.Downloading)
		if m.Error != "" {
			fmt.Fprintf(w, "; %d failures: %s; next try in %s", m.Failures, termSafe(m.Error), time.Until(m.NextPoll).Round(time.Second))
		}
		fmt.Fprintln(w)
	}
	for _, t := range m.Torrents {
		conn := "not connected"
		if t.Connected {
			conn = "connected"
		}
		prog := "?"
		if t.Progress >= 0 {
			prog = fmt.Sprintf("%.1f%%", 100*t.Progress)
		}
		fmt.Fprintf(w, "  %.8s\t%s for %s (%s, %s): master %s, %s to master, %s from swarm, %s to swarm, %d pinned\n",
			termSafe(t.InfoHash), termSafe(t.Name), termSafe(t.Master), termSafe(t.Source), conn, prog,
			fmtBytes(t.ToMaster), fmtBytes(t.FromSwarm), fmtBytes(t.ToSwarm), t.Pinned)
	}
}
