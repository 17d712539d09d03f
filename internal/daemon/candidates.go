package daemon

import (
	"cmp"
	"net/url"
	"slices"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/rank"
	"github.com/btslave/btslave/repeater/scrape"
)

// The candidates the autopilot ranks: which swarms, and how each scores.

// candidate is one swarm being ranked.
type candidate struct {
	ih       metainfo.Hash
	name     string
	entry    *feeds.Entry // nil: served, but no feed offered it
	served   *servedSwarm // nil: not served
	trackers []string
	inFeed   time.Duration // -1 when no feed offered it

	fig    *rank.Figures
	errs   []string
	score  rank.Score
	rc     rank.Candidate
	joined bool   // joined this round
	left   bool   // left this round
	failed string // why joining it failed this round
}

// candidates lists the catalog entries and the served swarms no entry
// names, with their trackers.
func (ap *autopilot) candidates(entries []feeds.Entry, served []servedSwarm, now time.Time) []*candidate {
	servedBy := make(map[metainfo.Hash]*servedSwarm, len(served))
	for i := range served {
		servedBy[served[i].ih] = &served[i]
	}
	var out []*candidate
	seen := map[metainfo.Hash]bool{}
	for i := range entries {
		e := &entries[i]
		ih, ok := entryHash(e)
		if !ok || seen[ih] {
			continue
		}
		seen[ih] = true
		c := &candidate{ih: ih, name: cmp.Or(e.Name, e.Title), entry: e, served: servedBy[ih], inFeed: -1}
		if !e.FirstSeen.IsZero() {
			c.inFeed = max(now.Sub(e.FirstSeen), 0)
		}
		var urls []string
		for _, tier := range e.Trackers {
			urls = append(urls, tier...)
		}
		if c.served != nil {
			urls = append(urls, c.served.trackers...)
		}
		c.trackers = scrapable(urls)
		out = append(out, c)
	}
	for i := range served {
		s := &served[i]
		if seen[s.ih] {
			continue
		}
		out = append(out, &candidate{ih: s.ih, name: s.name, served: s, trackers: scrapable(s.trackers), inFeed: -1})
	}
	return out
}

// entryHash is the info hash the repeater and trackers know an entry by:
// v1, else the v2 hash truncated to 20 bytes (BEP 52).
func entryHash(e *feeds.Entry) (metainfo.Hash, bool) {
	var ih metainfo.Hash
	if e.InfoHashV1 != "" {
		return ih, ih.FromHexString(e.InfoHashV1) == nil
	}
	if len(e.InfoHashV2) == 64 {
		return ih, ih.FromHexString(e.InfoHashV2[:40]) == nil
	}
	return ih, false
}

// scrapable keeps the http(s) and udp tracker URLs, without duplicates,
// at most maxTrackersPerTorrent.
func scrapable(urls []string) []string {
	var out []string
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https" && p.Scheme != "udp") || slices.Contains(out, u) {
			continue
		}
		out = append(out, u)
		if len(out) == maxTrackersPerTorrent {
			break
		}
	}
	return out
}

// score fills c's figures, score and rank candidate.
func (ap *autopilot) score(c *candidate, results map[string]scrape.TrackerResult) {
	var figs []rank.Figures
	for _, u := range c.trackers {
		tr := results[u]
		r, ok := tr.Results[c.ih]
		switch {
		case ok && r.Known:
			f := rank.Figures{Tracker: u, Seeders: r.Complete, Incomplete: r.Incomplete,
				Downloaders: r.Downloaders, HasDownloaders: r.HasDownloaders, At: r.At}
			if c.served != nil {
				f.Self, f.SelfDownloader = c.served.announced[u].counted(r.At)
			}
			figs = append(figs, f)
		case tr.Err != nil:
			c.errs = append(c.errs, shortErr(tr.Err))
		case ok:
			c.errs = append(c.errs, u+": not listed")
		}
	}
	if f, ok := rank.Pick(figs); ok {
		c.fig = &f
	} else if f, ok := ap.gossiped(c.ih.HexString()); ok {
		c.fig = &f
	} else if e := c.entry; e != nil && e.Seeders != nil {
		f := rank.Figures{Feed: true, Seeders: int64(*e.Seeders), At: e.LastSeen}
		if e.Peers != nil {
			f.Incomplete = max(int64(*e.Peers-*e.Seeders), 0)
		}
		c.fig = &f
	}
	if len(c.trackers) == 0 && c.fig == nil {
		c.errs = append(c.errs, "no tracker to scrape")
	}
	in := rank.Input{Figures: c.fig, InFeed: c.inFeed}
	c.rc = rank.Candidate{Key: c.ih.HexString()}
	if s := c.served; s != nil {
		in.Seen = s.seen
		c.rc.Serving, c.rc.Origin, c.rc.Joined = true, s.origin, s.joined
	}
	c.score = rank.Compute(in, ap.params)
	c.rc.Score = c.score
}

// shortErr drops the URL noise of a scrape error.
func shortErr(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// logAttrs are a candidate's score parts, for the decision logs.
func (c *candidate) logAttrs(now time.Time) []any {
	s := c.score
	a := []any{"infohash", c.ih.HexString(), "name", c.name, "score", round3(s.Value),
		"need", round3(s.Need), "reach", round3(s.Reach), "age", round3(s.Age),
		"seeders", s.Seeders, "downloaders", s.Downloaders, "source", string(s.Source)}
	if s.SelfSubtracted {
		a = append(a, "self_subtracted", true)
	}
	if s.PartialSubtracted > 0 {
		a = append(a, "partial_subtracted", s.PartialSubtracted)
	}
	if c.fig != nil && !c.fig.Feed {
		a = append(a, "tracker", c.fig.Tracker, "scrape_age", rank.RoundDuration(now.Sub(c.fig.At)))
	}
	return a
}

func round3(v float64) float64 {
	if v != v {
		return 0
	}
	return float64(int64(v*1000+0.5)) / 1000
}
