package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/btfs"
	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/daemon"
	"github.com/btslave/btslave/internal/torrentfile"
	"github.com/btslave/btslave/repeater"
)

func mountCommand() *command {
	var g globalOptions
	var standalone bool
	return &command{
		name:  "mount",
		args:  "[FILE.torrent | MAGNET | INFOHASH DIR]",
		short: "show a torrent as a read-only filesystem",
		long: `Mounts the torrent read-only on DIR (an existing directory) over FUSE
(Debian: fuse3). Its files and directories show at once with their sizes;
a read fetches the pieces under it first, then reads ahead, everything
through the bounded cache, so a file streams before it is complete. A
read not served within [mount] read_timeout fails with EIO. While the
metadata of a magnet link or info hash is unknown, DIR holds only the
file .btslave-status saying so; the files appear once it arrives.

When the daemon runs, it owns the mount: it remounts it after a restart
(or a crash, cleaning the dead mount first) until 'btslave umount DIR'.
Otherwise (or with --standalone) the mount runs in the foreground until
SIGINT or SIGTERM, which unmount it cleanly. Without arguments it lists
the daemon's mounts.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.BoolVar(&standalone, "standalone", false, "mount in the foreground even when the daemon runs")
		},
		run: func(ctx context.Context, e env, args []string) error {
			switch len(args) {
			case 0:
				return listMounts(ctx, e, &g)
			case 2:
			default:
				return usageErr("mount takes a .torrent file, magnet link or info hash, and a directory")
			}
			req, err := repeatRequest(args[0])
			if err != nil {
				return err
			}
			dir, err := filepath.Abs(args[1])
			if err != nil {
				return usageErr("mount point %s: %v", args[1], err)
			}
			if st, err := os.Stat(dir); err != nil && !btfs.IsMounted(dir) {
				return usageErr("mount point: %v", err)
			} else if err == nil && !st.IsDir() {
				return usageErr("mount point %s is not a directory", dir)
			}
			if !standalone {
				var m *api.Mount
				err := g.callAPI(ctx, e, 60*time.Second, func(ctx context.Context, c *api.Client) (err error) {
					m, err = c.Mount(ctx, api.MountRequest{RepeatRequest: req, Dir: dir})
					return err
				})
				if err == nil {
					printMount(e.stdout, m)
					return nil
				}
				// No daemon: mount in the foreground.
				if !errors.Is(err, api.ErrNotRunning) && !errors.Is(err, os.ErrNotExist) {
					return err
				}
			}
			return mountForeground(ctx, e, &g, req, dir)
		},
	}
}

// listMounts prints the daemon's mounts.
func listMounts(ctx context.Context, e env, g *globalOptions) error {
	var ms []api.Mount
	if err := g.callAPI(ctx, e, 10*time.Second, func(ctx context.Context, c *api.Client) (err error) {
		ms, err = c.Mounts(ctx)
		return err
	}); err != nil {
		return err
	}
	if len(ms) == 0 {
		fmt.Fprintln(e.stdout, "no mounts")
	}
	for i := range ms {
		printMount(e.stdout, &ms[i])
	}
	return nil
}

func printMount(w io.Writer, m *api.Mount) {
	name := termSafe(m.Name)
	if name == "" {
		name = "(metadata not yet received)"
	}
	fmt.Fprintf(w, "%s  %s %s", termSafe(m.Dir), termSafe(m.InfoHash), name)
	if m.Error != "" {
		fmt.Fprintf(w, "  NOT MOUNTED: %s", termSafe(m.Error))
	} else {
		fmt.Fprintf(w, "  reads %d, %d bytes, %d timeouts, %d open", m.Reads, m.BytesRead, m.Timeouts, m.Open)
	}
	fmt.Fprintln(w)
}

// mountForeground mounts with a repeater of its own until SIGINT/SIGTERM
// or an unmount from outside.
func mountForeground(ctx context.Context, e env, g *globalOptions, req api.RepeatRequest, dir string) error {
	cfg, err := g.load(e)
	if err != nil {
		return err
	}
	spec, err := specOf(req)
	if err != nil {
		return err
	}
	log := daemon.NewLogger(cfg.Log, e.stderr)
	cacheDir, err := os.MkdirTemp("", "btslave-mount-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cacheDir)
	rep, err := repeater.New(repeater.Options{Peer: cfg.Peer, Cache: cfg.Cache, Repeater: cfg.Repeater,
		CacheDir: cacheDir, Logger: log, Announce: true})
	if err != nil {
		return err
	}
	defer rep.Close()
	sw, err := rep.JoinWith(spec, repeater.JoinOptions{Keep: true})
	if err != nil {
		return err
	}
	sw.SetPartialSeed(false) // a reader downloads
	// Catch SIGINT/SIGTERM before the mount appears: a signal between the
	// two would otherwise kill the process by default action, leaving a
	// dead mount and no output (TestMountForegroundSIGINT, 1 in ~5 -race runs).
	ctx, stop := signalContext(ctx, e)
	defer stop()
	m, err := btfs.New(dir, sw.Torrent(), mountOptions(cfg, sw, log))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "mounted %s on %s; SIGINT or SIGTERM unmounts\n", termSafe(spec.InfoHash.HexString()), termSafe(dir))
	select {
	case <-ctx.Done():
	case <-m.Done():
		fmt.Fprintf(e.stdout, "unmounted from outside\n")
	}
	if err := m.Unmount(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "unmounted %s\n", termSafe(dir))
	return nil
}

// mountOptions maps [mount] to the mount's options.
func mountOptions(cfg *config.Config, sw *repeater.Swarm, log *slog.Logger) btfs.Options {
	return btfs.Options{
		ReadTimeout:  cfg.Mount.ReadTimeout.Std(),
		MaxReadahead: int64(cfg.Mount.MaxReadahead),
		Claims:       sw,
		Logger:       log.With("component", "btfs"),
	}
}

// specOf turns a checked request into a torrent spec.
func specOf(req api.RepeatRequest) (*torrent.TorrentSpec, error) {
	switch {
	case len(req.Torrent) > 0:
		t, err := torrentfile.Parse(req.Torrent)
		if err != nil {
			return nil, usageErr("torrent: %v", err)
		}
		return torrent.TorrentSpecFromMetaInfoErr(t.MetaInfo)
	case req.Magnet != "":
		return torrent.TorrentSpecFromMagnetUri(req.Magnet)
	}
	var ih metainfo.Hash
	if err := ih.FromHexString(req.InfoHash); err != nil {
		return nil, usageErr("info hash: %v", err)
	}
	return &torrent.TorrentSpec{AddTorrentOpts: torrent.AddTorrentOpts{InfoHash: ih}}, nil
}

func umountCommand() *command {
	var g globalOptions
	return &command{
		name:  "umount",
		args:  "DIR",
		short: "unmount a torrent mounted with 'btslave mount'",
		long: `Unmounts DIR. A mount the daemon owns is unmounted and forgotten (it
is not mounted again on restart); a foreground mount (or a dead one a
crash left) is unmounted with fusermount3, lazily, so that DIR is free
at once even while a process still holds a file open.`,
		flags: g.addFlags,
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 {
				return usageErr("umount takes one directory")
			}
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return usageErr("%s: %v", args[0], err)
			}
			err = g.callAPI(ctx, e, 30*time.Second, func(ctx context.Context, c *api.Client) error {
				return c.Unmount(ctx, dir)
			})
			if err == nil {
				fmt.Fprintf(e.stdout, "unmounted %s\n", termSafe(dir))
				return nil
			}
			if !btfs.IsMounted(dir) {
				return err
			}
			if err := btfs.LazyUnmount(dir); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "unmounted %s\n", termSafe(dir))
			return nil
		},
	}
}
