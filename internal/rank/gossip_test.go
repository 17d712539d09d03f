package rank

import "testing"

// Ensure that a friend's figures score like incomplete counts and say
// "gossip".
func TestComputeGossip(t *testing.T) {
	s := Compute(Input{Figures: &Figures{Gossip: true, Seeders: 1, Incomplete: 6}}, params)
	if s.Source != SourceGossip || s.Downloaders != 6 || s.Need != 3 {
		t.Fatalf("got %+v", s)
	}
}
