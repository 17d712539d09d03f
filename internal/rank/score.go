package rank

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Source says where a swarm's downloader count came from.
type Source string

const (
	// SourceDownloaders is BEP 21's "downloaders" scrape key: leechers
	// that are not partial seeds.
	SourceDownloaders Source = "downloaders"
	// SourceIncomplete is the scrape's "incomplete", the fallback when a
	// tracker sends no "downloaders" (none seen does): it counts partial
	// seeds too.
	SourceIncomplete Source = "incomplete"
	// SourceFeed is a torznab feed's seeders and peers, used when no
	// tracker answered for the torrent.
	SourceFeed Source = "feed"
	// SourceSeen is our own view of the connected peers, for a swarm we
	// serve that no tracker answered for.
	SourceSeen Source = "seen"
	// SourceGossip is a friend's scrape, told over the friends channel,
	// used when we have no tracker figures of our own.
	SourceGossip Source = "gossip"
	// SourceNone means no figures at all: the swarm cannot be scored.
	SourceNone Source = ""
)

// Figures are one tracker's (or one feed's) counts for one swarm.
type Figures struct {
	// Tracker is the announce URL scraped; empty for SourceFeed.
	Tracker string
	// Seeders is the tracker's complete count.
	Seeders int64
	// Incomplete is the tracker's incomplete count (feed: peers less
	// seeders); Downloaders is BEP 21's count, valid when HasDownloaders.
	Incomplete     int64
	Downloaders    int64
	HasDownloaders bool
	// At is when the tracker (or feed) gave the figures.
	At time.Time
	// Feed is set for torznab figures from a feed rather than a tracker.
	Feed bool
	// Self is set when the tracker counts us among Incomplete: we serve
	// the swarm and had announced to it when it answered. SelfDownloader
	// is set when it also counts us among Downloaders: our last announce
	// there did not say paused.
	Self, SelfDownloader bool
	// Gossip is set for figures a friend told us (its scrape, At its
	// time); Incomplete holds the friend's leechers.
	Gossip bool
}

// Source says which count Leechers gives.
func (f *Figures) Source() Source {
	switch {
	case f.Feed:
		return SourceFeed
	case f.Gossip:
		return SourceGossip
	case f.HasDownloaders:
		return SourceDownloaders
	}
	return SourceIncomplete
}

// peers is the swarm size the tracker sees.
func (f *Figures) peers() int64 { return f.Seeders + f.Incomplete }

// Pick returns the figures to score a swarm by when several trackers
// answered for it: those of the tracker that sees the most peers (trackers
// of one torrent see overlapping parts of its swarm; one tracker's figures
// are consistent with each other, a mix of maxima is not), the newest on a
// tie. ok is false when figs is empty.
func Pick(figs []Figures) (best Figures, ok bool) {
	if len(figs) == 0 {
		return Figures{}, false
	}
	return slices.MaxFunc(figs, func(a, b Figures) int {
		if c := cmp.Compare(a.peers(), b.peers()); c != 0 {
			return c
		}
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return cmp.Compare(b.Tracker, a.Tracker) // the first URL wins a full tie
	}), true
}

// Seen is what the wire layer shows of the peers connected to a swarm we
// serve: each peer is a seed (has every piece), a partial seed (says
// upload_only and lacks a piece) or a downloader.
type Seen struct {
	Seeds        int64 `json:"seeds"`
	PartialSeeds int64 `json:"partial_seeds"`
	Downloaders  int64 `json:"downloaders"`
}

// Input is what one swarm is scored from.
type Input struct {
	// Figures are the tracker's (see Pick); nil when none answered.
	Figures *Figures
	// Seen is our view of the connected peers; nil when we do not serve
	// the swarm (or have no metadata for it yet).
	Seen *Seen
	// InFeed is how long the torrent has been in the catalog; negative
	// for a swarm no feed offered (the owner's), which gets full weight.
	InFeed time.Duration
}

// Params are the scoring constants.
type Params struct {
	// TargetRatio is repeater.target_ratio: reach is 1 from this many
	// downloaders up. Values under 1 count as 1.
	TargetRatio float64
	// Settle is auto.settle: the age weight grows from 0.5 to 1 over it;
	// 0 gives every torrent full weight at once.
	Settle time.Duration
}

// Score is a swarm's need score with its parts.
type Score struct {
	// Source says where Downloaders came from; SourceNone when the swarm
	// could not be scored (Value is then 0).
	Source Source `json:"source"`
	// Seeders and Downloaders are S and D after the corrections.
	Seeders     int64 `json:"seeders"`
	Downloaders int64 `json:"downloaders"`
	// SelfSubtracted is set when the tracker counted us and we took
	// ourselves out of D.
	SelfSubtracted bool `json:"self_subtracted,omitempty"`
	// PartialSubtracted is how many partial seeds we saw and took out of
	// an incomplete count.
	PartialSubtracted int64 `json:"partial_subtracted,omitempty"`
	// Need, Reach and Age are the factors; Value their product.
	Need  float64 `json:"need"`
	Reach float64 `json:"reach"`
	Age   float64 `json:"age"`
	Value float64 `json:"score"`
}

// Known reports whether the swarm could be scored.
func (s Score) Known() bool { return s.Source != SourceNone }

// Compute scores one swarm (see the package doc for the formula).
func Compute(in Input, p Params) Score {
	var s Score
	var d int64
	switch f := in.Figures; {
	case f != nil:
		s.Source = f.Source()
		s.Seeders = max(f.Seeders, 0)
		d = max(f.Incomplete, 0)
		self := f.Self
		if s.Source == SourceDownloaders {
			d, self = max(f.Downloaders, 0), f.SelfDownloader
		}
		if self && d > 0 {
			d--
			s.SelfSubtracted = true
		}
	case in.Seen != nil:
		s.Source = SourceSeen
	default:
		return s
	}
	if seen := in.Seen; seen != nil {
		s.Seeders = max(s.Seeders, seen.Seeds)
		if s.Source != SourceDownloaders {
			// incomplete counts partial seeds; those we see are not
			// downloaders, whatever the tracker says.
			s.PartialSubtracted = min(max(seen.PartialSeeds, 0), d)
			d -= s.PartialSubtracted
		}
		d = max(d, seen.Downloaders)
	}
	s.Downloaders = d
	s.Need = float64(d) / float64(s.Seeders+1)
	s.Reach = math.Min(1, float64(d)/math.Max(1, p.TargetRatio))
	s.Age = 1
	if p.Settle > 0 && in.InFeed >= 0 {
		s.Age = 0.5 + 0.5*math.Min(1, float64(in.InFeed)/float64(p.Settle))
	}
	s.Value = s.Need * s.Reach * s.Age
	return s
}
