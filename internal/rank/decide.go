package rank

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Origin says who had a served swarm joined.
type Origin string

const (
	// OriginOwner is a swarm the owner gave with "btslave repeat" (or one
	// whose origin is unknown): the autopilot never leaves it.
	OriginOwner Origin = "owner"
	// OriginAuto is a swarm the autopilot joined.
	OriginAuto Origin = "auto"
)

// Candidate is one swarm as Decide sees it.
type Candidate struct {
	// Key identifies the swarm (its info hash in hex).
	Key string
	// Score is the swarm's need score.
	Score Score
	// Serving is set while the repeater serves the swarm; Origin says who
	// had it joined, Joined when.
	Serving bool
	Origin  Origin
	Joined  time.Time
	// Blocked says why a swarm not served may not be joined now
	// ("cooldown 40m: nothing wanted"); empty when it may.
	Blocked string
}

// Policy is what Decide decides by.
type Policy struct {
	// Slots is how many swarms may be served at once (repeater.max_swarms);
	// the owner's swarms take theirs first. 0 leaves the autopilot none.
	Slots int
	// MinScore, Hysteresis and MinStay are auto.min_score,
	// auto.hysteresis (values under 1 count as 1) and auto.min_stay.
	MinScore   float64
	Hysteresis float64
	MinStay    time.Duration
}

// Why the autopilot leaves a swarm: Leave.Why, also the reason its visit
// records.
const (
	LeftOutranked = "outranked"                   // a needier swarm took its slot
	LeftNeedGone  = "need gone"                   // its score fell under min_score
	LeftForOwner  = "room for the owner's swarms" // the owner's swarms took its slot
)

// Leave is a swarm to leave: Why is one of the Left constants, Reason
// says it in full, with the scores.
type Leave struct {
	Key    string
	Why    string
	Reason string
}

// Plan is what to change: leave first, then join (in score order).
// Notes says for every candidate why it is served or not, for people.
type Plan struct {
	Join  []string
	Leave []Leave
	Notes map[string]string
}

// contender is a candidate competing for a slot.
type contender struct {
	c      *Candidate
	eff    float64 // score, times the hysteresis for a swarm served
	locked bool    // served and kept whatever the others score
}

// Decide plans which swarms the autopilot serves: the owner's are kept
// and take their slots first; of the rest, swarms it serves inside
// min_stay or without figures this round are kept; then the highest
// scores take the slots left, a served swarm's score counted times the
// hysteresis. A swarm that is blocked, has no figures or scores under
// min_score is not joined; a served one whose score times the hysteresis
// falls under min_score is left. now is the time of the decision.
func Decide(cands []Candidate, p Policy, now time.Time) Plan {
	plan := Plan{Notes: make(map[string]string, len(cands))}
	h := max(p.Hysteresis, 1)
	owner := 0
	var locked, free []contender
	for i := range cands {
		c := &cands[i]
		switch {
		case c.Serving && c.Origin != OriginAuto:
			owner++
			plan.Notes[c.Key] = "serving for the owner"
		case c.Serving && now.Sub(c.Joined) < p.MinStay:
			locked = append(locked, contender{c: c, eff: c.Score.Value * h, locked: true})
			plan.Notes[c.Key] = fmt.Sprintf("serving, kept for min_stay (joined %s ago)", RoundDuration(now.Sub(c.Joined)))
		case c.Serving && !c.Score.Known():
			locked = append(locked, contender{c: c, eff: 0, locked: true})
			plan.Notes[c.Key] = "serving, kept: no figures this round"
		case c.Serving && c.Score.Value*h < p.MinScore:
			plan.Leave = append(plan.Leave, Leave{Key: c.Key, Why: LeftNeedGone,
				Reason: fmt.Sprintf("score %.3g × hysteresis %.3g under min_score %.3g", c.Score.Value, h, p.MinScore)})
			plan.Notes[c.Key] = "leaving: " + plan.Leave[len(plan.Leave)-1].Reason
		case c.Serving:
			free = append(free, contender{c: c, eff: c.Score.Value * h})
		case c.Blocked != "":
			plan.Notes[c.Key] = c.Blocked
		case !c.Score.Known():
			plan.Notes[c.Key] = "no figures"
		case c.Score.Value < p.MinScore:
			plan.Notes[c.Key] = fmt.Sprintf("score under min_score %.3g", p.MinScore)
		default:
			free = append(free, contender{c: c, eff: c.Score.Value})
		}
	}
	budget := max(p.Slots-owner, 0)
	byEff := func(a, b contender) int {
		if c := cmp.Compare(b.eff, a.eff); c != 0 {
			return c
		}
		if a.c.Serving != b.c.Serving { // a tie keeps what is served
			if a.c.Serving {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.c.Key, b.c.Key)
	}
	// More locked swarms than slots: the owner added swarms since. The
	// owner's wish wins; the lowest scores make room.
	slices.SortFunc(locked, byEff)
	for len(locked) > budget {
		l := locked[len(locked)-1]
		locked = locked[:len(locked)-1]
		plan.Leave = append(plan.Leave, Leave{Key: l.c.Key, Why: LeftForOwner, Reason: "making room for the owner's swarms"})
		plan.Notes[l.c.Key] = "leaving: making room for the owner's swarms"
	}
	slices.SortFunc(free, byEff)
	room := budget - len(locked)
	chosen := free[:min(room, len(free))]
	rest := free[len(chosen):]
	// The marginal newcomer: the weakest swarm joined this round, named
	// in the reason of each swarm it displaces.
	var marginal *contender
	for i := range chosen {
		if !chosen[i].c.Serving {
			marginal = &chosen[i]
		}
	}
	for _, k := range chosen {
		if k.c.Serving {
			plan.Notes[k.c.Key] = fmt.Sprintf("serving (score × hysteresis %.3g)", k.eff)
			continue
		}
		plan.Join = append(plan.Join, k.c.Key)
		plan.Notes[k.c.Key] = "joining"
	}
	for _, k := range rest {
		if !k.c.Serving {
			plan.Notes[k.c.Key] = fmt.Sprintf("no free slot (%d of %d taken by the owner, %d by needier swarms)",
				owner, p.Slots, len(locked)+len(chosen))
			continue
		}
		// Served and not chosen: either a newcomer beat it, or the owner's
		// swarms took its slot.
		why, reason := LeftForOwner, "making room for the owner's swarms"
		if marginal != nil {
			why, reason = LeftOutranked, fmt.Sprintf("outranked by %.8s (score %.3g > %.3g × hysteresis %.3g)",
				marginal.c.Key, marginal.eff, k.c.Score.Value, h)
		}
		plan.Leave = append(plan.Leave, Leave{Key: k.c.Key, Why: why, Reason: reason})
		plan.Notes[k.c.Key] = "leaving: " + reason
	}
	return plan
}

// RoundDuration rounds d for people: to the minute from an hour, to the
// second from a second, else to the millisecond.
func RoundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute)
	case d >= time.Second:
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
