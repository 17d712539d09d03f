package repeater

import (
	"sync"
)

// claims are the pieces local readers (btfs mounts) need next, per reader:
// the round never evicts them, and each claim touches them in the cache so
// that its own LRU takes other pieces first. Fetching is the reader's own
// business (anacrolix's reader priorities, above anything the plan sets).
//
// While a reader streams, evictions are told to anacrolix lazily (unsynced):
// anacrolix answers a piece turning incomplete with a request update on
// every connection to a peer that has it, whatever its priority ("piece
// incomplete" in onIncompletePiece), and an update while the request queue
// is nearly full adds only the few free slots, which anacrolix takes as the
// connection's new peak: the queue allowed to that peer collapses to twice
// that and grows back one doubling per emptied queue, a round trip each.
// With the cache full every new piece evicts one, so a sequential read
// through the mount fell from aria2c's rate to a quarter of it once more
// than the cache had been read (docs/btfs.md). An evicted piece nobody
// wants needs no update: it is told when something wants it again (a
// reader's claim, the plan's fetch) or when no reader streams. One evicted
// piece stays told (sentinel) unless anacrolix knows of another incomplete
// one, so it never takes the torrent for complete and drops its seeds as
// mutually complete.
type claims struct {
	mu       sync.Mutex
	by       map[any][2]int // reader → pieces [begin, end)
	unsynced map[int]bool   // evicted, not yet told to anacrolix
	sentinel int            // a piece anacrolix knows is incomplete, if it still is
}

// Claim implements btfs.Claims: reader key needs pieces [begin, end).
func (s *Swarm) Claim(key any, begin, end int) {
	s.claims.mu.Lock()
	if s.claims.by == nil {
		s.claims.by = map[any][2]int{}
	}
	s.claims.by[key] = [2]int{begin, end}
	var sync []int
	for p := range s.claims.unsynced {
		if p >= begin && p < end {
			sync = append(sync, p)
		}
	}
	s.claims.mu.Unlock()
	s.syncEvicted(sync)
	for p := begin; p < end; p++ {
		s.r.cache.Touch(s.ih, p)
	}
}

// Unclaim implements btfs.Claims.
func (s *Swarm) Unclaim(key any) {
	s.claims.mu.Lock()
	delete(s.claims.by, key)
	s.claims.mu.Unlock()
}

// Claimed returns the pieces readers claim now.
func (s *Swarm) Claimed() map[int]bool {
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	out := map[int]bool{}
	for _, r := range s.claims.by {
		for p := r[0]; p < r[1]; p++ {
			out[p] = true
		}
	}
	return out
}

// Readers is how many local readers hold a claim.
func (s *Swarm) Readers() int {
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	return len(s.claims.by)
}

// unclaimed drops the pieces readers claim from evict.
func (s *Swarm) unclaimed(evict []int) []int {
	if len(evict) == 0 {
		return evict
	}
	c := s.Claimed()
	if len(c) == 0 {
		return evict
	}
	out := evict[:0]
	for _, p := range evict {
		if !c[p] {
			out = append(out, p)
		}
	}
	return out
}

// deferSync reports whether the eviction of piece may be told to
// anacrolix later (claims): a reader streams, and another evicted piece is
// told already. It notes the piece; the caller tells anacrolix otherwise.
func (s *Swarm) deferSync(piece int) bool {
	s.claims.mu.Lock()
	if len(s.claims.by) == 0 {
		s.claims.mu.Unlock()
		return false
	}
	sentinel := s.claims.sentinel
	s.claims.mu.Unlock()
	// Not under claims.mu: State takes the client lock.
	told := sentinel != piece && !s.t.Piece(sentinel).State().Complete
	s.claims.mu.Lock()
	defer s.claims.mu.Unlock()
	if !told || s.claims.sentinel != sentinel {
		s.claims.sentinel = piece
		delete(s.claims.unsynced, piece)
		return false
	}
	if s.claims.unsynced == nil {
		s.claims.unsynced = map[int]bool{}
	}
	s.claims.unsynced[piece] = true
	return true
}

// syncEvicted tells anacrolix of the evicted pieces among ps that it was
// not told of yet.
func (s *Swarm) syncEvicted(ps []int) {
	var todo []int
	s.claims.mu.Lock()
	for _, p := range ps {
		if s.claims.unsynced[p] {
			delete(s.claims.unsynced, p)
			todo = append(todo, p)
		}
	}
	s.claims.mu.Unlock()
	for _, p := range todo {
		s.t.Piece(p).UpdateCompletion()
	}
}

// syncIdle tells anacrolix of every unsynced eviction once no reader
// streams.
func (s *Swarm) syncIdle() {
	s.claims.mu.Lock()
	if len(s.claims.by) > 0 || len(s.claims.unsynced) == 0 {
		s.claims.mu.Unlock()
		return
	}
	ps := make([]int, 0, len(s.claims.unsynced))
	for p := range s.claims.unsynced {
		ps = append(ps, p)
	}
	s.claims.mu.Unlock()
	s.syncEvicted(ps)
}
