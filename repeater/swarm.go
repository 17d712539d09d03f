package repeater

import (
	"context"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/types"

	"github.com/btslave/btslave/internal/buildinfo"
	"github.com/btslave/btslave/repeater/announce"
)

// ratioWindow is how far back the fetch threshold looks at the ratio: the
// yield of recent fetches, not the visit's, which lags behind as a swarm's
// demand fades.
const ratioWindow = time.Minute

// recentRatio is the upload:download ratio between the oldest sample within
// ratioWindow of now and now. With nothing downloaded in the window it is
// neutral (target) when nothing moved either, and infinite otherwise.
func recentRatio(samples []swarmSample, now swarmSample, target float64) float64 {
	base := now
	for i := len(samples) - 1; i >= 0 && now.at.Sub(samples[i].at) <= ratioWindow; i-- {
		base = samples[i]
	}
	if len(samples) > 0 && base.at.Equal(now.at) {
		base = samples[len(samples)-1] // samples sparser than the window
	}
	up, down := now.up-base.up, now.down-base.down
	switch {
	case down > 0:
		return float64(up) / float64(down)
	case up > 0:
		return math.Inf(1)
	}
	return target
}

// inflightHorizon is how much download time the pieces in flight may
// take at the measured rate.
const inflightHorizon = 4 * time.Second

// inflightPieces is how many pieces a swarm fetches at once: what the
// measured download rate brings in within inflightHorizon, but at least
// one per source that unchokes us, so that every source stays busy; at
// least two, at most 16 and a quarter of the cache share. A piece that
// trickles in for half a minute is fetched by the peers elsewhere
// meanwhile, and then nobody wants it from us. (Sizing it by an intake
// target H/r instead, issue #9, fetched more and lowered the ratio below
// 1 in the lab's short crowd: see docs/design.md, "Intake".)
func inflightPieces(measured float64, pieceLen int64, capacity, sources int) int {
	byRate := 1 + int(measured*inflightHorizon.Seconds()/float64(pieceLen))
	return max(2, min(16, capacity/4, max(sources, byRate)))
}

// Swarm is one torrent the repeater serves.
type Swarm struct {
	r      *Repeater
	t      *torrent.Torrent
	ih     metainfo.Hash
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	gone   chan struct{} // closed once stop has dropped the swarm

	partial atomic.Bool // say upload_only in our handshake

	ann        atomic.Pointer[announce.Announcer] // nil without trackers
	announcing chan struct{}                      // closed when the announcer has said "stopped"

	joined time.Time
	// demandSince is when the swarm first had a downloader (zero: not
	// yet): the visit's credit runs from then (visitCredit).
	demandSince time.Time

	mu      sync.Mutex
	pending map[int]bool // pieces we asked the client to fetch
	stats   SwarmStats
	samples []swarmSample // for the leave policy, oldest first
	leaving bool
	// keep: the leave rules never leave the swarm, only Leave does (the
	// owner's swarms). quiet is the rule that holds for a kept swarm
	// meanwhile ("" when none), since quietSince: it fetches nothing new
	// and serves what it holds, still joined and announced.
	keep       bool
	quiet      string
	quietSince time.Time
	// bootAt is when a quiet swarm may next fetch a piece to get
	// connected (at most once per IdleFor).
	bootAt time.Time
	// threshold is how many connected peers must want a piece before it
	// is fetched (adaptThreshold).
	threshold int
	// offerSt is the offer order's memory (offer.go), the round's own.
	offerSt offerState
	// starved: the last plan left qualifying pieces for want of a fetch
	// slot. downRate is the download rate over the last sample (bytes/s).
	starved  bool
	downRate float64
	// explicit are peers given by AddPeers, dialled again when dropped
	// (anacrolix never redials a peer); redialAt is when next to do so.
	explicit []torrent.PeerInfo
	redialAt time.Time
	// masterLink is the master the swarm helps (SetMaster), nil for none.
	masterLink *masterLink

	claims claims // local readers' pieces (reader.go)

	// prog is the peers' progress, the round's own (progress.go).
	prog progress
}

// AddPeers adds peers the swarm should stay connected to (a seed without a
// tracker, a peer that never dials, the owner's client): anacrolix never
// redials a dropped peer, so the swarm re-adds them now and then.
func (s *Swarm) AddPeers(ps []torrent.PeerInfo) {
	s.mu.Lock()
	s.explicit = append(s.explicit, ps...)
	s.mu.Unlock()
	s.t.AddPeers(ps)
}

// SwarmStats counts what the repeater did in one swarm.
type SwarmStats struct {
	Fetched   int // pieces fetched
	Cancelled int // fetches cancelled for lack of demand
	Evicted   int // pieces evicted because nobody wanted them
	Rounds    int // planning rounds
	Threshold int // peers that must want a piece before it is fetched, now
}

// InfoHash is the swarm's info hash.
func (s *Swarm) InfoHash() metainfo.Hash { return s.ih }

// Torrent is the client's torrent.
func (s *Swarm) Torrent() *torrent.Torrent { return s.t }

// Stats returns the swarm's counters.
func (s *Swarm) Stats() SwarmStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Kept reports whether the leave rules never leave the swarm (JoinOptions.Keep).
func (s *Swarm) Kept() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keep
}

// Quiet returns the leave rule that holds for a kept swarm, which fetches
// nothing new meanwhile, and since when; "" when it is busy.
func (s *Swarm) Quiet() (reason string, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quiet, s.quietSince
}

// adopt readies a served swarm for a Join again, kept if keep (never made
// unkept); false when the swarm is being left already.
func (s *Swarm) adopt(keep bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leaving {
		return false
	}
	s.keep = s.keep || keep
	return true
}

// SetPartialSeed switches partial-seed mode and tells the peers (BEP 21).
func (s *Swarm) SetPartialSeed(on bool) {
	if s.partial.Swap(on) != on {
		s.r.client.Wire.PartialSeedChanged(s.ih, on)
	}
}

func (s *Swarm) stop(reason string) {
	s.once.Do(func() {
		s.mu.Lock()
		s.leaving = true
		s.mu.Unlock()
		s.cancel()
		<-s.done
		<-s.announcing
		tot := s.r.client.Wire.Totals(s.ih)
		v := Visit{InfoHash: s.ih, Name: s.t.Name(), Joined: s.joined, Left: time.Now(),
			Uploaded: tot.BytesUp, Downloaded: tot.BytesDown, PeersServed: tot.Served, Reason: reason}
		s.t.Drop()
		s.r.cache.DropTorrent(s.ih)
		s.r.client.Wire.Forget(s.ih)
		// Unregistered only now that the torrent is dropped, so that a
		// Join meanwhile waits for gone instead of adding a new swarm on
		// the torrent being dropped.
		s.r.mu.Lock()
		delete(s.r.swarms, s.ih)
		s.r.mu.Unlock()
		close(s.gone)
		s.r.log.Info("left swarm", "infohash", s.ih.HexString(), "name", v.Name, "reason", reason,
			"uploaded", v.Uploaded, "downloaded", v.Downloaded, "ratio", v.Ratio(), "peers_served", v.PeersServed,
			"stayed", v.Left.Sub(v.Joined).Round(time.Second))
		if s.r.opts.OnLeave != nil {
			s.r.opts.OnLeave(v)
		}
	})
}

// judge samples the swarm and leaves it when the policy says so. top caps
// the fetch threshold: the highest fetch want of a piece we could fetch
// (topWant over fetchWant).
func (s *Swarm) judge(d demand, held map[int]bool, top int) {
	now := time.Now()
	s.mu.Lock()
	if s.leaving || (len(s.samples) > 0 && now.Sub(s.samples[len(s.samples)-1].at) < s.r.opts.Leave.Sample) {
		s.mu.Unlock()
		return
	}
	smp := swarmSample{at: now, seeds: -1, leechers: -1}
	if ann := s.ann.Load(); ann != nil {
		for _, st := range ann.Status() {
			if st.Seeders >= 0 && st.Leechers >= 0 && st.Seeders+st.Leechers > smp.seeds+smp.leechers {
				smp.seeds, smp.leechers = st.Seeders, st.Leechers
			}
		}
	}
	for p, w := range d.want {
		if w > 0 {
			smp.downloader = true
			if held[p] || d.have[p] > 0 {
				smp.wanted = true
				break
			}
		}
	}
	tot := s.r.client.Wire.Totals(s.ih)
	smp.up, smp.down = tot.BytesUp, tot.BytesDown
	if len(s.samples) > 0 {
		prev := s.samples[len(s.samples)-1]
		rate := float64(smp.up-prev.up) / now.Sub(prev.at).Seconds()
		ratio := recentRatio(s.samples, smp, s.r.opts.Repeater.TargetRatio)
		s.threshold = adaptThreshold(s.threshold, ratio, s.r.opts.Repeater.TargetRatio, rate, float64(s.r.upCap), d.downloaders, top, s.starved)
		s.downRate = float64(smp.down-prev.down) / now.Sub(prev.at).Seconds()
	}
	s.samples = append(s.samples, smp)
	// Keep what the longest rule looks back over.
	keep := max(s.r.policy.window, s.r.policy.idleFor) + 2*s.r.opts.Leave.Sample
	for len(s.samples) > 1 && now.Sub(s.samples[0].at) > keep {
		s.samples = s.samples[1:]
	}
	// A local reader (a btfs mount) is demand of its own: no rule leaves
	// or quiets a swarm while one reads it.
	reason, quiet := "", ""
	if s.Readers() == 0 {
		reason, quiet = judgeSwarm(s.r.policy, s.keep, s.joined, s.samples)
	}
	if reason != "" {
		s.leaving = true
	}
	wasQuiet := s.quiet
	if quiet != wasQuiet {
		s.quiet = quiet
		if quiet != "" {
			s.quietSince = now
		} else {
			s.quietSince = time.Time{}
		}
	}
	s.mu.Unlock()
	switch {
	case quiet != "" && wasQuiet == "":
		s.r.log.Info("swarm quiet: kept, fetching nothing new", "infohash", s.ih.HexString(), "name", s.t.Name(), "why", quiet)
	case quiet == "" && wasQuiet != "":
		s.r.log.Info("swarm busy again", "infohash", s.ih.HexString(), "name", s.t.Name(), "was", wasQuiet)
	}
	if reason != "" {
		go s.stop(reason) // not from the loop stop waits for
	}
}

// newAnnouncer makes the swarm's BEP 21 announcer.
func (s *Swarm) newAnnouncer(trackers [][]string) (*announce.Announcer, error) {
	var local netip.Addr
	if host := s.r.opts.Peer.Listen.Host(); host != "" {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			local = ip
		}
	}
	return announce.New(announce.Options{
		InfoHash:    s.ih,
		PeerID:      s.r.client.PeerID(),
		Port:        s.r.client.LocalPort(),
		Trackers:    trackers,
		Stats:       s.announceStats,
		PartialSeed: s.partial.Load,
		OnPeers: func(addrs []netip.AddrPort) {
			ps := make([]torrent.PeerInfo, len(addrs))
			for i, a := range addrs {
				ps[i] = torrent.PeerInfo{Addr: net.TCPAddrFromAddrPort(a), Source: "tracker"}
			}
			s.t.AddPeers(ps)
		},
		LocalIP:   local,
		UserAgent: buildinfo.ClientName(),
		Logger:    s.r.log.With("infohash", s.ih.HexString()),
	})
}

// announceStats is what the swarm tells trackers: payload bytes each way,
// and left as the bytes it does not hold (unknown size before the
// metadata: 1, never 0, which would claim a seed).
func (s *Swarm) announceStats() (up, down, left int64) {
	tot := s.r.client.Wire.Totals(s.ih)
	left = 1
	if s.t.Info() != nil {
		left = max(s.t.Length()-s.r.cache.Stats().Torrents[s.ih], 1)
	}
	return tot.BytesUp, tot.BytesDown, left
}

// Announcer is the swarm's announcer, nil when it has no trackers.
func (s *Swarm) Announcer() *announce.Announcer { return s.ann.Load() }

// forget drops a piece from the pending set (it was evicted).
func (s *Swarm) forget(piece int) {
	s.mu.Lock()
	delete(s.pending, piece)
	s.mu.Unlock()
}

func (s *Swarm) run(ctx context.Context) {
	defer close(s.done)
	select {
	case <-s.t.GotInfo():
	case <-ctx.Done():
		return
	}
	// Completed pieces: stop fetching them (so an eviction never triggers
	// a refetch by itself) and announce them where the library will not.
	sub := s.t.SubscribePieceStateChanges()
	defer sub.Close()
	tick := time.NewTicker(s.r.opts.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ch, ok := <-sub.Values:
			if !ok {
				return
			}
			if ch.Complete && s.r.cache.Has(s.ih, ch.Index) {
				s.mu.Lock()
				wasPending := s.pending[ch.Index]
				delete(s.pending, ch.Index)
				if wasPending {
					s.stats.Fetched++
				}
				s.mu.Unlock()
				if ch.Priority != types.PiecePriorityNone {
					s.t.Piece(ch.Index).SetPriority(types.PiecePriorityNone)
				}
				s.r.client.Wire.PieceAvailable(s.ih, ch.Index)
			}
		case <-tick.C:
			s.round()
		}
	}
}

// holdInterest keeps us interested in every peer that holds a piece we
// lack and another connected peer wants, whether or not we fetch it now
// (wire.Conn.HoldInterest): so that seeds' optimistic unchokes and the
// leechers' tit-for-tat count us from the start, and a piece we come to
// fetch is asked for at once instead of after an INTERESTED and the
// peer's next rechoke. A quiet swarm fetches nothing new: no hold.
func (s *Swarm) holdInterest(d demand, held map[int]bool, quiet bool) {
	var wanted []int
	for i, w := range d.want {
		if w > 0 && !held[i] && !quiet && !noHoldInterest {
			wanted = append(wanted, i)
		}
	}
	s.r.client.Wire.HoldInterest(s.ih, wanted)
}

// noHoldInterest turns holdInterest off, for the benchmarks' comparisons.
var noHoldInterest bool

// noTimeWant counts every want in full in fetch decisions (progress.go),
// for the benchmarks' comparisons.
var noTimeWant bool

// shouldBoot says whether a round that fetches, holds and awaits nothing
// fetches one piece to get going: then nothing is wanted and the client
// dials no one, so there is no demand to measure. A quiet swarm does so
// at most once per IdleFor (mayBoot): it still accepts the peers that dial
// it (AlwaysWantConns), and this finds the downloaders and sources that do
// not. Never past the budget of new pieces (negative: none): a helper that
// owes the swarm, or a repeater whose credit is spent, would take a piece
// nobody asked for.
func shouldBoot(fetch, held, pending int, mayBoot bool, budget int) bool {
	return fetch == 0 && held == 0 && pending == 0 && mayBoot && budget != 0
}

// round measures demand and applies one plan.
func (s *Swarm) round() {
	n := s.t.NumPieces()
	if n == 0 {
		return
	}
	held := map[int]bool{}
	for _, p := range s.r.cache.Held(s.ih) {
		held[p] = true
	}
	pieceLen := s.t.Info().PieceLength
	capacity := int(int64(s.r.opts.Repeater.SwarmCache) / pieceLen)
	if c := int(int64(s.r.opts.Cache.Size) / pieceLen); c < capacity || capacity == 0 {
		capacity = c
	}
	s.mu.Lock()
	threshold := max(s.threshold, 1)
	downRate := s.downRate
	quiet := s.quiet != ""
	helped := s.masterLink != nil
	now := time.Now()
	mayBoot := !quiet || now.After(s.bootAt)
	pending := make(map[int]bool, len(s.pending))
	for p := range s.pending {
		if held[p] {
			delete(s.pending, p)
			continue
		}
		pending[p] = true
	}
	s.mu.Unlock()

	forMaster, peers := s.masterRound(n, s.r.client.Wire.Peers(s.ih), held, pending)
	d := measureDemand(n, peers)
	// What to fetch is judged on the want that will still be there when
	// the piece arrives (progress.go); what to cancel, evict and offer,
	// and the leave rules, on the want there is now. Not in a helped
	// swarm: there the master's give-back rule bounds what we take, and
	// with the weighted want the master direction test took one block
	// more than its slack in two runs of three (the plain want: fourteen
	// runs within it).
	s.prog.observe(n, peers, now)
	df := d
	if !noTimeWant && !helped {
		df.want = s.prog.fetchWant(n, peers, d, deliverTime(pieceLen, len(pending), downRate))
	}
	// Fetch only what arrives within a few seconds, but from every peer
	// that unchokes us: a piece that trickles in for half a minute is
	// fetched by the peers elsewhere meanwhile, and then nobody wants it
	// from us; one piece per source keeps each source busy.
	inflight := inflightPieces(downRate, pieceLen, capacity, fetchSources(peers, df, held, threshold))
	s.holdInterest(d, held, quiet)
	s.offer(peers, held, now)
	s.judge(d, held, topWant(df, held))
	s.mu.Lock()
	var redial []torrent.PeerInfo
	if now.After(s.redialAt) && len(s.explicit) > 0 {
		redial, s.redialAt = append(redial, s.explicit...), now.Add(10*time.Second)
	}
	s.mu.Unlock()
	if redial != nil {
		s.t.AddPeers(redial) // connected or dialling ones are skipped
	}
	pl := makePlan(planInput{
		demand:    d,
		fetchWant: df.want,
		held:      held,
		pending:   pending,
		capacity:  capacity,
		inflight:  inflight,
		threshold: threshold,
		quiet:     quiet,
	})
	pl = s.masterFirst(pl, forMaster, inflight-len(pending))
	budget := s.masterBudget() // the give-back rule's; a free swarm's below
	if !helped && s.Readers() == 0 {
		s.mu.Lock()
		if s.demandSince.IsZero() && d.downloaders > 0 {
			s.demandSince = now
		}
		since := s.demandSince
		s.mu.Unlock()
		var age time.Duration // no downloader yet: the whole credit
		if !since.IsZero() {
			age = now.Sub(since)
		}
		tot := s.r.client.Wire.Totals(s.ih)
		budget = visitBudget(tot.BytesUp, tot.BytesDown, len(pending), pieceLen, age)
		// The swarms served share the cap: each gets its part.
		target := effectiveTarget(s.r.opts.Repeater.TargetRatio, d.downloaders)
		upShare := float64(s.r.upCap) / float64(max(1, s.r.numSwarms()))
		if in := intakeBudget(tot.BytesDown, len(pending), pieceLen, age, upShare, target); in >= 0 {
			budget = min(budget, in)
		}
	}
	pl = whileOwing(pl, budget)
	booting := shouldBoot(len(pl.fetch), len(held), len(pending), mayBoot, budget)
	if booting {
		pl.fetch = []int{rand.IntN(n)}
	}
	pl.evict = s.unclaimed(pl.evict)
	for _, p := range pl.evict {
		if s.r.cache.Evict(s.ih, p) {
			s.mu.Lock()
			s.stats.Evicted++
			s.mu.Unlock()
		}
	}
	for _, p := range pl.cancel {
		s.t.Piece(p).SetPriority(types.PiecePriorityNone)
	}
	s.syncEvicted(pl.fetch) // anacrolix fetches only what it knows is missing
	for _, p := range pl.fetch {
		s.t.Piece(p).SetPriority(types.PiecePriorityNormal)
		s.r.log.Debug("fetch", "infohash", s.ih.HexString(), "piece", p, "want", d.want[p], "fetch_want", df.want[p],
			"have", d.have[p], "threshold", threshold, "downloaders", d.downloaders, "pending", len(pending))
	}
	s.syncIdle()
	s.mu.Lock()
	for _, p := range pl.cancel {
		delete(s.pending, p)
	}
	for _, p := range pl.fetch {
		s.pending[p] = true
	}
	if booting && quiet {
		s.bootAt = now.Add(s.r.policy.idleFor)
	}
	s.starved = pl.starved
	s.stats.Cancelled += len(pl.cancel)
	s.stats.Rounds++
	s.stats.Threshold = threshold
	s.mu.Unlock()
}
