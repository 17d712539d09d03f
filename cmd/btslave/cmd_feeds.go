package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/buildinfo"
	"github.com/btslave/btslave/internal/daemon"
)

func feedsCommand() *command {
	return &command{
		name:  "feeds",
		short: "list, add, remove or try torrent feeds",
		long: `Feeds fill the catalog the autopilot chooses swarms from: RSS/Atom/torznab
feeds, plain lists of .torrent URLs and magnet links, and watch folders.
Feeds in the configuration file ([[feeds.feed]]) are listed with the ones
added at run time; only the latter can be removed here.`,
		subs: []*command{feedsListCommand(), feedsAddCommand(), feedsRemoveCommand(), feedsTestCommand()},
	}
}

// feedFlags are a feed's definition as flags, shared by add and test.
type feedFlags struct {
	name, kind, schedule, include, exclude, category, minSize, maxSize, maxAge string
}

func (f *feedFlags) addFlags(fs *flag.FlagSet, withName bool) {
	if withName {
		fs.StringVar(&f.name, "name", "", "the feed's `name` (default its URL or folder)")
		fs.StringVar(&f.schedule, "schedule", "", "cron `spec`, e.g. \"@every 30m\" (default feeds.schedule)")
	}
	fs.StringVar(&f.kind, "kind", "", "`kind`: rss (RSS/Atom/torznab), list (one link per line) or watch (a folder); default: sniffed for a URL (XML is a feed, anything else a list), watch for a folder")
	fs.StringVar(&f.include, "include", "", "keep only titles matching this `regexp`")
	fs.StringVar(&f.exclude, "exclude", "", "drop titles matching this `regexp`")
	fs.StringVar(&f.category, "category", "", "keep only these `categories` (comma-separated names or newznab numbers)")
	fs.StringVar(&f.minSize, "min-size", "", "drop torrents smaller than `size`, e.g. 100MiB")
	fs.StringVar(&f.maxSize, "max-size", "", "drop torrents larger than `size`, e.g. 10GiB")
	fs.StringVar(&f.maxAge, "max-age", "", "drop items published longer ago than `duration`, e.g. 7d")
}

// request turns the flags and the URL-or-folder argument into an API
// request, checked here so that a mistake is a usage error (exit 2).
func (f *feedFlags) request(arg string, defaults config.Feeds) (api.FeedRequest, config.Feed, error) {
	req := api.FeedRequest{Name: f.name, Kind: f.kind, Schedule: f.schedule, Include: f.include, Exclude: f.exclude,
		Category: f.category, MinSize: f.minSize, MaxSize: f.maxSize, MaxAge: f.maxAge}
	lower := strings.ToLower(arg)
	switch {
	case strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://"):
		req.URL = arg
	default:
		st, err := os.Stat(arg)
		if err != nil || !st.IsDir() {
			return req, config.Feed{}, usageErr("%s is neither an http(s) URL nor a folder to watch", arg)
		}
		if req.Dir, err = filepath.Abs(arg); err != nil {
			return req, config.Feed{}, usageErr("%s: %v", arg, err)
		}
	}
	fd, err := daemon.FeedFromRequest(req)
	if err == nil {
		err = feeds.CheckFeed(&fd, defaults)
	}
	if err != nil {
		return req, config.Feed{}, usageErr("%v", strings.TrimPrefix(err.Error(), api.ErrBadRequest.Error()+": "))
	}
	return req, fd, nil
}

func feedsListCommand() *command {
	var g globalOptions
	var asJSON bool
	return &command{
		name:  "list",
		short: "list the running daemon's feeds and how their fetches went",
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 0 {
				return usageErr("feeds list takes no arguments")
			}
			var fs []api.Feed
			if err := g.callAPI(ctx, e, 10*time.Second, func(ctx context.Context, client *api.Client) (err error) {
				fs, err = client.Feeds(ctx)
				return err
			}); err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, fs)
			}
			printFeeds(e.stdout, fs, time.Now())
			return nil
		},
	}
}

func printFeeds(w io.Writer, fs []api.Feed, now time.Time) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "no feeds; add one with 'btslave feeds add URL' or a [[feeds.feed]] block in the config")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFROM\tKIND\tSCHEDULE\tLAST FETCH\tITEMS\tKEPT\tNEW\tERRORS\tNEXT\tSOURCE")
	for _, f := range fs {
		from := "config"
		if f.Added {
			from = "added"
		}
		last := "never"
		switch {
		case f.Running:
			last = "running"
		case !f.LastFetch.IsZero():
			last = ago(now, f.LastFetch) + " ago"
			if f.LastError != "" {
				last += " (failed)"
			} else if f.NotModified {
				last += " (not modified)"
			}
		}
		next := "-"
		if !f.NextRun.IsZero() {
			next = "in " + until(now, f.NextRun)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d/%d\t%s\t%s\n", termSafe(f.Name), from, termSafe(cmp.Or(f.Kind, "-")), termSafe(f.Schedule), last,
			f.Items, f.Kept, f.New, f.FetchErrors, f.Fetches, next, termSafe(f.Source))
	}
	tw.Flush()
	for _, f := range fs {
		var filters []string
		for _, kv := range [][2]string{{"include", f.Include}, {"exclude", f.Exclude}, {"category", f.Category}, {"max_age", f.MaxAge}} {
			if kv[1] != "" {
				filters = append(filters, fmt.Sprintf("%s %q", kv[0], kv[1]))
			}
		}
		if f.MinSize > 0 {
			filters = append(filters, "min_size "+fmtBytes(f.MinSize))
		}
		if f.MaxSize > 0 {
			filters = append(filters, "max_size "+fmtBytes(f.MaxSize))
		}
		if len(filters) > 0 {
			fmt.Fprintf(w, "%s: filters %s\n", termSafe(f.Name), strings.Join(filters, ", "))
		}
		if f.LastError != "" {
			fmt.Fprintf(w, "%s: failing (%d in a row): %s\n", termSafe(f.Name), f.Failures, termSafe(f.LastError))
		}
	}
}

func feedsAddCommand() *command {
	var g globalOptions
	var ff feedFlags
	return &command{
		name:  "add",
		args:  "URL | DIR",
		short: "add a feed to the running daemon",
		long: `Adds a feed at run time: the daemon keeps it in its database (it survives
restarts) and fetches it at once. URL is an RSS/Atom/torznab feed or a
plain list; DIR a folder to watch for .torrent and .magnet files. Try a
feed and its filters first with 'btslave feeds test'.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			ff.addFlags(fs, true)
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 {
				return usageErr("feeds add takes one URL or folder")
			}
			cfg, err := g.load(e)
			if err != nil {
				return err
			}
			req, _, err := ff.request(args[0], cfg.Feeds)
			if err != nil {
				return err
			}
			var f *api.Feed
			if err := g.callAPI(ctx, e, 30*time.Second, func(ctx context.Context, client *api.Client) (err error) {
				f, err = client.AddFeed(ctx, req)
				return err
			}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "added feed %q (%s), schedule %s, fetching now; 'btslave feeds list' shows how it goes\n", f.Name, termSafe(f.Source), termSafe(f.Schedule))
			return nil
		},
	}
}

func feedsRemoveCommand() *command {
	var g globalOptions
	return &command{
		name:  "remove",
		args:  "NAME",
		short: "remove a feed added at run time",
		long: `Removes a feed added with 'btslave feeds add', and its fetch state. The
catalog keeps what it found. A feed from the configuration file is
refused: delete its [[feeds.feed]] block there and restart the daemon.`,
		flags: g.addFlags,
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 {
				return usageErr("feeds remove takes one feed name; 'btslave feeds list' shows them")
			}
			if err := g.callAPI(ctx, e, 30*time.Second, func(ctx context.Context, client *api.Client) error {
				return client.RemoveFeed(ctx, args[0])
			}); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "removed feed %q\n", args[0])
			return nil
		},
	}
}

func feedsTestCommand() *command {
	var g globalOptions
	var ff feedFlags
	var asJSON bool
	return &command{
		name:  "test",
		args:  "URL | DIR | NAME",
		short: "fetch a feed once and show what its filters keep and why",
		long: `Fetches a feed once, without a running daemon and without storing
anything, with the caps and timeout of the config's [feeds] section and the
filters given as flags, and prints every item: kept or not, and why. NAME
tests a configured feed with its own filters (flags given replace them).
Exit status 1 when the feed itself cannot be fetched or parsed.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			ff.addFlags(fs, false)
			fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 {
				return usageErr("feeds test takes one URL, folder or configured feed name")
			}
			cfg, err := g.load(e)
			if err != nil {
				return err
			}
			feed, err := testFeed(args[0], &ff, cfg)
			if err != nil {
				return err
			}
			res, err := feeds.Test(ctx, feeds.Options{Feeds: cfg.Feeds, Version: buildinfo.String()}, feed)
			if errors.Is(err, feeds.ErrBadFeed) {
				return &exitError{exitUsage, err}
			}
			if err != nil {
				return fmt.Errorf("feed %s: %w", feed.Name, err)
			}
			if asJSON {
				return printJSON(e.stdout, res)
			}
			printTest(e.stdout, feed, res)
			return nil
		},
	}
}

// testFeed is the feed "feeds test" fetches: a configured one by name,
// with the flags given replacing its filters, or one made of the flags.
func testFeed(arg string, ff *feedFlags, cfg *config.Config) (config.Feed, error) {
	for _, f := range cfg.Feeds.Feed {
		if f.Name != arg {
			continue
		}
		for _, o := range []struct{ flag, dst *string }{{&ff.kind, &f.Kind}, {&ff.include, &f.Include}, {&ff.exclude, &f.Exclude}, {&ff.category, &f.Category}} {
			if *o.flag != "" {
				*o.dst = *o.flag
			}
		}
		over, err := daemon.FeedFromRequest(api.FeedRequest{URL: "http://x/", MinSize: ff.minSize, MaxSize: ff.maxSize, MaxAge: ff.maxAge})
		if err != nil {
			return config.Feed{}, usageErr("%v", strings.TrimPrefix(err.Error(), api.ErrBadRequest.Error()+": "))
		}
		if ff.minSize != "" {
			f.MinSize = over.MinSize
		}
		if ff.maxSize != "" {
			f.MaxSize = over.MaxSize
		}
		if ff.maxAge != "" {
			f.MaxAge = over.MaxAge
		}
		if err := feeds.CheckFeed(&f, cfg.Feeds); err != nil {
			return config.Feed{}, usageErr("%v", err)
		}
		return f, nil
	}
	_, f, err := ff.request(arg, cfg.Feeds)
	return f, err
}

func printTest(w io.Writer, feed config.Feed, res *feeds.Result) {
	kept, _, errs := res.Counts()
	fmt.Fprintf(w, "feed %s: %d items, %d kept, %d in error\n", termSafe(feed.Name), len(res.Items), kept, errs)
	if len(res.Items) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tTITLE\tSIZE\tINFOHASH\tWHY")
	for _, it := range res.Items {
		mark := "skip"
		switch {
		case it.Kept:
			mark = "kept"
		case it.Err != nil:
			mark = "error"
		}
		title, size, hash := it.Item.Title, it.Item.Size, it.Item.InfoHash
		if en := it.Entry; en != nil {
			title = cmp.Or(title, en.Name)
			size = max(size, en.Size)
			hash = en.Key()
		}
		if title == "" {
			title = cmp.Or(it.Item.Torrent, it.Item.Magnet)
		}
		sz := "-"
		if size > 0 {
			sz = fmtBytes(size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, termSafe(clip(title, 60)), sz, termSafe(cmp.Or(shortHash(hash), "-")), termSafe(it.Why))
	}
	tw.Flush()
}

func shortHash(h string) string {
	if len(h) > 8 {
		return h[:8]
	}
	return h
}
