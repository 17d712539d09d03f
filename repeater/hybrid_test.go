package repeater

import (
	"testing"

	"github.com/anacrolix/torrent"
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

// Ensure a plain v1 torrent's pieces have their own lengths both ways,
// the last one short, and that an unknown torrent or piece has none: the
// wire layer tells a piece's last block by them (keepinterest.go).
func TestPieceLengthPlain(t *testing.T) {
	const pl = 32 << 10
	info := &metainfo.Info{PieceLength: pl, Name: "p", Length: 3*pl + 100, Pieces: make([]byte, 4*20)}
	ih := metainfo.Hash{0xfe, 0xed}
	hybrids.mu.Lock()
	delete(hybrids.m, ih)
	hybrids.mu.Unlock()
	h := newHybridInfo(info)
	hybrids.mu.Lock()
	if hybrids.m == nil {
		hybrids.m = map[metainfo.Hash]*hybridInfo{}
	}
	hybrids.m[ih] = h
	hybrids.mu.Unlock()
	for piece, want := range []int64{pl, pl, pl, 100} {
		if lib, v1 := pieceLength(ih, nil, piece); lib != want || v1 != want {
			t.Errorf("piece %d: %d, %d; want %d both", piece, lib, v1, want)
		}
	}
	if lib, v1 := pieceLength(ih, nil, 4); lib != 0 || v1 != 0 {
		t.Errorf("piece past the end: %d, %d; want 0, 0", lib, v1)
	}
	if lib, v1 := pieceLength(metainfo.Hash{0xab}, func() *torrent.Torrent { return nil }, 0); lib != 0 || v1 != 0 {
		t.Errorf("unknown torrent: %d, %d; want 0, 0", lib, v1)
	}
}
