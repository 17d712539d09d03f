package repeater

import (
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Why a swarm was left.
const (
	LeftIdle      = "nothing wanted"  // we hold or could fetch nothing peers want
	LeftNoNeed    = "no downloaders"  // no connected peer is downloading
	LeftSeeded    = "enough seeds"    // the tracker counts a seed for every downloader besides us
	LeftLowRatio  = "ratio too low"   // uploaded/downloaded over the window fell under min_ratio
	LeftTimeLimit = "visit time used" // repeater.visit_time passed
	LeftByOwner   = "left by owner"   // btslave leave
	LeftShutdown  = "shutdown"        // the daemon stopped; it rejoins on start
)

// Visit is one stay in a swarm, reported when the repeater leaves it.
type Visit struct {
	InfoHash    metainfo.Hash `json:"infohash"`
	Name        string        `json:"name"`
	Joined      time.Time     `json:"joined"`
	Left        time.Time     `json:"left"`
	Uploaded    int64         `json:"uploaded"`
	Downloaded  int64         `json:"downloaded"`
	PeersServed int           `json:"peers_served"`
	Reason      string        `json:"reason"`
}

// Ratio is uploaded/downloaded (uploaded when nothing was downloaded).
func (v Visit) Ratio() float64 {
	if v.Downloaded == 0 {
		return float64(v.Uploaded)
	}
	return float64(v.Uploaded) / float64(v.Downloaded)
}

// leavePolicy holds the thresholds of shouldLeave.
type leavePolicy struct {
	grace     time.Duration // no judgement before this much time in the swarm
	idleFor   time.Duration // how long "nothing wanted" or "no downloaders" must last
	window    time.Duration // ratio window
	minRatio  float64
	minMoved  int64 // bytes downloaded in the window before the ratio counts
	visitTime time.Duration
}

// swarmSample is one observation of a swarm, taken every round.
type swarmSample struct {
	at         time.Time
	up, down   int64 // totals so far
	wanted     bool  // some connected peer wants a piece we hold or can fetch
	downloader bool  // some connected peer is downloading
	// seeds and leechers are the tracker's complete and incomplete counts
	// (the busiest tracker's); -1 when no tracker told.
	seeds, leechers int64
}

// wellSeeded reports whether the tracker counts at least one seed for
// every downloader without us. Whether the tracker counts us as a seed
// (it honours event=paused) or as a leecher is unknown, so we are assumed
// to be one of the seeds: the rule errs on staying.
func (s swarmSample) wellSeeded() bool {
	return s.seeds >= 1 && s.leechers >= 0 && s.seeds-1 >= s.leechers
}

// judgeSwarm applies the leave rules to a swarm from its samples (oldest
// first). A swarm that is not kept is left for the first rule that holds
// (leave is its reason). A kept swarm (the owner's) is never left by a
// rule: while one holds it goes quiet instead (quiet is the reason), and
// repeater.visit_time does not apply to it.
func judgeSwarm(p leavePolicy, keep bool, joined time.Time, samples []swarmSample) (leave, quiet string) {
	if !keep {
		return shouldLeave(p, joined, samples), ""
	}
	p.visitTime = 0
	return "", shouldLeave(p, joined, samples)
}

// shouldLeave judges a swarm from its samples (oldest first) and returns
// the reason to leave, or "".
func shouldLeave(p leavePolicy, joined time.Time, samples []swarmSample) string {
	if len(samples) == 0 {
		return ""
	}
	now := samples[len(samples)-1]
	if p.visitTime > 0 && now.at.Sub(joined) >= p.visitTime {
		return LeftTimeLimit
	}
	if now.at.Sub(joined) < p.grace {
		return ""
	}
	// lastly reports whether cond held for every sample of the last d.
	lastly := func(d time.Duration, cond func(swarmSample) bool) bool {
		if now.at.Sub(joined) < d {
			return false
		}
		for i := len(samples) - 1; i >= 0 && now.at.Sub(samples[i].at) <= d; i-- {
			if !cond(samples[i]) {
				return false
			}
		}
		return true
	}
	if lastly(p.idleFor, func(s swarmSample) bool { return !s.downloader }) {
		return LeftNoNeed
	}
	if lastly(p.idleFor, func(s swarmSample) bool { return !s.wanted }) {
		return LeftIdle
	}
	if lastly(p.idleFor, swarmSample.wellSeeded) {
		return LeftSeeded
	}
	if p.minRatio > 0 && now.at.Sub(joined) >= p.window {
		// The sample closest to one window ago.
		old := samples[0]
		for _, s := range samples {
			if now.at.Sub(s.at) < p.window {
				break
			}
			old = s
		}
		down, up := now.down-old.down, now.up-old.up
		if down >= p.minMoved && float64(up) < p.minRatio*float64(down) {
			return LeftLowRatio
		}
	}
	return ""
}
