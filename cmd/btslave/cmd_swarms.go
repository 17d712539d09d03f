package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/btslave/btslave/internal/api"
)

func swarmsCommand() *command {
	var g globalOptions
	var asJSON bool
	var limit int
	return &command{
		name:  "swarms",
		short: "show the autopilot's ranking of swarms by need",
		long: `Asks the running daemon for the autopilot's last ranking: every swarm
of the feeds' catalog (and every swarm served) with its need score and the
score's parts, where the figures came from, how old the scrape is, whether
the daemon serves the swarm, and what the autopilot decided and why.

  score = need × reach × age
  need  = downloaders / (seeders + 1)
  reach = min(1, downloaders / repeater.target_ratio)
  age   = 0.5, growing to 1 over auto.settle in the feeds

DOWNLOADERS says where the count came from: "downloaders" (the tracker's
BEP 21 count), "incomplete" (the fallback when the tracker gives none; it
counts partial seeds too), "feed" (torznab figures), "gossip" (a
friend's scrape, told over the friends channel) or "seen" (our own
peers). "-us" marks our own announce taken out, "-Np" partial seeds we
saw taken out. SEEN is what we see of the connected peers of a swarm we
serve: seeds/partial seeds/downloaders. See docs/design.md, "Need score".`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer (every swarm)")
			fs.IntVar(&limit, "limit", 20, "print at most `N` swarms; 0 prints all")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 0 {
				return usageErr("swarms takes no arguments")
			}
			if limit < 0 {
				return usageErr("--limit %d: want 0 (all) or more", limit)
			}
			var rk *api.Ranking
			if err := g.callAPI(ctx, e, 10*time.Second, func(ctx context.Context, client *api.Client) (err error) {
				rk, err = client.Ranking(ctx)
				return err
			}); err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, rk)
			}
			printRanking(e.stdout, rk, limit, time.Now())
			return nil
		},
	}
}

func printRanking(w io.Writer, rk *api.Ranking, limit int, now time.Time) {
	switch {
	case !rk.Enabled:
		fmt.Fprintf(w, "autopilot: %s\n", termSafe(rk.Note))
	case rk.At.IsZero():
		fmt.Fprintf(w, "autopilot: on, %d slots; not ranked yet\n", rk.Slots)
	default:
		fmt.Fprintf(w, "autopilot: %d of %d slots used (%d by the owner, %d by the autopilot); ranked %s ago in %s, next in %s; min_score %.3g, hysteresis %.3g\n",
			rk.OwnerSwarms+rk.AutoSwarms, rk.Slots, rk.OwnerSwarms, rk.AutoSwarms, ago(now, rk.At),
			rk.Took.Duration().Round(time.Millisecond), until(now, rk.Next), rk.MinScore, rk.Hysteresis)
	}
	if rk.Enabled && rk.Note != "" {
		fmt.Fprintf(w, "note: %s\n", termSafe(rk.Note))
	}
	if rk.Error != "" {
		fmt.Fprintf(w, "last ranking failed: %s\n", termSafe(rk.Error))
	}
	if len(rk.Swarms) == 0 {
		if rk.Enabled {
			fmt.Fprintln(w, "no swarms to rank: the catalog is empty (see 'btslave feeds list')")
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSCORE\t= NEED\t× REACH\t× AGE\tSEEDERS\tDOWNLOADERS\tSEEN s/p/d\tSCRAPED\tSERVING\tINFOHASH\tNAME\tSTATE")
	shown := rk.Swarms
	if limit > 0 && len(shown) > limit {
		shown = shown[:limit]
	}
	for _, s := range shown {
		score, need, reach, age, seeders, down := "-", "-", "-", "-", "-", "-"
		if s.Source != "" {
			score, need, reach, age = fmt.Sprintf("%.4g", s.Score), fmt.Sprintf("%.3g", s.Need), fmt.Sprintf("%.2f", s.Reach), fmt.Sprintf("%.2f", s.Age)
			seeders = fmt.Sprint(s.Seeders)
			down = fmt.Sprintf("%d %s", s.Downloaders, termSafe(s.Source))
			if s.SelfSubtracted {
				down += " -us"
			}
			if s.PartialSubtracted > 0 {
				down += fmt.Sprintf(" -%dp", s.PartialSubtracted)
			}
		}
		seen := "-"
		if s.Seen != nil {
			seen = fmt.Sprintf("%d/%d/%d", s.Seen.Seeds, s.Seen.PartialSeeds, s.Seen.Downloaders)
		}
		scraped := "-"
		if !s.ScrapedAt.IsZero() {
			scraped = s.ScrapeAge.Duration().Round(time.Second).String() + " ago"
		}
		serving := "-"
		if s.Serving {
			serving = termSafe(cmp.Or(s.Origin, "yes"))
		}
		state := termSafe(s.State)
		if s.Error != "" && s.Source == "" {
			state += " (" + termSafe(s.Error) + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.8s\t%s\t%s\n", s.Rank, score, need, reach, age, seeders, down,
			seen, scraped, serving, termSafe(s.InfoHash), termSafe(clip(s.Name, 40)), state)
	}
	tw.Flush()
	if n := len(rk.Swarms) - len(shown); n > 0 {
		fmt.Fprintf(w, "... and %d more (--limit 0 shows all)\n", n)
	}
}

func ago(now, t time.Time) string   { return now.Sub(t).Round(time.Second).String() }
func until(now, t time.Time) string { return max(t.Sub(now), 0).Round(time.Second).String() }

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n-1]) + "…"
}
