package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/publish"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// publishSummary is one torrent in publish --json.
type publishSummary struct {
	Path        string   `json:"path"`
	Torrent     string   `json:"torrent"`
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Size        int64    `json:"size"`
	Files       int      `json:"files"`
	PieceLength int64    `json:"piece_length"`
	Pieces      int      `json:"pieces"`
	InfoHashV1  string   `json:"infohash_v1,omitempty"`
	InfoHashV2  string   `json:"infohash_v2,omitempty"`
	Magnet      string   `json:"magnet"`
	Trackers    []string `json:"trackers,omitempty"`
	Skipped     []string `json:"skipped,omitempty"`
	Seconds     float64  `json:"seconds"`
	MBps        float64  `json:"mb_per_s"`
}

func publishCommand() *command {
	var g globalOptions
	var format, pieceSize, name, comment, source, out string
	var trackers, webSeeds listFlag
	var private, asJSON, noTracker, local bool
	var workers int
	return &command{
		name:  "publish",
		args:  "PATH...",
		short: "make a torrent of each file or directory",
		long: `Hashes each PATH (a file or a directory) into a torrent: hybrid v1+v2 by
default (--format v1 or v2 for one of them; Transmission 3.x reads only
v1), with a piece length chosen from the size (about 1500 pieces, 16 KiB
to 16 MiB) unless --piece-size is given. Files are hashed in parallel
across the cores, each byte read once for v1 and v2 together. The
.torrent is written atomically (a temporary file renamed): an interrupted
run (Ctrl-C) leaves nothing behind. It prints the magnet link, or a JSON
summary with --json; a progress bar goes to a terminal's stderr.

The running daemon does the work: it hashes the path, keeps seeding it
from your disk until 'btslave unpublish' (the everseed, across restarts;
it stops and says why if the files change or vanish), adds it to the
embedded tracker's whitelist when the tracker runs in whitelist mode, and
serves the .torrent and a feed of everything published on [publish]
listen. The magnet link and the .torrent's URL are printed. With --local
no daemon is needed: the .torrent is written here (--out), nothing more.

Trackers are the --tracker URLs (repeat the flag; a comma-separated value
is one tier), else the embedded tracker's announce URL when it runs
(with --local: when [tracker] is enabled in the config).`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.StringVar(&format, "format", "hybrid", "torrent `version`: hybrid, v1 or v2")
			fs.StringVar(&pieceSize, "piece-size", "", "piece length, a power of two from 16KiB to 16MiB (default: from the size)")
			fs.StringVar(&name, "name", "", "torrent name (default: the path's base name)")
			fs.StringVar(&comment, "comment", "", "comment")
			fs.StringVar(&source, "source", "", "source tag in the info dict (changes the infohash)")
			fs.BoolVar(&private, "private", false, "private torrent (BEP 27: trackers only, no DHT or PEX)")
			fs.Var(&trackers, "tracker", "announce `url`, repeatable, one tier each (comma-separated URLs share a tier)")
			fs.BoolVar(&noTracker, "no-tracker", false, "no tracker, not even the embedded one")
			fs.Var(&webSeeds, "web-seed", "BEP 19 web seed `url`, repeatable")
			fs.StringVar(&out, "out", "", "output `file` (one PATH) or directory (default: NAME.torrent in the current directory)")
			fs.IntVar(&workers, "workers", 0, "hashing goroutines (default: 2 per core + 2, each with a piece buffer)")
			fs.BoolVar(&asJSON, "json", false, "print a JSON summary")
			fs.BoolVar(&local, "local", false, "only write the .torrent here; no daemon, no everseed")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) == 0 {
				return usageErr("publish needs a PATH; see 'btslave publish --help'")
			}
			v, err := publish.ParseVersion(format)
			if err != nil {
				return usageErr("--format: %v", err)
			}
			o := publish.Options{Version: v, Name: name, Comment: comment, Source: source, Private: private,
				WebSeeds: webSeeds, Workers: workers, CreationDate: time.Now()}
			if pieceSize != "" {
				s, err := config.ParseSize(pieceSize)
				if err != nil {
					return usageErr("--piece-size: %v", err)
				}
				o.PieceLength = int64(s)
			}
			if name != "" && len(args) > 1 {
				return usageErr("--name needs a single PATH")
			}
			if !local {
				if out != "" || workers != 0 {
					return usageErr("--out and --workers go with --local")
				}
				req := api.PublishRequest{Version: v.String(), PieceLength: o.PieceLength, Name: name, Comment: comment,
					Source: source, Private: private, WebSeeds: webSeeds}
				for _, t := range trackers {
					req.Trackers = append(req.Trackers, strings.Split(t, ","))
				}
				return publishViaDaemon(ctx, e, &g, args, req, asJSON)
			}
			for _, t := range trackers {
				o.Trackers = append(o.Trackers, strings.Split(t, ","))
			}
			if len(o.Trackers) == 0 && !noTracker {
				cfg, err := g.load(e)
				if err != nil {
					return err
				}
				if u := embeddedAnnounceURL(cfg.Tracker); u != "" {
					o.Trackers = [][]string{{u}}
				}
			}
			outDir := ""
			if out != "" {
				if st, err := os.Stat(out); (err == nil && st.IsDir()) || len(args) > 1 {
					outDir, out = out, ""
				}
			}
			ctx, stop := signalContext(ctx, e)
			defer stop()
			var sums []publishSummary
			for _, path := range args {
				s, err := publishOne(ctx, e, path, o, out, outDir, asJSON)
				if err != nil {
					if errors.Is(err, publish.ErrEmpty) {
						return &exitError{exitUsage, err}
					}
					return err
				}
				sums = append(sums, s)
			}
			if asJSON {
				return printJSON(e.stdout, sums)
			}
			return nil
		},
	}
}

func publishOne(ctx context.Context, e env, path string, o publish.Options, out, outDir string, asJSON bool) (publishSummary, error) {
	bar := newProgressBar(e.stderr, filepath.Base(path))
	o.Progress = bar.set
	start := time.Now()
	bar.start()
	t, err := publish.Create(ctx, path, o)
	bar.stop(t)
	if err != nil {
		return publishSummary{}, err
	}
	secs := time.Since(start).Seconds()
	if out == "" {
		out = filepath.Join(outDir, safeFileName(t.Name)+".torrent")
	}
	if err := publish.WriteFile(out, t.Bytes); err != nil {
		return publishSummary{}, err
	}
	s := publishSummary{Path: t.Root, Torrent: out, Name: t.Name, Version: t.Version.String(), Size: t.Size,
		Files: len(t.Files), PieceLength: t.PieceLength, Pieces: t.NumPieces, InfoHashV1: t.InfoHashV1,
		InfoHashV2: t.InfoHashV2, Magnet: t.Magnet, Skipped: t.Skipped, Seconds: secs, MBps: float64(t.Size) / 1e6 / secs}
	for _, tier := range o.Trackers {
		s.Trackers = append(s.Trackers, tier...)
	}
	if !asJSON {
		fmt.Fprintf(e.stdout, "%s: %s, %d files, %d B in %d pieces of %d B, %.0f MB/s\n", termSafe(out), s.Version, s.Files, s.Size, s.Pieces, s.PieceLength, s.MBps)
		if s.InfoHashV1 != "" {
			fmt.Fprintf(e.stdout, "  infohash v1 %s\n", s.InfoHashV1)
		}
		if s.InfoHashV2 != "" {
			fmt.Fprintf(e.stdout, "  infohash v2 %s\n", s.InfoHashV2)
		}
		for _, sk := range s.Skipped {
			fmt.Fprintf(e.stdout, "  skipped (not a regular file): %s\n", termSafe(sk))
		}
		fmt.Fprintf(e.stdout, "  %s\n", termSafe(s.Magnet))
	}
	return s, nil
}

// safeFileName makes a torrent name usable as a file name.
func safeFileName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == '\\' {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." {
		return "torrent"
	}
	return name
}

// embeddedAnnounceURL is the embedded tracker's announce URL when it is
// enabled: its public_url, else its HTTP (else UDP) listener with a
// loopback host for an unspecified one.
func embeddedAnnounceURL(c config.Tracker) string {
	if !c.Enabled {
		return ""
	}
	if c.PublicURL != "" {
		return c.PublicURL
	}
	scheme, addr := "http", c.HTTPListen
	if addr == "" {
		scheme, addr = "udp", c.UDPListen
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		if strings.HasPrefix(addr, ":") {
			return scheme + "://127.0.0.1" + addr + "/announce"
		}
		return ""
	}
	if ap.Addr().IsUnspecified() {
		ap = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port())
	}
	return scheme + "://" + ap.String() + "/announce"
}

// progressBar draws hashing progress on a terminal, five times a second;
// on anything else it draws nothing.
type progressBar struct {
	w     io.Writer
	label string
	tty   bool
	done  atomic.Int64
	total atomic.Int64
	quit  chan struct{}
	wg    sync.WaitGroup
	began time.Time
}

func newProgressBar(w io.Writer, label string) *progressBar {
	b := &progressBar{w: w, label: termSafe(label), quit: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		b.tty = err == nil
	}
	return b
}

func (b *progressBar) set(done, total int64) {
	b.done.Store(done)
	b.total.Store(total)
}

func (b *progressBar) start() {
	b.began = time.Now()
	if !b.tty {
		return
	}
	b.wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-b.quit:
				return
			case <-tick.C:
				b.draw()
			}
		}
	})
}

func (b *progressBar) draw() {
	done := b.done.Load()
	secs := time.Since(b.began).Seconds()
	const width = 30
	total := b.total.Load()
	filled := 0
	if total > 0 {
		filled = int(min(done*width/total, width))
	}
	fmt.Fprintf(b.w, "\r%s [%s%s] %d MB %.0f MB/s ", b.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done/1e6, float64(done)/1e6/max(secs, 1e-3))
}

func (b *progressBar) stop(t *publish.Torrent) {
	close(b.quit)
	b.wg.Wait()
	if b.tty {
		if t != nil {
			b.total.Store(t.Size)
			b.done.Store(t.Size)
			b.draw()
		}
		fmt.Fprintln(b.w)
	}
}

// publishViaDaemon has the running daemon publish each path.
func publishViaDaemon(ctx context.Context, e env, g *globalOptions, args []string, req api.PublishRequest, asJSON bool) error {
	var out []api.Published
	for _, path := range args {
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		req.Path = abs
		err = g.callAPI(ctx, e, 24*time.Hour, func(ctx context.Context, c *api.Client) error {
			p, err := c.Publish(ctx, req)
			if err == nil {
				out = append(out, *p)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if asJSON {
		return printJSON(e.stdout, out)
	}
	for _, p := range out {
		printPublished(e.stdout, p)
	}
	return nil
}

func printPublished(w io.Writer, p api.Published) {
	state := "seeding"
	if !p.Seeding {
		state = "stopped: " + p.Stopped
	}
	fmt.Fprintf(w, "%s  %s  %s, %d files, %d B  %s\n", p.InfoHash, termSafe(p.Name), p.Version, p.Files, p.Size, termSafe(state))
	if p.Seeding {
		from := "connected"
		if p.Tracked {
			from = "tracker"
		}
		fmt.Fprintf(w, "  swarm (%s): seeds %d, downloaders %d, completed %d; peers %d, served %d B, pieces verified %d/%d\n",
			from, p.Seeds, p.Downloaders, p.Completed, p.Peers, p.BytesServed, p.Verified, p.Pieces)
	}
	if p.TorrentURL != "" {
		fmt.Fprintf(w, "  %s\n", termSafe(p.TorrentURL))
	}
	fmt.Fprintf(w, "  %s\n", termSafe(p.Magnet))
}

func publishedCommand() *command {
	var g globalOptions
	var asJSON bool
	return &command{
		name:  "published",
		short: "list what the daemon publishes, with its swarms' figures",
		long: `Lists the torrents published with 'btslave publish': whether the everseed
serves each (or why it stopped); the swarm's seeds, downloaders and
completed downloads from the embedded tracker's scrape when it tracks the
torrent (else the seeds and downloaders connected to the everseed); the
bytes the everseed served since the daemon started and how many pieces it
has checked against the torrent so far.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.BoolVar(&asJSON, "json", false, "print as JSON")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 0 {
				return usageErr("published takes no arguments")
			}
			return g.callAPI(ctx, e, 10*time.Second, func(ctx context.Context, c *api.Client) error {
				ps, err := c.Published(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(e.stdout, ps)
				}
				for _, p := range ps {
					printPublished(e.stdout, p)
				}
				return nil
			})
		},
	}
}

func unpublishCommand() *command {
	var g globalOptions
	return &command{
		name:  "unpublish",
		args:  "INFOHASH",
		short: "stop seeding and listing a published torrent",
		long: `Stops the everseed of a published torrent (v1 or v2 infohash) and drops it
from the feed and the public listener. Your files are not touched.`,
		flags: func(fs *flag.FlagSet) { g.addFlags(fs) },
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 {
				return usageErr("unpublish takes one INFOHASH")
			}
			return g.callAPI(ctx, e, 10*time.Second, func(ctx context.Context, c *api.Client) error {
				return c.Unpublish(ctx, args[0])
			})
		},
	}
}
