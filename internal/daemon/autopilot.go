package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/rank"
	"github.com/btslave/btslave/repeater"
	"github.com/btslave/btslave/repeater/scrape"
)

// maxTrackersPerTorrent bounds the trackers scraped for one torrent: its
// announce-list may name dozens, and the first ones are its main ones.
const maxTrackersPerTorrent = 8

// rerankDebounce is how long a poke (a new catalog entry, a swarm left)
// waits for others before the catalog is ranked again.
const rerankDebounce = time.Second

// joinFailed is the cooldown reason of a swarm the autopilot could not
// join (a bad .torrent, a client error).
const joinFailed = "join failed"

// autoScraper is what the autopilot needs of the scraper.
type autoScraper interface {
	ScrapeAll(ctx context.Context, byTracker map[string][]metainfo.Hash) map[string]scrape.TrackerResult
}

// autoCatalog is what the autopilot needs of the feeds' catalog.
type autoCatalog interface {
	// ListMeta lists the entries without their .torrent bytes; joinEntry
	// fetches those for the few entries joined.
	ListMeta() ([]feeds.Entry, error)
}

// autoHost is what the autopilot needs of the daemon: the swarms served,
// and joining and leaving one.
type autoHost interface {
	servedSwarms() []servedSwarm
	joinEntry(e *feeds.Entry) (metainfo.Hash, error)
	leaveAuto(ih metainfo.Hash, why string)
}

// servedSwarm is a swarm being served, as the autopilot sees it.
type servedSwarm struct {
	ih     metainfo.Hash
	name   string
	origin rank.Origin
	joined time.Time
	// trackers are the announcer's, in announce-list order.
	trackers []string
	// seen is what the wire layer shows of the connected peers; nil before
	// the metadata.
	seen *rank.Seen
	// announced is our standing at each tracker.
	announced map[string]announceState
}

// announceState is what the announcer reports of one tracker.
type announceState struct {
	lastSuccess   time.Time
	lastEvent     string // of the last announce, successful or not
	pausedRefused bool
}

// counted says whether a tracker's figures given at "at" count us: among
// its incomplete peers once an announce of ours succeeded before then, and
// among its BEP 21 downloaders too while our last announce there was
// "started" or the tracker refused "paused". When the last success is
// after "at" and was the "started" one, the tracker answered before it
// knew us.
func (s announceState) counted(at time.Time) (self, downloader bool) {
	if s.lastSuccess.IsZero() || (s.lastSuccess.After(at) && s.lastEvent == "started") {
		return false, false
	}
	return true, s.lastEvent == "started" || s.pausedRefused
}

// cooldownReasons are the visit reasons after which a swarm is not joined
// again for auto.cooldown: it had nothing for us to do, or the owner sent
// us away. The autopilot's own leaves (outranked, need gone) have none:
// the hysteresis and min_score guard against flapping.
var cooldownReasons = map[string]bool{
	repeater.LeftIdle:      true,
	repeater.LeftNoNeed:    true,
	repeater.LeftSeeded:    true,
	repeater.LeftLowRatio:  true,
	repeater.LeftTimeLimit: true,
	repeater.LeftByOwner:   true,
	joinFailed:             true,
}

// leftSwarm is the last leave of a swarm.
type leftSwarm struct {
	at     time.Time
	reason string
	detail string // for joinFailed: the error
}

// autopilotOptions configures an autopilot.
type autopilotOptions struct {
	Auto        config.Auto
	Slots       int     // repeater.max_swarms
	TargetRatio float64 // repeater.target_ratio
	Scraper     autoScraper
	Catalog     autoCatalog
	Host        autoHost
	Logger      *slog.Logger
	Now         func() time.Time // default time.Now
	// Gossip, if set, gives a friend's figures for a swarm (friends.Gossip
	// via friendsvc); used when no tracker of ours answered.
	Gossip func(infoHash string) (rank.Figures, bool)
}

// autopilot ranks the catalog by need every interval and serves the
// neediest swarms within its slots (package rank decides; this runs it).
type autopilot struct {
	o      autopilotOptions
	log    *slog.Logger
	params rank.Params
	policy rank.Policy
	wake   chan struct{}

	joins, leaves, reranks atomic.Int64
	scrapes                *prometheus.CounterVec
	decisions              *prometheus.CounterVec

	mu      sync.Mutex
	left    map[metainfo.Hash]leftSwarm
	ranking api.Ranking
	scores  map[metainfo.Hash]float64 // last scores, for weakest
	next    time.Time
	failing map[string]bool // tracker → its last scrape failed
}

func newAutopilot(o autopilotOptions) *autopilot {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ap := &autopilot{
		o:      o,
		log:    o.Logger.With("component", "autopilot"),
		params: rank.Params{TargetRatio: o.TargetRatio, Settle: o.Auto.Settle.Std()},
		policy: rank.Policy{Slots: o.Slots, MinScore: o.Auto.MinScore, Hysteresis: o.Auto.Hysteresis, MinStay: o.Auto.MinStay.Std()},
		wake:   make(chan struct{}, 1),
		scrapes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "btslave_scrapes_total",
			Help: "Tracker scrape calls by the autopilot (one per tracker and ranking), by result.",
		}, []string{"result"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "btslave_autopilot_decisions_total",
			Help: "Swarms the autopilot joined and left, by action and reason.",
		}, []string{"action", "reason"}),
		left:    map[metainfo.Hash]leftSwarm{},
		scores:  map[metainfo.Hash]float64{},
		failing: map[string]bool{},
	}
	ap.ranking = api.Ranking{Enabled: true, Interval: api.Seconds(o.Auto.Interval.Std().Seconds()), Slots: o.Slots,
		MinScore: o.Auto.MinScore, Hysteresis: o.Auto.Hysteresis, Note: ap.note(), Swarms: []api.RankedSwarm{}}
	return ap
}

// note says why the autopilot joins nothing, or "".
func (ap *autopilot) note() string {
	if ap.o.Slots <= 0 {
		return "repeater.max_swarms = 0 (no limit) leaves the autopilot no slots: it ranks but joins nothing; set max_swarms"
	}
	return ""
}

// poke asks for a re-rank soon (a new catalog entry, a slot freed).
func (ap *autopilot) poke() {
	select {
	case ap.wake <- struct{}{}:
	default:
	}
}

// noteLeft records that a swarm was left, for the cooldown, and pokes.
func (ap *autopilot) noteLeft(ih metainfo.Hash, reason string, at time.Time) {
	ap.mu.Lock()
	ap.left[ih] = leftSwarm{at: at, reason: reason}
	ap.mu.Unlock()
	ap.poke()
}

// blocked says why ih may not be joined now: its cooldown, or "".
func (ap *autopilot) blocked(ih metainfo.Hash, now time.Time) string {
	ap.mu.Lock()
	l, ok := ap.left[ih]
	ap.mu.Unlock()
	if !ok || !cooldownReasons[l.reason] {
		return ""
	}
	rem := l.at.Add(ap.o.Auto.Cooldown.Std()).Sub(now)
	if rem <= 0 {
		return ""
	}
	why := l.reason
	if l.detail != "" {
		why += ": " + l.detail
	}
	return fmt.Sprintf("cooldown %s more: left %s ago (%s)", rank.RoundDuration(rem), rank.RoundDuration(now.Sub(l.at)), why)
}

// weakest returns the served autopilot swarm with the lowest last score.
func (ap *autopilot) weakest() (metainfo.Hash, bool) {
	var auto []servedSwarm
	for _, s := range ap.o.Host.servedSwarms() {
		if s.origin == rank.OriginAuto {
			auto = append(auto, s)
		}
	}
	if len(auto) == 0 {
		return metainfo.Hash{}, false
	}
	ap.mu.Lock()
	defer ap.mu.Unlock()
	w := slices.MinFunc(auto, func(a, b servedSwarm) int {
		return cmp.Compare(ap.scoreOf(a.ih), ap.scoreOf(b.ih))
	})
	return w.ih, true
}

func (ap *autopilot) scoreOf(ih metainfo.Hash) float64 {
	if v, ok := ap.scores[ih]; ok {
		return v
	}
	return -1
}

// Run ranks at once, then every auto.interval and soon after each poke,
// until ctx is done.
func (ap *autopilot) Run(ctx context.Context) {
	if n := ap.note(); n != "" {
		ap.log.Warn(n)
	}
	interval := ap.o.Auto.Interval.Std()
	debounce := min(rerankDebounce, interval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-ap.wake:
			select { // gather the pokes of a whole feed fetch
			case <-ctx.Done():
				return
			case <-time.After(debounce):
			}
			select {
			case <-ap.wake:
			default:
			}
		}
		ap.mu.Lock()
		ap.next = ap.o.Now().Add(interval)
		ap.mu.Unlock()
		ap.rerank(ctx)
		timer.Reset(interval)
	}
}

// rerank scrapes, scores and decides once, then joins and leaves.
func (ap *autopilot) rerank(ctx context.Context) {
	start := ap.o.Now()
	ap.reranks.Add(1)
	ap.mu.Lock()
	for ih, l := range ap.left {
		if start.Sub(l.at) > ap.o.Auto.Cooldown.Std() {
			delete(ap.left, ih) // its cooldown is over
		}
	}
	ap.mu.Unlock()
	entries, err := ap.o.Catalog.ListMeta()
	if err != nil {
		ap.log.Warn("ranking: cannot read the catalog", "err", err)
		ap.mu.Lock()
		ap.ranking.Error = err.Error()
		ap.mu.Unlock()
		return
	}
	if len(entries) > ap.o.Auto.Candidates {
		entries = entries[:ap.o.Auto.Candidates] // newest first
	}
	cands := ap.candidates(entries, ap.o.Host.servedSwarms(), start)

	byTracker := map[string][]metainfo.Hash{}
	for _, c := range cands {
		for _, u := range c.trackers {
			byTracker[u] = append(byTracker[u], c.ih)
		}
	}
	results := ap.o.Scraper.ScrapeAll(ctx, byTracker)
	if ctx.Err() != nil {
		return
	}
	ap.mu.Lock()
	for u, r := range results {
		result := "ok"
		if r.Err != nil {
			result = "error"
		}
		ap.scrapes.WithLabelValues(result).Inc()
		ap.failing[u] = r.Err != nil
	}
	for u := range ap.failing {
		if _, ok := results[u]; !ok {
			delete(ap.failing, u)
		}
	}
	ap.mu.Unlock()

	rcs := make([]rank.Candidate, len(cands))
	for i, c := range cands {
		ap.score(c, results)
		c.rc.Blocked = ap.blocked(c.ih, start)
		rcs[i] = c.rc
	}
	byKey := make(map[string]*candidate, len(cands))
	for _, c := range cands {
		byKey[c.rc.Key] = c
	}
	// A join that fails frees its slot for the next swarm: decide again,
	// with the failed one blocked (at most a few times).
	notes := map[string]string{}
	decided := map[string]bool{}
	var joins, leaves int
	for attempt := 0; ; attempt++ {
		plan := rank.Decide(rcs, ap.policy, start)
		failed := ap.execute(ctx, plan, byKey, start)
		if ctx.Err() != nil {
			return
		}
		joins, leaves = joins+len(plan.Join)-failed, leaves+len(plan.Leave)
		for k, v := range plan.Notes {
			if !decided[k] {
				notes[k] = v
			}
		}
		for _, k := range plan.Join {
			decided[k] = true
		}
		for _, l := range plan.Leave {
			decided[l.Key] = true
		}
		for _, c := range cands {
			if c.failed != "" {
				notes[c.rc.Key] = c.failed
			}
		}
		if failed == 0 || attempt == 2 {
			break
		}
		for i, c := range cands {
			switch {
			case c.joined:
				rcs[i].Serving, rcs[i].Origin, rcs[i].Joined = true, rank.OriginAuto, start
			case c.left:
				rcs[i].Serving = false
			case c.failed != "":
				rcs[i].Blocked = c.failed
			}
		}
	}
	ap.publish(cands, notes, start)
	ap.log.Debug("ranked", "swarms", len(cands), "trackers", len(byTracker), "joins", joins,
		"leaves", leaves, "took", ap.o.Now().Sub(start).Round(time.Millisecond))
}

// execute leaves, then joins, as plan says; it returns how many joins
// failed (their candidates say why).
func (ap *autopilot) execute(ctx context.Context, plan rank.Plan, byKey map[string]*candidate, now time.Time) (failed int) {
	for _, l := range plan.Leave {
		if ctx.Err() != nil {
			return failed
		}
		c := byKey[l.Key]
		ap.log.Info("autopilot: leaving swarm", append([]any{"reason", l.Reason}, c.logAttrs(now)...)...)
		ap.o.Host.leaveAuto(c.ih, l.Why)
		c.left = true
		ap.leaves.Add(1)
		ap.decisions.WithLabelValues("leave", l.Why).Inc()
	}
	for _, k := range plan.Join {
		if ctx.Err() != nil {
			return failed
		}
		c := byKey[k]
		if _, err := ap.o.Host.joinEntry(c.entry); err != nil {
			failed++
			if errors.Is(err, repeater.ErrTooManySwarms) {
				c.failed = "no free slot: the owner took it meanwhile"
				continue
			}
			ap.log.Warn("autopilot: cannot join swarm", append([]any{"err", err}, c.logAttrs(now)...)...)
			ap.mu.Lock()
			ap.left[c.ih] = leftSwarm{at: now, reason: joinFailed, detail: err.Error()}
			ap.mu.Unlock()
			c.failed = joinFailed + ": " + err.Error()
			ap.decisions.WithLabelValues("join", "failed").Inc()
			continue
		}
		c.joined = true
		ap.log.Info("autopilot: joined swarm", c.logAttrs(now)...)
		ap.joins.Add(1)
		ap.decisions.WithLabelValues("join", "needed").Inc()
	}
	return failed
}

// publish makes the ranking the API shows; notes are the decisions' reasons.
func (ap *autopilot) publish(cands []*candidate, notes map[string]string, at time.Time) {
	rows := make([]api.RankedSwarm, 0, len(cands))
	scores := make(map[metainfo.Hash]float64, len(cands))
	owner, auto := 0, 0
	for _, c := range cands {
		s := c.score
		row := api.RankedSwarm{
			InfoHash: c.ih.HexString(), Name: c.name,
			Score: s.Value, Need: s.Need, Reach: s.Reach, Age: s.Age,
			Seeders: s.Seeders, Downloaders: s.Downloaders, Source: string(s.Source),
			SelfSubtracted: s.SelfSubtracted, PartialSubtracted: s.PartialSubtracted,
			InFeed: api.Seconds(c.inFeed.Seconds()), State: notes[c.rc.Key],
			Serving: (c.served != nil && !c.left) || c.joined, Error: strings.Join(c.errs, "; "),
		}
		if c.inFeed < 0 {
			row.InFeed = -1
		}
		if c.entry != nil {
			row.Feeds = c.entry.Feeds
		}
		if c.fig != nil && !c.fig.Feed {
			row.Tracker, row.ScrapedAt = c.fig.Tracker, c.fig.At
		}
		switch {
		case c.served != nil:
			row.Origin = string(c.served.origin)
			if c.served.origin != rank.OriginAuto {
				owner++
			} else if !c.left {
				auto++
			}
			if sn := c.served.seen; sn != nil {
				row.Seen = &api.SeenPeers{Seeds: sn.Seeds, PartialSeeds: sn.PartialSeeds, Downloaders: sn.Downloaders}
			}
		case c.joined:
			row.Origin = string(rank.OriginAuto)
			auto++
		}
		if s.Known() {
			scores[c.ih] = s.Value
		}
		rows = append(rows, row)
	}
	slices.SortStableFunc(rows, func(a, b api.RankedSwarm) int {
		if ak, bk := a.Source != "", b.Source != ""; ak != bk {
			if ak {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.InfoHash, b.InfoHash)
	})
	for i := range rows {
		rows[i].Rank = i + 1
	}
	ap.mu.Lock()
	defer ap.mu.Unlock()
	r := &ap.ranking
	r.At, r.Took, r.Next = at, api.Seconds(ap.o.Now().Sub(at).Seconds()), ap.next
	r.OwnerSwarms, r.AutoSwarms = owner, auto
	r.Error, r.Swarms = "", rows
	ap.scores = scores
}

// lastScores returns the scores of the last ranking.
func (ap *autopilot) lastScores() map[metainfo.Hash]float64 {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	return ap.scores // replaced, never modified, by publish
}

// Ranking returns the last ranking, with scrape ages as of now.
func (ap *autopilot) Ranking() api.Ranking {
	ap.mu.Lock()
	r := ap.ranking
	r.Swarms = slices.Clone(r.Swarms)
	ap.mu.Unlock()
	now := ap.o.Now()
	for i := range r.Swarms {
		if t := r.Swarms[i].ScrapedAt; !t.IsZero() {
			r.Swarms[i].ScrapeAge = api.Seconds(now.Sub(t).Seconds())
		}
	}
	return r
}

// status is the autopilot's part of the daemon's status.
func (ap *autopilot) status() api.Autopilot {
	ap.mu.Lock()
	defer ap.mu.Unlock()
	r := &ap.ranking
	st := api.Autopilot{Enabled: true, Note: r.Note, LastRank: r.At, NextRank: r.Next, Ranked: len(r.Swarms),
		Slots: r.Slots, OwnerSwarms: r.OwnerSwarms, AutoSwarms: r.AutoSwarms,
		Joins: ap.joins.Load(), Leaves: ap.leaves.Load(), Trackers: len(ap.failing), Error: r.Error}
	for _, s := range r.Swarms {
		if s.Source != "" {
			st.Scored++
		}
	}
	for _, f := range ap.failing {
		if f {
			st.Failing++
		}
	}
	return st
}

// collectors are the autopilot's metrics.
func (ap *autopilot) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		ap.scrapes, ap.decisions,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "btslave_autopilot_rankings_total",
			Help: "Times the autopilot scraped and ranked the catalog.",
		}, func() float64 { return float64(ap.reranks.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "btslave_autopilot_ranked_swarms",
			Help: "Swarms with figures in the last ranking.",
		}, func() float64 { return float64(ap.status().Scored) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "btslave_autopilot_swarms",
			Help: "Swarms the autopilot serves.",
		}, func() float64 { return float64(ap.status().AutoSwarms) }),
	}
}
