package repeater

import (
	"sync"
)

// claims are the pieces local readers (btfs mounts) need next, per reader:
// the round never evicts them, and each claim touches them in the cache so
// that its own LRU takes other pieces first. Fetching is the reader's own
// business (anacrolix's reader priorities, above anything the plan sets).
type claims struct {
	mu sync.Mutex
	by map[any][2]int // reader → pieces [begin, end)
}

// Claim implements btfs.Claims: reader key needs pieces [begin, end).
func (s *Swarm) Claim(key any, begin, end int) {
	s.claims.mu.Lock()
	if s.claims.by == nil {
		s.claims.by = map[any][2]int{}
	}
	s.claims.by[key] = [2]int{begin, end}
	s.claims.mu.Unlock()
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
