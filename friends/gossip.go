package friends

import (
	"sync"
	"time"
)

// Gossiped is a swarm's figures as a friend told them.
type Gossiped struct {
	SwarmStat
	From    ID        // who told us
	Scraped time.Time // when the figures were scraped (now - Age on receipt)
}

// Gossip merges figures friends tell, keeping per swarm the freshest
// scrape and, across scrapes, the highest downloaded count (which only
// grows), after opentracker's scrape sync.
type Gossip struct {
	mu     sync.Mutex
	swarms map[string]Gossiped
}

// Merge takes a Tell from a friend received at now; it returns how many
// swarms it changed.
func (g *Gossip) Merge(from ID, t Tell, now time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.swarms == nil {
		g.swarms = map[string]Gossiped{}
	}
	n := 0
	for _, s := range t.Swarms {
		got := Gossiped{SwarmStat: s, From: from, Scraped: now.Add(-time.Duration(s.Age) * time.Second)}
		old, ok := g.swarms[s.InfoHash]
		if ok && !got.Scraped.After(old.Scraped) {
			if s.Downloaded > old.Downloaded {
				old.Downloaded = s.Downloaded
				g.swarms[s.InfoHash] = old
				n++
			}
			continue
		}
		if ok && old.Downloaded > got.Downloaded {
			got.Downloaded = old.Downloaded
		}
		g.swarms[s.InfoHash] = got
		n++
	}
	return n
}

// Get returns what friends told about a swarm.
func (g *Gossip) Get(infoHash string) (Gossiped, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, ok := g.swarms[infoHash]
	return s, ok
}

// Len is the count a Beacon announces.
func (g *Gossip) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.swarms)
}
