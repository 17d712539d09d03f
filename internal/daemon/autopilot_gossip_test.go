package daemon

import (
	"errors"
	"testing"

	"github.com/btslave/btslave/internal/rank"
)

// Ensure that when no tracker of ours answers, a friend's gossiped figures
// score the swarm, marked "gossip", ahead of the feed's.
func TestAutopilotGossip(t *testing.T) {
	r := newAutoRig(t, 0, nil)
	y := r.add("y", 0, 0)
	r.catalog.entries[0].Trackers = [][]string{{trackerB + "?y"}}
	r.scraper.errs = map[string]error{trackerB + "?y": errors.New("connection refused")}
	seeders, peers := 3, 10
	r.catalog.entries[0].Seeders, r.catalog.entries[0].Peers = &seeders, &peers
	r.ap.o.Gossip = func(ih string) (rank.Figures, bool) {
		if ih != y.HexString() {
			return rank.Figures{}, false
		}
		return rank.Figures{Seeders: 1, Incomplete: 8, At: r.now}, true
	}
	rk := r.rank(t)
	if s := row(t, rk, "y"); s.Source != "gossip" || s.Seeders != 1 || s.Downloaders != 8 {
		t.Errorf("y %+v", s)
	}
}
