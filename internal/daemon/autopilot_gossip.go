package daemon

import "github.com/btslave/btslave/internal/rank"

// gossiped returns a friend's figures for a swarm, marked as gossip.
func (ap *autopilot) gossiped(ih string) (rank.Figures, bool) {
	if ap.o.Gossip == nil {
		return rank.Figures{}, false
	}
	f, ok := ap.o.Gossip(ih)
	f.Gossip, f.Feed, f.HasDownloaders = true, false, false
	return f, ok
}
