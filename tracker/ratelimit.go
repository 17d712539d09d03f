package tracker

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync/atomic"
	"time"
)

// limiterSlots is the size of the per-IP limiter's table (a power of two).
const limiterSlots = 1 << 16

// limiter limits requests per source address without memory per
// address: each address hashes to two slots of a fixed table (with
// different secret seeds), each slot a GCRA token bucket (one atomic
// word: the theoretical arrival time). A request passes when either of
// its slots has room, and is charged to those that do. A flooding address
// fills both its slots and is refused; another address sharing one slot
// with it still passes by its other slot, unless it is unlucky twice
// (about one in limiterSlots² pairs).
type limiter struct {
	period int64 // nanoseconds per request; 0 = no limit
	burst  int64 // nanoseconds of credit: period × burst size
	seeds  [2]maphash.Seed
	slots  []atomic.Int64
	now    func() int64
}

// limiterBurst is how many seconds of requests an address may send at
// once.
const limiterBurst = 10

// newLimiter limits each address to perSecond requests a second, in
// bursts of limiterBurst seconds' worth (at least 10); 0 means no limit.
func newLimiter(perSecond float64) *limiter {
	l := &limiter{now: func() int64 { return time.Now().UnixNano() }}
	if perSecond <= 0 || math.IsInf(perSecond, 0) || math.IsNaN(perSecond) {
		return l
	}
	l.period = max(int64(float64(time.Second)/perSecond), 1)
	l.burst = l.period * max(int64(perSecond*limiterBurst), 10)
	l.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	l.slots = make([]atomic.Int64, limiterSlots)
	return l
}

// allow reports whether ip may send a request now, and charges it.
func (l *limiter) allow(ip netip.Addr) bool {
	if l.period == 0 {
		return true
	}
	a := ip.Unmap().As16()
	now := l.now()
	ok := false
	for _, seed := range l.seeds {
		s := &l.slots[maphash.Bytes(seed, a[:])&(limiterSlots-1)]
		for {
			tat := s.Load()
			t := max(tat, now)
			if t-now >= l.burst {
				break // no room in this slot
			}
			if s.CompareAndSwap(tat, t+l.period) {
				ok = true
				break
			}
		}
	}
	return ok
}
