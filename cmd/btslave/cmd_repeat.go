package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/torrentfile"
)

var hexHash = regexp.MustCompile(`^[0-9a-fA-F]{40}$`)

// repeatRequest turns the argument into a request, checking it locally so
// that a bad .torrent or magnet is a usage error, not a daemon error.
func repeatRequest(arg string) (api.RepeatRequest, error) {
	switch {
	case strings.HasPrefix(arg, "magnet:"):
		if _, err := metainfo.ParseMagnetUri(arg); err != nil {
			return api.RepeatRequest{}, usageErr("bad magnet link: %v", err)
		}
		return api.RepeatRequest{Magnet: arg}, nil
	case hexHash.MatchString(arg):
		return api.RepeatRequest{InfoHash: strings.ToLower(arg)}, nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return api.RepeatRequest{}, usageErr("%s is not a magnet link, a 40-digit info hash or a readable .torrent: %v", arg, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, api.MaxTorrentBytes+1))
	if err != nil {
		return api.RepeatRequest{}, fmt.Errorf("read %s: %w", arg, err)
	}
	if len(b) > api.MaxTorrentBytes {
		return api.RepeatRequest{}, usageErr("%s is larger than %d MiB: not a .torrent", arg, api.MaxTorrentBytes>>20)
	}
	if _, err := torrentfile.Parse(b); err != nil {
		return api.RepeatRequest{}, usageErr("%s: %w", arg, err)
	}
	return api.RepeatRequest{Torrent: b}, nil
}

func repeatCommand() *command {
	var g globalOptions
	return &command{
		name:  "repeat",
		args:  "FILE.torrent | MAGNET | INFOHASH",
		short: "have the running daemon serve a swarm",
		long: `Hands a torrent to the running daemon, which joins its swarm as an
upload-only partial seed and keeps serving it across restarts until
'btslave leave'. Without demand the swarm goes quiet (still joined and
announced, fetching nothing new; 'btslave status' says why) but is never
left. With a magnet link or a bare info hash the metadata comes from the
peers.`,
		flags: g.addFlags,
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 {
				return usageErr("repeat takes one .torrent file, magnet link or info hash")
			}
			req, err := repeatRequest(args[0])
			if err != nil {
				return err
			}
			var t *api.Torrent
			if err := g.callAPI(ctx, e, 30*time.Second, func(ctx context.Context, client *api.Client) (err error) {
				t, err = client.Repeat(ctx, req)
				return err
			}); err != nil {
				return err
			}
			printRepeat(e.stdout, t)
			return nil
		},
	}
}

// printRepeat says which swarm the daemon now serves.
func printRepeat(w io.Writer, t *api.Torrent) {
	name := termSafe(t.Name)
	if name == "" {
		name = "(metadata not yet received)"
	}
	fmt.Fprintf(w, "serving %s %s\n", termSafe(t.InfoHash), name)
}

func leaveCommand() *command {
	var g globalOptions
	return &command{
		name:  "leave",
		args:  "INFOHASH",
		short: "have the running daemon leave a swarm",
		long:  `Leaves the swarm, frees its cache share and forgets it.`,
		flags: g.addFlags,
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 || !hexHash.MatchString(args[0]) {
				return usageErr("leave takes one 40-digit info hash")
			}
			if err := g.callAPI(ctx, e, 30*time.Second, func(ctx context.Context, client *api.Client) error {
				return client.Leave(ctx, strings.ToLower(args[0]))
			}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "left %s\n", strings.ToLower(args[0]))
			return nil
		},
	}
}
