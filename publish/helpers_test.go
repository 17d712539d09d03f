package publish_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/anacrolix/torrent/merkle"
	"github.com/anacrolix/torrent/metainfo"
	infohash_v2 "github.com/anacrolix/torrent/types/infohash-v2"

	"github.com/btslave/btslave/publish"
)

// writeTree makes files (relative path -> size) of random bytes under a
// new directory and returns it.
func writeTree(t testing.TB, seed uint64, files map[string]int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	rng := rand.New(rand.NewPCG(seed, 1))
	for name, size := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkAnacrolix loads tr with anacrolix's metainfo package and checks
// the infohashes, the v2 piece layers and the pieces roots against its own
// Merkle code, and the v1 pieces against a plain SHA-1 of the padded
// stream.
func checkAnacrolix(t testing.TB, tr *publish.Torrent) {
	t.Helper()
	mi, err := metainfo.Load(bytes.NewReader(tr.Bytes))
	if err != nil {
		t.Fatalf("anacrolix cannot load the torrent: %v", err)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatalf("anacrolix cannot read the info: %v", err)
	}
	if tr.Version != publish.V2 {
		if got := mi.HashInfoBytes().HexString(); got != tr.InfoHashV1 {
			t.Errorf("v1 infohash: anacrolix %s, publish %s", got, tr.InfoHashV1)
		}
		if !info.HasV1() {
			t.Error("anacrolix sees no v1 part")
		}
		// v1 pieces: SHA-1 over the stream, padding files as zeros.
		var stream bytes.Buffer
		for _, f := range tr.Files {
			b, err := os.ReadFile(f.Abs)
			if err != nil {
				t.Fatal(err)
			}
			stream.Write(b)
			if tr.Version == publish.Hybrid && !tr.Single {
				if r := int64(stream.Len()) % tr.PieceLength; r != 0 {
					stream.Write(make([]byte, tr.PieceLength-r))
				}
			}
		}
		var want []byte
		for s := stream.Bytes(); len(s) > 0; {
			n := min(int64(len(s)), tr.PieceLength)
			h := sha1.Sum(s[:n])
			want = append(want, h[:]...)
			s = s[n:]
		}
		if !bytes.Equal(info.Pieces, want) {
			t.Errorf("v1 pieces differ from SHA-1 of the stream (%d vs %d bytes)", len(info.Pieces), len(want))
		}
		if got := info.TotalLength(); got < tr.Size {
			t.Errorf("anacrolix total length %d < size %d", got, tr.Size)
		}
	}
	if tr.Version != publish.V1 {
		if !info.HasV2() {
			t.Fatal("anacrolix sees no v2 part")
		}
		if got := hex.EncodeToString(func() []byte { h := infohash_v2.HashBytes(mi.InfoBytes); return h[:] }()); got != tr.InfoHashV2 {
			t.Errorf("v2 infohash: anacrolix %s, publish %s", got, tr.InfoHashV2)
		}
		if err := metainfo.ValidatePieceLayers(mi.PieceLayers, &info.FileTree, info.PieceLength); err != nil {
			t.Errorf("anacrolix: piece layers: %v", err)
		}
		n := 0
		for fi := range info.UpvertedFilesIter() {
			f := tr.Files[n]
			n++
			if fi.Length != f.Length {
				t.Errorf("file %v: length %d, want %d", fi.Path, fi.Length, f.Length)
			}
			if f.Length == 0 {
				continue
			}
			b, err := os.ReadFile(f.Abs)
			if err != nil {
				t.Fatal(err)
			}
			h := merkle.NewHash()
			h.Write(b)
			var want [32]byte
			copy(want[:], h.Sum(nil))
			if !fi.PiecesRoot.Ok || fi.PiecesRoot.Value != want {
				t.Errorf("file %v: pieces root %x, anacrolix's merkle %x", fi.Path, fi.PiecesRoot.Value, want)
			}
		}
		if n != len(tr.Files) {
			t.Errorf("anacrolix lists %d files, want %d", n, len(tr.Files))
		}
	}
}
