package repeater

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/btslave/btslave/repeater/wire"
)

func peerWith(n int, have ...int) wire.PeerState {
	var p wire.PeerState
	for _, h := range have {
		p.Have.Set(h)
	}
	return p
}

func TestMeasureDemand(t *testing.T) {
	seed := wire.PeerState{HaveAll: true}
	partial := peerWith(4, 0)
	partial.PeerUploadOnly = true
	choking := peerWith(4, 1)
	choking.PeerChoking = true
	d := measureDemand(4, []wire.PeerState{seed, peerWith(4, 0, 1), choking, partial, peerWith(4)})
	if d.sources != 3 || d.downloaders != 3 {
		t.Errorf("sources %d, downloaders %d; want 3 (unchoking, holding something) and 3", d.sources, d.downloaders)
	}
	if want := []int{2, 1, 3, 3}; !reflect.DeepEqual(d.want, want) {
		t.Errorf("want %v, got %v", want, d.want)
	}
	if want := []int{3, 3, 1, 1}; !reflect.DeepEqual(d.have, want) {
		t.Errorf("have %v, got %v", want, d.have)
	}
}

func TestMakePlan(t *testing.T) {
	d := demand{want: []int{3, 1, 0, 2, 2, 0, 3}, have: []int{1, 1, 1, 2, 1, 1, 0}}
	cases := []struct {
		name string
		in   planInput
		want plan
	}{
		{"most wanted then rarest; never unfetchable",
			planInput{demand: d, held: map[int]bool{}, pending: map[int]bool{}, capacity: 10, inflight: 3, threshold: 1},
			plan{fetch: []int{0, 4, 3}, starved: true}},
		{"threshold",
			planInput{demand: d, held: map[int]bool{}, pending: map[int]bool{}, capacity: 10, inflight: 9, threshold: 3},
			plan{fetch: []int{0}}},
		{"pending counts against inflight; lost demand cancels",
			planInput{demand: d, held: map[int]bool{}, pending: map[int]bool{0: true, 2: true}, capacity: 10, inflight: 2, threshold: 1},
			plan{fetch: []int{4}, cancel: []int{2}, starved: true}},
		{"fetch want picks and orders; plain want keeps what is under way",
			planInput{demand: d, fetchWant: []int{0, 1, 0, 2, 1, 0, 3}, held: map[int]bool{}, pending: map[int]bool{0: true}, capacity: 10, inflight: 9, threshold: 2},
			plan{fetch: []int{3}}},
		{"a piece under way is kept while anyone wants it",
			planInput{demand: d, held: map[int]bool{}, pending: map[int]bool{1: true}, capacity: 10, inflight: 1, threshold: 3},
			plan{starved: true}},
		{"evict unwanted to make room, least first",
			planInput{demand: d, held: map[int]bool{2: true, 5: true, 1: true}, pending: map[int]bool{}, capacity: 3, inflight: 2, threshold: 1},
			plan{fetch: []int{0, 4}, evict: []int{2, 5}, starved: true}},
		{"replace a less wanted piece, never an equally wanted one",
			planInput{demand: d, held: map[int]bool{1: true, 3: true}, pending: map[int]bool{}, capacity: 2, inflight: 2, threshold: 1},
			plan{fetch: []int{0}, evict: []int{1}}},
		{"full of wanted pieces: wait",
			planInput{demand: d, held: map[int]bool{0: true, 6: true}, pending: map[int]bool{}, capacity: 2, inflight: 4, threshold: 1},
			plan{}},
		{"over the share: drop unwanted, keep one",
			planInput{demand: d, held: map[int]bool{2: true, 5: true}, pending: map[int]bool{}, capacity: 0, inflight: 0, threshold: 1},
			plan{evict: []int{2}, starved: true}},
	}
	for _, tc := range cases {
		got := makePlan(tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestAdaptThreshold(t *testing.T) {
	cases := []struct {
		name              string
		cur               int
		ratio, target     float64
		rate, cap         float64
		downloaders, want int
		top               int // 0: as many as there are downloaders
		starved           bool
	}{
		{"under target, busy: rise", 3, 1.5, 4, 900, 1000, 5, 4, 0, false},
		{"under target, unlimited and moving: rise", 2, 1, 4, 5e6, 0, 5, 3, 0, false},
		{"capped by downloaders", 3, 1, 4, 1000, 1000, 3, 3, 0, false},
		{"idle at target: fall", 5, 4, 4, 100, 1000, 6, 4, 0, false},
		{"idle at target: never under the target", 4, 5, 4, 100, 1000, 6, 4, 0, false},
		{"a low target: falls further", 3, 5, 2, 100, 1000, 6, 2, 0, false},
		{"idle below target: rise all the same", 3, 1, 4, 100, 1000, 5, 4, 0, false},
		{"never below 1", 1, 5, 1, 0, 1000, 5, 1, 0, false},
		{"on target and busy: hold", 4, 5, 4, 900, 1000, 5, 4, 0, false},
		{"few downloaders pull it down", 4, 1, 4, 900, 1000, 2, 2, 0, false},
		{"idle but starved for intake: rise", 2, 1, 4, 100, 1000, 5, 3, 0, true},
		{"idle, starved, on target: hold", 4, 5, 4, 100, 1000, 5, 4, 0, true},
		{"three downloaders: aim at what they allow", 3, 2.5, 4, 100, 1000, 3, 2, 0, false},
		{"three downloaders, under what they allow: rise", 2, 2, 4, 900, 1000, 3, 3, 0, false},
		{"one downloader: ratio 1 is on target", 1, 1, 4, 100, 1000, 1, 1, 0, false},
		{"under target: never above the most wanted piece we could fetch", 5, 2, 4, 100, 1000, 6, 5, 5, false},
		{"under target, nothing qualifies: back to what can be fetched", 6, 2, 4, 100, 1000, 6, 4, 4, false},
		{"the most wanted piece under the floor: the floor holds", 5, 2, 4, 100, 1000, 6, 4, 2, false},
	}
	for _, tc := range cases {
		if got := adaptThreshold(tc.cur, tc.ratio, tc.target, tc.rate, tc.cap, tc.downloaders, tc.top, tc.starved); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestRecentRatio(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(sec int, up, down int64) swarmSample {
		return swarmSample{at: t0.Add(time.Duration(sec) * time.Second), up: up, down: down}
	}
	// 10 up / 1 down long ago, then 4 up / 2 down within the last minute.
	hist := []swarmSample{at(0, 0, 0), at(50, 100, 10), at(100, 102, 11), at(130, 104, 12)}
	for _, tc := range []struct {
		name    string
		samples []swarmSample
		now     swarmSample
		want    float64
	}{
		{"the window, not the visit", hist, at(160, 110, 14), 8.0 / 3},
		{"no history: since the last sample", hist[:1], at(300, 30, 10), 3},
		{"uploads only: infinite", []swarmSample{at(0, 0, 0), at(130, 104, 12)}, at(160, 200, 12), math.Inf(1)},
		{"nothing moved: neutral", []swarmSample{at(0, 0, 0), at(130, 104, 12)}, at(160, 104, 12), 4},
	} {
		if got := recentRatio(tc.samples, tc.now, 4); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The free repeater never takes more than visitCredit beyond what it gave,
// counting what is in flight as taken, and past the first minute nothing.
func TestVisitBudget(t *testing.T) {
	const kib, mib = 1 << 10, 1 << 20
	cases := []struct {
		name     string
		up, down int64
		pending  int
		pieceLen int64
		age      time.Duration
		want     int
	}{
		{"a fresh visit has the credit: 1 MiB", 0, 0, 0, 256 * kib, 0, 4},
		{"or two pieces", 0, 0, 0, mib, 0, 2},
		{"pieces in flight are taken", 0, 0, 1, mib, 0, 1},
		{"the credit spent", 0, 2 * mib, 0, mib, 0, 0},
		{"the credit shrinks", 0, 0, 0, 256 * kib, 30 * time.Second, 2},
		{"and is gone after a minute", 0, 0, 0, 256 * kib, time.Minute, 0},
		{"the dead start: took 4.4 MiB, gave 0.9", 9 * mib / 10, 44 * mib / 10, 0, mib, 10 * time.Second, 0},
		{"gave more than it took", 10 * mib, 3 * mib, 2, 256 * kib, 5 * time.Minute, 26},
	}
	for _, c := range cases {
		if got := visitBudget(c.up, c.down, c.pending, c.pieceLen, c.age); got != c.want {
			t.Errorf("%s: visitBudget = %d, want %d", c.name, got, c.want)
		}
	}
}

// Ensure a capped free repeater's intake stays within what its cap
// returns at the target ratio, plus two pieces (1 MiB at least), and that
// an uncapped one has no ceiling.
func TestIntakeBudget(t *testing.T) {
	const kib, mib = 1 << 10, 1 << 20
	cases := []struct {
		name     string
		down     int64
		pending  int
		pieceLen int64
		age      time.Duration
		upCap    float64
		target   float64
		want     int
	}{
		{"no cap: no ceiling", 100 * mib, 9, 256 * kib, time.Minute, 0, 4, -1},
		{"a fresh visit: 1 MiB", 0, 0, 256 * kib, 0, 256 * kib, 4, 4},
		{"or two pieces", 0, 0, 2 * mib, 0, 256 * kib, 4, 2},
		// 40 s at 256 KiB/s / 4 = 64 KiB/s: 2560 KiB, plus 1 MiB.
		{"the cap's share at the target, over the visit", 0, 0, 256 * kib, 40 * time.Second, 256 * kib, 4, 14},
		{"less what came and what is in flight", 2 * mib, 2, 256 * kib, 40 * time.Second, 256 * kib, 4, 4},
		{"spent: the 256 KiB/s helper that took 10.5 MiB in 52 s", 21 * mib / 2, 0, 256 * kib, 52 * time.Second, 256 * kib, 4, 0},
		{"a lower target allows more", 2 * mib, 2, 256 * kib, 40 * time.Second, 256 * kib, 2, 14},
		{"the matrix's 1.5 MiB/s helper at 30 s", 8 * mib, 4, 256 * kib, 30 * time.Second, 1536 * kib, 4, 13},
	}
	for _, c := range cases {
		if got := intakeBudget(c.down, c.pending, c.pieceLen, c.age, c.upCap, c.target); got != c.want {
			t.Errorf("%s: intakeBudget = %d, want %d", c.name, got, c.want)
		}
	}
	if got := effectiveTarget(4, 6); got != 4 {
		t.Errorf("effectiveTarget(4, 6) = %v, want 4", got)
	}
	if got := effectiveTarget(4, 2); got != 1.5 {
		t.Errorf("effectiveTarget(4, 2) = %v, want 1.5", got)
	}
	if got := effectiveTarget(4, 0); got != 1 {
		t.Errorf("effectiveTarget(4, 0) = %v, want 1", got)
	}
}

// Ensure a round boots one piece only when it fetches, holds and awaits
// nothing, may boot, and has a budget for it.
func TestShouldBoot(t *testing.T) {
	for _, c := range []struct {
		fetch, held, pending int
		mayBoot              bool
		budget               int
		want                 bool
	}{
		{0, 0, 0, true, -1, true}, // no limit
		{0, 0, 0, true, 1, true},
		{0, 0, 0, true, 0, false}, // owing, or the credit spent
		{0, 0, 0, false, -1, false},
		{1, 0, 0, true, -1, false},
		{0, 1, 0, true, -1, false},
		{0, 0, 1, true, -1, false},
	} {
		if got := shouldBoot(c.fetch, c.held, c.pending, c.mayBoot, c.budget); got != c.want {
			t.Errorf("%+v: boot %v", c, got)
		}
	}
}
