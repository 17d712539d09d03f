package repeater

import "testing"

// Ensure the pieces in flight follow the intake target from the start,
// not only the rate measured so far, and stay within the cache share.
func TestInflightPieces(t *testing.T) {
	const piece = 256 << 10
	for _, tc := range []struct {
		name              string
		target, measured  float64
		capacity, sources int
		want              int
	}{
		{"cold start, one source", 512 << 10, 0, 128, 1, 2},
		{"cold start, four sources", 512 << 10, 0, 128, 4, 8},
		{"measured above target", 512 << 10, 2 << 20, 128, 1, 32},
		{"one per source", 64 << 10, 0, 128, 12, 12},
		{"small cache", 512 << 10, 0, 16, 6, 4},
		{"at least two", 0, 0, 128, 0, 2},
	} {
		if got := inflightPieces(tc.target, tc.measured, piece, tc.capacity, tc.sources); got != tc.want {
			t.Errorf("%s: %d pieces in flight, want %d", tc.name, got, tc.want)
		}
	}
}
