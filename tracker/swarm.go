package tracker

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/anacrolix/torrent/metainfo"
)

// shardCount is the number of independently locked parts of the swarm
// state; torrents are spread over them by info-hash.
const shardCount = 1024

// maxAgeSlots is how many epochs (quarter intervals) a peer stays listed
// after its last announce: two intervals.
const maxAgeSlots = 8

// errFull is returned for an announce that would add a torrent to a full
// tracker (Options.MaxTorrents).
var errFull = errors.New("tracker is full: too many torrents")

// event is an announce's event.
type event uint8

const (
	eventNone event = iota
	eventCompleted
	eventStarted
	eventStopped
	eventPaused // BEP 21 (HTTP event=paused; UDP event 4, as libtorrent sends)
)

// announceReq is one announce, whichever protocol carried it.
type announceReq struct {
	ih    metainfo.Hash
	addr  netip.AddrPort // the connection's address, the announced port
	left  int64
	event event
	// want is how many peers the reply takes, of the announcer's address
	// family; with both, the rest of want is filled from the other one.
	want int
	both bool
}

// kind is the peer's class from its announce: seed, partial seed or
// downloader, as flag bits.
func (r *announceReq) kind() uint8 {
	switch {
	case r.left == 0:
		return flagSeed
	case r.event == eventPaused:
		return flagPartial
	}
	return 0
}

// counts are one torrent's figures, as announce and scrape replies give
// them.
type counts struct {
	seeds, partials, downloaders int64
	downloaded                   uint64
}

// incomplete is BEP 3's incomplete: downloaders and partial seeds.
func (c counts) incomplete() int64 { return c.partials + c.downloaders }

// reply is what an announce fills in besides the counts: compact peers.
type reply struct {
	peers4, peers6 []byte
}

// torrent is one swarm's state. It is guarded by its shard's lock.
type torrent struct {
	// down lists downloaders; up lists seeds and partial seeds, who get
	// only downloaders in their replies.
	down4, up4 peerList[peer4]
	down6, up6 peerList[peer6]
	c          counts
	// active is the Unix minute of the last announce (or synced peer);
	// saved is the one last marked to be written with the counter.
	active, saved int64
}

func (t *torrent) empty() bool {
	return t.down4.len()+t.up4.len()+t.down6.len()+t.up6.len() == 0
}

// shard is a part of the torrents under one lock.
type shard struct {
	mu sync.Mutex
	m  map[metainfo.Hash]*torrent
	_  [40]byte // keep shards on separate cache lines
}

// totals are the tracker-wide figures, kept by deltas.
type totals struct {
	torrents, seeds, partials, downloaders atomic.Int64
}

func (tt *totals) add(kind uint8, d int64) {
	switch kind {
	case flagSeed:
		tt.seeds.Add(d)
	case flagPartial:
		tt.partials.Add(d)
	default:
		tt.downloaders.Add(d)
	}
}

// swarms is the state of every torrent, in memory.
type swarms struct {
	shards      [shardCount]shard
	tot         totals
	maxTorrents int64

	dirtyMu sync.Mutex
	dirty   map[metainfo.Hash]struct{} // downloaded changed since the last snapshot
}

func newSwarms(maxTorrents int) *swarms {
	s := &swarms{maxTorrents: int64(maxTorrents), dirty: map[metainfo.Hash]struct{}{}}
	for i := range s.shards {
		s.shards[i].m = map[metainfo.Hash]*torrent{}
	}
	return s
}

func (s *swarms) shard(ih metainfo.Hash) *shard {
	return &s.shards[(uint(ih[0])<<8|uint(ih[1]))%shardCount]
}

func (s *swarms) markDirty(ih metainfo.Hash) {
	s.dirtyMu.Lock()
	s.dirty[ih] = struct{}{}
	s.dirtyMu.Unlock()
}

// takeDirty returns and forgets the torrents whose downloaded count
// changed.
func (s *swarms) takeDirty() map[metainfo.Hash]struct{} {
	s.dirtyMu.Lock()
	defer s.dirtyMu.Unlock()
	d := s.dirty
	s.dirty = map[metainfo.Hash]struct{}{}
	return d
}

// getOrCreate returns the torrent ih, creating it unless the tracker is
// full. The shard must be locked.
func (s *swarms) getOrCreate(sh *shard, ih metainfo.Hash) (*torrent, error) {
	if t := sh.m[ih]; t != nil {
		return t, nil
	}
	if s.tot.torrents.Load() >= s.maxTorrents {
		return nil, errFull
	}
	t := &torrent{}
	sh.m[ih] = t
	s.tot.torrents.Add(1)
	return t, nil
}

// change is what an announce did to its peer.
type change struct {
	flags     uint8 // the peer's flags after it (flagStopped when it left)
	completed bool  // it counted a download
}

// announce applies r at epoch (and Unix minute now) and, unless out is
// nil, picks peers for the reply. Downloaders get every kind of peer;
// seeds and partial seeds only downloaders.
func (s *swarms) announce(r *announceReq, epoch uint8, now int64, out *reply) (counts, change, error) {
	sh := s.shard(r.ih)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.m[r.ih]
	if t == nil {
		if r.event == eventStopped {
			return counts{}, change{flags: flagStopped}, nil
		}
		var err error
		if t, err = s.getOrCreate(sh, r.ih); err != nil {
			return counts{}, change{}, err
		}
	}
	t.active = now
	if t.c.downloaded > 0 && now-t.saved > 24*60 {
		// The saved last activity must not fall a month behind, or a
		// restart would drop a counter still in use.
		t.saved = now
		s.markDirty(r.ih)
	}
	var ch change
	if r.addr.Addr().Unmap().Is4() {
		ch = update(s, t, &t.down4, &t.up4, newPeer4(r.addr, 0, 0), r, epoch)
	} else {
		ch = update(s, t, &t.down6, &t.up6, newPeer6(r.addr, 0, 0), r, epoch)
	}
	if ch.completed {
		t.saved = now
		s.markDirty(r.ih)
	}
	if out != nil && ch.flags&flagStopped == 0 {
		pickReply(t, r, ch.flags&(flagSeed|flagPartial) != 0, out)
	}
	return t.c, ch, nil
}

// pickReply appends the peers for r's reply to out: of r's family first,
// then (with r.both) of the other. An uploader gets only downloaders.
func pickReply(t *torrent, r *announceReq, uploader bool, out *reply) {
	rnd := rand.Uint64()
	var b4 *peerList[peer4]
	var b6 *peerList[peer6]
	if !uploader {
		b4, b6 = &t.up4, &t.up6
	}
	if r.addr.Addr().Unmap().Is4() {
		var got int
		out.peers4, got = pick(out.peers4, &t.down4, b4, r.want, newPeer4(r.addr, 0, 0), rnd)
		if r.both {
			out.peers6, _ = pick(out.peers6, &t.down6, b6, r.want-got, peer6{}, rnd)
		}
		return
	}
	var got int
	out.peers6, got = pick(out.peers6, &t.down6, b6, r.want, newPeer6(r.addr, 0, 0), rnd)
	if r.both {
		out.peers4, _ = pick(out.peers4, &t.down4, b4, r.want-got, peer4(0), rnd)
	}
}

// update applies r to the peer p of t, whose lists for p's family are
// down and up.
func update[P peerRec[P]](s *swarms, t *torrent, down, up *peerList[P], p P, r *announceReq, epoch uint8) change {
	list := down
	bi, i, ok := down.find(p)
	if !ok {
		list = up
		bi, i, ok = up.find(p)
	}
	var old uint8
	if ok {
		old = list.get(bi, i).flags()
	}
	// A download counts once per peer: at its completed event, or when a
	// peer known to download says left = 0 without one (aria2 sends only
	// stopped when it exits at once).
	var ch change
	if r.left == 0 && old&flagCompleted == 0 && (r.event == eventCompleted || ok && kindOf(old) != flagSeed) {
		ch.completed = true
		ch.flags |= flagCompleted
		t.c.downloaded++
	}
	if r.event == eventStopped {
		if ok {
			list.removeAt(bi, i)
			t.uncount(s, kindOf(old))
		}
		ch.flags |= flagStopped | r.kind()
		return ch
	}
	kind := r.kind()
	ch.flags |= kind | old&flagCompleted
	rec := p.with(ch.flags, epoch)
	target := down
	if kind != 0 {
		target = up
	}
	switch {
	case ok && list == target:
		list.set(bi, i, rec)
	case ok:
		list.removeAt(bi, i)
		target.insert(rec)
	default:
		target.insert(rec)
	}
	if !ok || kindOf(old) != kind {
		if ok {
			t.uncount(s, kindOf(old))
		}
		t.count(s, kind)
	}
	return ch
}

// kindOf is the class bits of a peer's flags.
func kindOf(flags uint8) uint8 { return flags & (flagSeed | flagPartial) }

func (t *torrent) count(s *swarms, kind uint8) {
	switch kind {
	case flagSeed:
		t.c.seeds++
	case flagPartial:
		t.c.partials++
	default:
		t.c.downloaders++
	}
	s.tot.add(kind, 1)
}

func (t *torrent) uncount(s *swarms, kind uint8) {
	switch kind {
	case flagSeed:
		t.c.seeds--
	case flagPartial:
		t.c.partials--
	default:
		t.c.downloaders--
	}
	s.tot.add(kind, -1)
}

// scrape returns the counts of ih; ok is false for a torrent the tracker
// does not know.
func (s *swarms) scrape(ih metainfo.Hash) (c counts, ok bool) {
	sh := s.shard(ih)
	sh.mu.Lock()
	if t := sh.m[ih]; t != nil {
		c, ok = t.c, true
	}
	sh.mu.Unlock()
	return c, ok
}

// expiry is what sweep drops.
type expiry struct {
	epoch uint8 // the current epoch: peers more than maxAgeSlots older go
	// now is the Unix minute; an empty torrent with downloads is
	// dropped after idle minutes without announces, one without at once.
	now, idle int64
}

// sweep drops expired peers and the torrents left empty and returns how
// many peers it dropped.
func (s *swarms) sweep(e expiry) int {
	// Ages are taken as signed: a peer that announced after the sweep
	// read the clock is one epoch ahead, not 255 behind.
	stale := func(ep uint8) bool { return int8(e.epoch-ep) > maxAgeSlots }
	dropped := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for ih, t := range sh.m {
			dropped += sweepList(s, t, &t.down4, stale) + sweepList(s, t, &t.up4, stale) +
				sweepList(s, t, &t.down6, stale) + sweepList(s, t, &t.up6, stale)
			if t.empty() && (t.c.downloaded == 0 || e.now-t.active > e.idle) {
				delete(sh.m, ih)
				s.tot.torrents.Add(-1)
			}
		}
		sh.mu.Unlock()
	}
	return dropped
}

func sweepList[P peerRec[P]](s *swarms, t *torrent, l *peerList[P], stale func(epoch uint8) bool) int {
	if l.len() == 0 {
		return 0
	}
	return l.sweep(func(p P) bool {
		if stale(p.epoch()) {
			t.uncount(s, kindOf(p.flags()))
			return true
		}
		return false
	})
}

// counter is one torrent's downloaded count, as snapshots and scrape
// syncs carry it.
type counter struct {
	ih         metainfo.Hash
	downloaded uint64
	active     int64 // Unix minute of the last announce
}

// counters returns the counts of the torrents in ihs that are known.
func (s *swarms) counters(ihs map[metainfo.Hash]struct{}) []counter {
	out := make([]counter, 0, len(ihs))
	for ih := range ihs {
		sh := s.shard(ih)
		sh.mu.Lock()
		if t := sh.m[ih]; t != nil {
			out = append(out, counter{ih: ih, downloaded: t.c.downloaded, active: t.active})
		}
		sh.mu.Unlock()
	}
	return out
}

// eachShardCounter calls f for every torrent of shard i with its counts,
// under the shard's lock (f must not call back into s).
func (s *swarms) eachShardCounter(i int, f func(counter)) {
	sh := &s.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for ih, t := range sh.m {
		f(counter{ih: ih, downloaded: t.c.downloaded, active: t.active})
	}
}

// merge raises ih's downloaded count to c's if that is larger (the scrape
// sync's and the snapshot's rule), creating the torrent with c's last
// activity if it is unknown. It reports whether the count changed.
func (s *swarms) merge(c counter) bool {
	sh := s.shard(c.ih)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.m[c.ih]
	if t == nil {
		if c.downloaded == 0 {
			return false
		}
		var err error
		if t, err = s.getOrCreate(sh, c.ih); err != nil {
			return false
		}
		t.active, t.saved = c.active, c.active
	}
	if c.downloaded <= t.c.downloaded {
		return false
	}
	t.c.downloaded = c.downloaded
	return true
}
