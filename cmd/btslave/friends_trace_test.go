package main

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/btslave/btslave/internal/lab"
)

// masterTrace samples a master's torrent every half second while it
// downloads: who sends it what (Transmission gives per-peer rates only,
// so bytes per source are the integral of rateToClient over the samples,
// an estimate) and when each source's first byte arrived.
type masterTrace struct {
	mu     sync.Mutex
	start  time.Time
	names  map[netip.Addr]string
	first  map[string]time.Duration // source → first sample with a rate
	bytes  map[string]float64       // source → integrated bytes
	peers  map[string]time.Duration // source → first sample connected
	half   time.Duration            // when the master had half
	stop   chan struct{}
	done   chan struct{}
	lastAt time.Time
}

// traceMaster starts sampling torrent id of m; names maps peer addresses
// to a source's name ("seed", "A", "B", ...). With toPeer it counts what m
// sends each peer (rateToPeer) instead of what it gets.
func traceMaster(m *lab.Transmission, id int, names map[netip.Addr]string, toPeer bool) *masterTrace {
	tr := &masterTrace{start: time.Now(), names: names, first: map[string]time.Duration{}, bytes: map[string]float64{},
		peers: map[string]time.Duration{}, stop: make(chan struct{}), done: make(chan struct{}), lastAt: time.Now()}
	go func() {
		defer close(tr.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-tr.stop:
				return
			case <-t.C:
			}
			st, err := m.Torrent(id)
			if err != nil {
				continue
			}
			now := time.Now()
			tr.mu.Lock()
			dt, at := now.Sub(tr.lastAt).Seconds(), now.Sub(tr.start)
			tr.lastAt = now
			for _, p := range st.Peers {
				name := p.Address
				if a, err := netip.ParseAddr(p.Address); err == nil && names[a.Unmap()] != "" {
					name = names[a.Unmap()]
				}
				if _, ok := tr.peers[name]; !ok {
					tr.peers[name] = at
				}
				rate := p.RateToClient
				if toPeer {
					rate = p.RateToPeer
				}
				if rate > 0 {
					if _, ok := tr.first[name]; !ok {
						tr.first[name] = at
					}
					tr.bytes[name] += float64(rate) * dt
				}
			}
			if tr.half == 0 && st.PercentDone >= 0.5 {
				tr.half = at
			}
			tr.mu.Unlock()
		}
	}()
	return tr
}

// String ends the trace and tells, per source, when it connected, its
// first byte and about how many bytes it sent.
func (tr *masterTrace) String() string {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	<-tr.done
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var names []string
	for n := range tr.peers {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		first := "never"
		if f, ok := tr.first[n]; ok {
			first = fmt.Sprintf("%5.1f s", f.Seconds())
		}
		fmt.Fprintf(&b, "      %-6s connected at %5.1f s, first byte %s, ~%5d KiB (rate integral)\n",
			n, tr.peers[n].Seconds(), first, int(tr.bytes[n])>>10)
	}
	if tr.half > 0 {
		fmt.Fprintf(&b, "      half the torrent at %.1f s\n", tr.half.Seconds())
	}
	return b.String()
}
