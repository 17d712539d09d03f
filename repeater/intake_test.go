package repeater

import "testing"

// Ensure the pieces in flight follow the measured rate, keep every source
// busy and stay within the cache share.
func TestInflightPieces(t *testing.T) {
	const piece = 256 << 10
	for _, tc := range []struct {
		name              string
		measured          float64
		capacity, sources int
		want              int
	}{
		{"cold start, one source", 0, 128, 1, 2},
		{"1 MiB/s", 1 << 20, 128, 1, 16},
		{"one per source", 64 << 10, 128, 12, 12},
		{"small cache", 1 << 20, 16, 6, 4},
		{"at least two", 0, 128, 0, 2},
	} {
		if got := inflightPieces(tc.measured, piece, tc.capacity, tc.sources); got != tc.want {
			t.Errorf("%s: %d pieces in flight, want %d", tc.name, got, tc.want)
		}
	}
}
