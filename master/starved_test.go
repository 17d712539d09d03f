package master

import "testing"

// Ensure that a swarm is starved at ratio downloaders per seed, always
// with downloaders and no seed, and never with unknown figures.
func TestStarved(t *testing.T) {
	for _, c := range []struct {
		seeders, leechers int
		want              bool
	}{{1, 4, true}, {1, 3, false}, {0, 1, true}, {2, 8, true}, {2, 7, false}, {-1, 9, false}, {1, -1, false}, {0, 0, false}} {
		tt := Torrent{Seeders: c.seeders, Leechers: c.leechers}
		if got := tt.Starved(4); got != c.want {
			t.Errorf("%d seeders, %d leechers: starved %v, want %v", c.seeders, c.leechers, got, c.want)
		}
	}
}
