package rank

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

var params = Params{TargetRatio: 4, Settle: time.Hour}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// Ensure that each part of the need score does what docs/design.md says.
func TestCompute(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	fig := func(seeders, incomplete int64) *Figures {
		return &Figures{Tracker: "http://t/announce", Seeders: seeders, Incomplete: incomplete, At: t0}
	}
	for _, tc := range []struct {
		name string
		in   Input
		p    Params
		want Score
	}{
		{"no figures", Input{}, params, Score{}},
		{"incomplete fallback", Input{Figures: fig(1, 3), InFeed: 2 * time.Hour}, params,
			Score{Source: SourceIncomplete, Seeders: 1, Downloaders: 3, Need: 1.5, Reach: 0.75, Age: 1, Value: 1.125}},
		{"no seeders: demand per one uploader", Input{Figures: fig(0, 8), InFeed: time.Hour}, params,
			Score{Source: SourceIncomplete, Seeders: 0, Downloaders: 8, Need: 8, Reach: 1, Age: 1, Value: 8}},
		{"healthy", Input{Figures: fig(2, 1), InFeed: time.Hour}, params,
			Score{Source: SourceIncomplete, Seeders: 2, Downloaders: 1, Need: 1.0 / 3, Reach: 0.25, Age: 1, Value: 1.0 / 12}},
		{"nobody downloading", Input{Figures: fig(5, 0), InFeed: time.Hour}, params,
			Score{Source: SourceIncomplete, Seeders: 5, Need: 0, Reach: 0, Age: 1, Value: 0}},
		{"BEP 21 downloaders win over incomplete",
			Input{Figures: &Figures{Seeders: 1, Incomplete: 9, Downloaders: 4, HasDownloaders: true}, InFeed: time.Hour}, params,
			Score{Source: SourceDownloaders, Seeders: 1, Downloaders: 4, Need: 2, Reach: 1, Age: 1, Value: 2}},
		{"ourselves out of incomplete",
			Input{Figures: &Figures{Seeders: 1, Incomplete: 4, Self: true}, InFeed: time.Hour}, params,
			Score{Source: SourceIncomplete, Seeders: 1, Downloaders: 3, SelfSubtracted: true, Need: 1.5, Reach: 0.75, Age: 1, Value: 1.125}},
		{"paused: not among downloaders",
			Input{Figures: &Figures{Seeders: 1, Incomplete: 5, Downloaders: 4, HasDownloaders: true, Self: true}, InFeed: time.Hour}, params,
			Score{Source: SourceDownloaders, Seeders: 1, Downloaders: 4, Need: 2, Reach: 1, Age: 1, Value: 2}},
		{"started: among downloaders",
			Input{Figures: &Figures{Seeders: 1, Incomplete: 5, Downloaders: 5, HasDownloaders: true, Self: true, SelfDownloader: true}, InFeed: time.Hour}, params,
			Score{Source: SourceDownloaders, Seeders: 1, Downloaders: 4, SelfSubtracted: true, Need: 2, Reach: 1, Age: 1, Value: 2}},
		{"self never below zero", Input{Figures: &Figures{Seeders: 1, Self: true}, InFeed: time.Hour}, params,
			Score{Source: SourceIncomplete, Seeders: 1, Age: 1}},
		{"seen partial seeds are not downloaders",
			Input{Figures: fig(1, 6), Seen: &Seen{Seeds: 1, PartialSeeds: 2, Downloaders: 3}, InFeed: time.Hour}, params,
			Score{Source: SourceIncomplete, Seeders: 1, Downloaders: 4, PartialSubtracted: 2, Need: 2, Reach: 1, Age: 1, Value: 2}},
		{"seen more than the tracker knows",
			Input{Figures: fig(0, 1), Seen: &Seen{Seeds: 2, Downloaders: 5}, InFeed: time.Hour}, params,
			Score{Source: SourceIncomplete, Seeders: 2, Downloaders: 5, Need: 5.0 / 3, Reach: 1, Age: 1, Value: 5.0 / 3}},
		{"seen partial seeds do not touch BEP 21 downloaders",
			Input{Figures: &Figures{Seeders: 0, Incomplete: 6, Downloaders: 4, HasDownloaders: true}, Seen: &Seen{PartialSeeds: 2, Downloaders: 1}, InFeed: time.Hour}, params,
			Score{Source: SourceDownloaders, Downloaders: 4, Need: 4, Reach: 1, Age: 1, Value: 4}},
		{"seen only", Input{Seen: &Seen{Seeds: 1, PartialSeeds: 1, Downloaders: 2}, InFeed: -1}, params,
			Score{Source: SourceSeen, Seeders: 1, Downloaders: 2, Need: 1, Reach: 0.5, Age: 1, Value: 0.5}},
		{"torznab figures", Input{Figures: &Figures{Feed: true, Seeders: 3, Incomplete: 12}, InFeed: time.Hour}, params,
			Score{Source: SourceFeed, Seeders: 3, Downloaders: 12, Need: 3, Reach: 1, Age: 1, Value: 3}},
		{"new in the feed: half weight", Input{Figures: fig(0, 4)}, params,
			Score{Source: SourceIncomplete, Downloaders: 4, Need: 4, Reach: 1, Age: 0.5, Value: 2}},
		{"half settled", Input{Figures: fig(0, 4), InFeed: 30 * time.Minute}, params,
			Score{Source: SourceIncomplete, Downloaders: 4, Need: 4, Reach: 1, Age: 0.75, Value: 3}},
		{"owner's swarm: full weight", Input{Figures: fig(0, 4), InFeed: -1}, params,
			Score{Source: SourceIncomplete, Downloaders: 4, Need: 4, Reach: 1, Age: 1, Value: 4}},
		{"settle 0: full weight", Input{Figures: fig(0, 4)}, Params{TargetRatio: 4},
			Score{Source: SourceIncomplete, Downloaders: 4, Need: 4, Reach: 1, Age: 1, Value: 4}},
		{"target ratio under 1 counts as 1", Input{Figures: fig(0, 1)}, Params{TargetRatio: 0.2},
			Score{Source: SourceIncomplete, Downloaders: 1, Need: 1, Reach: 1, Age: 1, Value: 1}},
		{"negative counts are zero", Input{Figures: fig(-3, -1)}, Params{TargetRatio: 4},
			Score{Source: SourceIncomplete, Age: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(tc.in, tc.p)
			w := tc.want
			if got.Source != w.Source || got.Seeders != w.Seeders || got.Downloaders != w.Downloaders ||
				got.SelfSubtracted != w.SelfSubtracted || got.PartialSubtracted != w.PartialSubtracted ||
				!near(got.Need, w.Need) || !near(got.Reach, w.Reach) || !near(got.Age, w.Age) || !near(got.Value, w.Value) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
			if !near(got.Value, got.Need*got.Reach*got.Age) {
				t.Errorf("score %v is not need·reach·age", got.Value)
			}
		})
	}
}

// Ensure that the needier of two swarms always scores higher, other things
// equal: more downloaders, or fewer seeders.
func TestComputeMonotonic(t *testing.T) {
	score := func(s, d int64) float64 {
		return Compute(Input{Figures: &Figures{Seeders: s, Incomplete: d}, InFeed: time.Hour}, params).Value
	}
	for s := int64(0); s < 20; s++ {
		for d := int64(0); d < 20; d++ {
			if score(s, d+1) <= score(s, d) {
				t.Errorf("S=%d: D=%d scores %v, not above D=%d %v", s, d+1, score(s, d+1), d, score(s, d))
			}
			if d > 0 && score(s+1, d) >= score(s, d) {
				t.Errorf("D=%d: S=%d scores %v, not below S=%d %v", d, s+1, score(s+1, d), s, score(s, d))
			}
		}
	}
}

func TestPick(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	if _, ok := Pick(nil); ok {
		t.Error("Pick(nil) ok")
	}
	figs := []Figures{
		{Tracker: "a", Seeders: 1, Incomplete: 1, At: t0},
		{Tracker: "b", Seeders: 2, Incomplete: 5, At: t0},
		{Tracker: "c", Seeders: 5, Incomplete: 2, At: t0.Add(time.Second)},
		{Tracker: "d", Seeders: 0, Incomplete: 3, At: t0},
	}
	if got, _ := Pick(figs); got.Tracker != "c" {
		t.Errorf("picked %q, want the biggest and newest view c", got.Tracker)
	}
	figs[2].At = t0
	if got, _ := Pick(figs); got.Tracker != "b" {
		t.Errorf("picked %q, want the first of equal views b", got.Tracker)
	}
}

func cand(key string, value float64) Candidate {
	src := SourceIncomplete
	return Candidate{Key: key, Score: Score{Source: src, Value: value}}
}

func served(c Candidate, origin Origin, joined time.Time) Candidate {
	c.Serving, c.Origin, c.Joined = true, origin, joined
	return c
}

// Ensure the autopilot's choices: the top scores within the slots the
// owner leaves, hysteresis, min_stay, cooldown, min_score, and a swarm
// without figures kept.
func TestDecide(t *testing.T) {
	now := time.Unix(1e9, 0)
	long := now.Add(-time.Hour)
	pol := Policy{Slots: 2, MinScore: 0.5, Hysteresis: 1.5, MinStay: 10 * time.Minute}
	blocked := cand("cool", 9)
	blocked.Blocked = "cooldown 40m: nothing wanted"
	unknown := Candidate{Key: "dark"}
	for _, tc := range []struct {
		name      string
		cands     []Candidate
		pol       Policy
		join      []string
		leave     []string
		noteWants map[string]string
	}{
		{"fill the slots with the neediest", []Candidate{cand("a", 1), cand("b", 3), cand("c", 2), cand("d", 0.1)}, pol,
			[]string{"b", "c"}, nil, map[string]string{"a": "no free slot", "d": "under min_score", "b": "joining"}},
		{"blocked, unknown and weak are not joined", []Candidate{blocked, unknown, cand("weak", 0.4), cand("ok", 0.6)}, pol,
			[]string{"ok"}, nil, map[string]string{"cool": "cooldown", "dark": "no figures", "weak": "min_score"}},
		{"hysteresis keeps a served swarm", []Candidate{served(cand("s", 2), OriginAuto, long), cand("x", 2.9), cand("y", 5)}, Policy{Slots: 2, MinScore: 0.5, Hysteresis: 1.5},
			[]string{"y"}, nil, map[string]string{"s": "serving", "x": "no free slot"}},
		{"a newcomer beyond the hysteresis takes the place", []Candidate{served(cand("s", 2), OriginAuto, long), cand("x", 3.1)}, Policy{Slots: 1, MinScore: 0.5, Hysteresis: 1.5},
			[]string{"x"}, []string{"s"}, map[string]string{"s": "outranked by x"}},
		{"min_stay keeps a young swarm", []Candidate{served(cand("s", 0.1), OriginAuto, now.Add(-time.Minute)), cand("x", 9)}, Policy{Slots: 1, MinScore: 0.5, Hysteresis: 1.5, MinStay: 10 * time.Minute},
			nil, nil, map[string]string{"s": "min_stay", "x": "no free slot"}},
		{"no figures this round: kept", []Candidate{served(Candidate{Key: "s"}, OriginAuto, long), cand("x", 9)}, Policy{Slots: 1, MinScore: 0.5, Hysteresis: 1.5},
			nil, nil, map[string]string{"s": "no figures"}},
		{"the owner's swarms are never left and take slots first",
			[]Candidate{served(cand("own", 0), OriginOwner, long), served(cand("own2", 0), "", long), cand("x", 9)}, pol,
			nil, nil, map[string]string{"own": "owner", "own2": "owner", "x": "0 by needier"}},
		{"the owner took a slot: the weakest auto swarm makes room",
			[]Candidate{served(cand("own", 0), OriginOwner, long), served(cand("a", 2), OriginAuto, long), served(cand("b", 1), OriginAuto, long)}, pol,
			nil, []string{"b"}, map[string]string{"b": "room for the owner", "a": "serving"}},
		{"owner's room beats min_stay",
			[]Candidate{served(cand("own", 0), OriginOwner, long), served(cand("own2", 0), OriginOwner, long), served(cand("a", 2), OriginAuto, now)}, pol,
			nil, []string{"a"}, map[string]string{"a": "room for the owner"}},
		{"a served swarm whose need went is left", []Candidate{served(cand("s", 0.2), OriginAuto, long)}, pol,
			nil, []string{"s"}, map[string]string{"s": "under min_score"}},
		{"no slots: nothing joined", []Candidate{cand("a", 5)}, Policy{MinScore: 0.5},
			nil, nil, map[string]string{"a": "no free slot"}},
		{"ties keep what is served", []Candidate{served(cand("s", 2), OriginAuto, long), cand("a", 3)}, Policy{Slots: 1, Hysteresis: 1.5},
			nil, nil, nil},
		{"ties between newcomers go by key", []Candidate{cand("b", 2), cand("a", 2)}, Policy{Slots: 1},
			[]string{"a"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Decide(tc.cands, tc.pol, now)
			if !reflect.DeepEqual(p.Join, tc.join) {
				t.Errorf("join %v, want %v", p.Join, tc.join)
			}
			var leave []string
			for _, l := range p.Leave {
				leave = append(leave, l.Key)
			}
			if !reflect.DeepEqual(leave, tc.leave) {
				t.Errorf("leave %v, want %v (%+v)", leave, tc.leave, p.Leave)
			}
			for k, want := range tc.noteWants {
				if !strings.Contains(p.Notes[k], want) {
					t.Errorf("note for %s: %q, want it to say %q", k, p.Notes[k], want)
				}
			}
			for _, c := range tc.cands {
				if p.Notes[c.Key] == "" {
					t.Errorf("no note for %s", c.Key)
				}
			}
		})
	}
}

// Ensure that Decide never plans beyond its slots, never leaves the
// owner's swarms and never joins a blocked one, over random inputs.
func TestDecideInvariants(t *testing.T) {
	now := time.Unix(1e9, 0)
	seed := uint64(1)
	rnd := func(n int) int { seed = seed*6364136223846793005 + 1442695040888963407; return int(seed>>33) % n }
	for round := 0; round < 2000; round++ {
		pol := Policy{Slots: rnd(4), MinScore: float64(rnd(3)) / 2, Hysteresis: 1 + float64(rnd(3))/2, MinStay: time.Duration(rnd(3)) * time.Minute}
		var cs []Candidate
		for i := range 1 + rnd(7) {
			c := Candidate{Key: string(rune('a' + i))}
			if rnd(5) > 0 {
				c.Score = Score{Source: SourceIncomplete, Value: float64(rnd(8)) / 2}
			}
			switch rnd(4) {
			case 0:
				c.Serving, c.Origin = true, OriginOwner
			case 1:
				c.Serving, c.Origin, c.Joined = true, OriginAuto, now.Add(-time.Duration(rnd(5))*time.Minute)
			case 2:
				if rnd(2) == 0 {
					c.Blocked = "cooldown"
				}
			}
			cs = append(cs, c)
		}
		p := Decide(cs, pol, now)
		byKey := map[string]Candidate{}
		servedN := 0
		for _, c := range cs {
			byKey[c.Key] = c
			if c.Serving {
				servedN++
			}
		}
		for _, l := range p.Leave {
			if l.Why != LeftOutranked && l.Why != LeftNeedGone && l.Why != LeftForOwner {
				t.Fatalf("round %d: leave without a known why: %+v", round, l)
			}
			if c := byKey[l.Key]; !c.Serving || c.Origin != OriginAuto {
				t.Fatalf("round %d: leaves %s, which the autopilot does not serve: %+v", round, l.Key, cs)
			}
		}
		for _, j := range p.Join {
			if c := byKey[j]; c.Serving || c.Blocked != "" || !c.Score.Known() || c.Score.Value < pol.MinScore {
				t.Fatalf("round %d: joins %s: %+v", round, j, c)
			}
		}
		owners := 0
		for _, c := range cs {
			if c.Serving && c.Origin != OriginAuto {
				owners++
			}
		}
		if after := servedN - len(p.Leave) + len(p.Join); after > max(pol.Slots, owners) {
			t.Fatalf("round %d: %d swarms served after the plan, %d slots: %+v → %+v", round, after, pol.Slots, cs, p)
		}
	}
}
