package repeater

import (
	"testing"

	"github.com/anacrolix/torrent/metainfo"
)

// Ensure the cached tail lengths of a hybrid agree with anacrolix's own
// piece lengths, piece by piece.
func TestHybridTailsMatchLibrary(t *testing.T) {
	const pl = 64 << 10
	leaf := func(n int64) metainfo.FileTree {
		return metainfo.FileTree{File: metainfo.FileTreeFile{Length: n}}
	}
	info := &metainfo.Info{
		MetaVersion: 2, PieceLength: pl, Name: "r", Pieces: make([]byte, 20),
		FileTree: metainfo.FileTree{Dir: map[string]metainfo.FileTree{
			"a": leaf(300000), "b": leaf(2 * pl), "c": leaf(1234), "d": leaf(pl + 1),
		}},
	}
	tails := newHybridInfo(info).tails
	for i := 0; i < info.NumPieces(); i++ {
		want := info.Piece(i).Length()
		got, ok := tails[i]
		if !ok {
			got = pl
		}
		if got != want {
			t.Errorf("piece %d: %d, library %d", i, got, want)
		}
	}
	if len(tails) != 3 {
		t.Errorf("%d short pieces, want 3 (a, c, d): %v", len(tails), tails)
	}
}
