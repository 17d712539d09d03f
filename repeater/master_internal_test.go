package repeater

import (
	"slices"
	"testing"
	"time"
)

// Ensure that helpers of one master take their own share first and the
// rest only when their share is done, and that the master's pieces come
// ahead of the swarm's plan without being evicted or cancelled.
func TestMasterShareAndMerge(t *testing.T) {
	pieces := []int{5, 2, 7, 4, 1}
	if got := ownFirst(pieces, 1, 2); !slices.Equal(got, []int{5, 7, 1}) {
		t.Errorf("share 1 of 2: %v", got)
	}
	if got := ownFirst([]int{2, 4}, 1, 2); !slices.Equal(got, []int{2, 4}) {
		t.Errorf("share done, the rest: %v", got)
	}
	if got := ownFirst(pieces, 0, 1); !slices.Equal(got, pieces) {
		t.Errorf("one helper: %v", got)
	}
	pl := plan{fetch: []int{9, 3}, evict: []int{3, 8}, cancel: []int{6, 11}}
	got := mergeMasterFirst(pl, []int{3, 4}, 3, func(p int) bool { return p == 8 || p == 6 })
	if !slices.Equal(got.fetch, []int{3, 4}) || !slices.Equal(got.evict, []int{3}) || !slices.Equal(got.cancel, []int{11}) {
		t.Errorf("merged plan %+v", got)
	}
	// Nothing for the master: the swarm's plan stands.
	pl = plan{fetch: []int{9, 3}}
	if got := mergeMasterFirst(pl, nil, 3, func(int) bool { return false }); !slices.Equal(got.fetch, []int{9, 3}) {
		t.Errorf("nothing for the master: %+v", got)
	}
}

// Ensure that the give-back rule counts the last minute only.
func TestMasterOwes(t *testing.T) {
	var m masterLink
	t0 := time.Unix(1000, 0)
	if got := m.excess(t0, 0, 0); got != 0 {
		t.Errorf("excess %d at the start", got)
	}
	if got := m.excess(t0.Add(10*time.Second), 100, 50); got != 50 {
		t.Errorf("took 100, gave 50: excess %d", got)
	}
	if got := m.excess(t0.Add(20*time.Second), 100, 95); got != 5 {
		t.Errorf("took 100, gave 95: excess %d", got)
	}
	// A minute later the old debt has left the window.
	m.excess(t0.Add(70*time.Second), 100, 95)
	if got := m.excess(t0.Add(90*time.Second), 105, 95); got != 5 {
		t.Errorf("within the window took 5, gave 0: excess %d", got)
	}
}

// Ensure that the pieces in flight count against the give-back slack.
func TestMasterFetchBudget(t *testing.T) {
	const pl = 100
	for _, c := range []struct {
		excess  int64
		pending int
		want    int
	}{
		{0, 0, 2},      // a fresh start: the slack's two pieces
		{0, 1, 1},      // one on its way
		{0, 2, 0},      // the slack is in flight
		{-300, 2, 3},   // we gave three pieces more than we took
		{150, 0, 0},    // half the slack left: no whole piece
		{50, 0, 1},     // one and a half pieces left
		{-1000, 0, 12}, // a big credit
	} {
		if got := fetchBudget(c.excess, c.pending, pl, 2*pl); got != c.want {
			t.Errorf("excess %d, %d pending: budget %d, want %d", c.excess, c.pending, got, c.want)
		}
	}
}

// Ensure that a piece costs its length and this swarm's redundant blocks
// per piece, rounded up, one block before any piece is verified, and that
// the budget counts pieces at that cost: a fresh helper whose pieces cost
// more than half its slack starts one piece, not two.
func TestFetchCost(t *testing.T) {
	const pl = 256 << 10
	for _, c := range []struct {
		wasted, good, want int64
	}{
		{0, 0, pl + chunkSize}, // nothing measured yet: one block
		{5, 0, pl + chunkSize},
		{0, 11, pl},                       // no waste seen
		{7, 11, pl + (7*chunkSize+10)/11}, // the CI direction test's mean, rounded up
		{11, 11, pl + chunkSize},          // a block a piece
		{33, 11, pl + 3*chunkSize},        // three
		{1, 3, pl + (chunkSize+2)/3},      // rounded up, never down
	} {
		if got := fetchCost(pl, c.wasted, c.good); got != c.want {
			t.Errorf("%d wasted in %d pieces: cost %d, want %d", c.wasted, c.good, got, c.want)
		}
	}
	if got := fetchBudget(0, 0, fetchCost(pl, 0, 0), 2*pl); got != 1 {
		t.Errorf("fresh start at a piece and a block each: budget %d, want 1", got)
	}
	if got := fetchBudget(-chunkSize, 0, pl+chunkSize/2, 2*pl); got != 2 {
		t.Errorf("half a block of waste each and a block given: budget %d, want 2", got)
	}
}

// Ensure that the master's counters carry over lost connections and that
// a connection lost, or replaced, while the master lacks pieces counts as
// a drop, and one lost after it completed does not.
func TestMasterDrops(t *testing.T) {
	var m masterLink
	m.track(false, 0, 0) // not dialled yet: no drop
	m.track(true, 100, 10)
	m.track(true, 300, 20)
	if m.drops != 0 {
		t.Fatalf("drops %d on one connection", m.drops)
	}
	m.track(true, 50, 5) // counters restarted: a new connection
	if m.drops != 1 || m.upBase+m.lastUp != 350 || m.downBase+m.lastDown != 25 {
		t.Fatalf("replaced: drops %d, up %d, down %d", m.drops, m.upBase+m.lastUp, m.downBase+m.lastDown)
	}
	m.track(false, 0, 0) // closed
	m.track(false, 0, 0) // still closed: counted once
	if m.drops != 2 || m.upBase+m.lastUp != 350 {
		t.Fatalf("closed: drops %d, up %d", m.drops, m.upBase+m.lastUp)
	}
	m.track(true, 10, 0)
	m.stats = MasterStats{Pieces: 4, NumPieces: 4}
	m.track(false, 0, 0) // the master is complete: it may close
	if m.drops != 2 || m.upBase != 360 {
		t.Fatalf("after completion: drops %d, up %d", m.drops, m.upBase)
	}
}

// Ensure that a helper that owes the swarm fetches nothing new, and keeps
// its evictions and cancels.
func TestMasterWhileOwing(t *testing.T) {
	pl := plan{fetch: []int{1, 2}, evict: []int{3}, cancel: []int{4}}
	if got := whileOwing(pl, -1); !slices.Equal(got.fetch, []int{1, 2}) {
		t.Errorf("not owing: %+v", got)
	}
	if got := whileOwing(pl, 1); !slices.Equal(got.fetch, []int{1}) {
		t.Errorf("budget 1: %+v", got)
	}
	got := whileOwing(pl, fetchBudget(300, 0, 100, 200)) // owing: no budget
	if len(got.fetch) != 0 || !slices.Equal(got.evict, []int{3}) || !slices.Equal(got.cancel, []int{4}) {
		t.Errorf("owing: %+v", got)
	}
}

// Ensure that the master's pieces come first that a leecher lacks too,
// commonest among the leechers first (the master itself asks for the
// rarest first), then those every leecher holds.
func TestMasterOrder(t *testing.T) {
	//          piece: 0  1  2  3  4
	have := []int{3, 1, 2, 1, 4}
	leech := []int{2, 0, 2, 0, 3}
	if got := masterOrder([]int{0, 1, 2, 3, 4}, have, leech, 4); !slices.Equal(got, []int{4, 0, 2, 1, 3}) {
		t.Errorf("order: %v", got)
	}
	// Three leechers: piece 4, which all hold, comes last.
	if got := masterOrder([]int{0, 1, 2, 3, 4}, have, leech, 3); !slices.Equal(got, []int{0, 2, 1, 3, 4}) {
		t.Errorf("order with three leechers: %v", got)
	}
	// A crowd's start: only the seed holds pieces, in the order given.
	if got := masterOrder([]int{3, 1}, []int{1, 1, 1, 1}, []int{0, 0, 0, 0}, 5); !slices.Equal(got, []int{3, 1}) {
		t.Errorf("seed only: %v", got)
	}
	if got := masterOrder(nil, have, leech, 4); len(got) != 0 {
		t.Errorf("nothing lacked: %v", got)
	}
}

// Ensure that the pieces a master is downloading come last, the rest in
// their order, and that a master that does not say changes nothing.
func TestMasterBusyLast(t *testing.T) {
	busy := []byte{0b0100_1000, 0b1000_0000} // pieces 1, 4 and 8
	if got := busyLast([]int{4, 0, 8, 2, 1, 3}, busy); !slices.Equal(got, []int{0, 2, 3, 4, 8, 1}) {
		t.Errorf("busy last: %v", got)
	}
	if got := busyLast([]int{4, 0, 8}, nil); !slices.Equal(got, []int{4, 0, 8}) {
		t.Errorf("nothing busy: %v", got)
	}
	if got := busyLast([]int{9, 12}, busy); !slices.Equal(got, []int{9, 12}) {
		t.Errorf("past the bitfield: %v", got)
	}
}
