package torrentfile

import (
	"crypto/sha1"
	"errors"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// FuzzParseInfo feeds arbitrary info dictionaries, as a peer sends them
// for a magnet link, with the info hash they hash to: ParseInfo must never
// panic or recurse without bound, and what it accepts the library can use.
func FuzzParseInfo(f *testing.F) {
	good, _ := bencode.Marshal(metainfo.Info{Name: "a", PieceLength: 16 << 10, Length: 40 << 10, Pieces: make([]byte, 60)})
	f.Add(good)
	f.Add([]byte("d3:zzz" + strings.Repeat("l", 10_000) + strings.Repeat("e", 10_000) + "e"))
	f.Add([]byte("d6:lengthi-1e4:name1:a12:piece lengthi16384e6:pieces0:e"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ParseInfo(b, sha1.Sum(b))
		if err != nil {
			if !errors.Is(err, ErrBadTorrent) {
				t.Fatalf("error %v does not wrap ErrBadTorrent", err)
			}
			return
		}
		if info.PieceLength <= 0 || info.NumPieces() <= 0 {
			t.Fatalf("accepted %+v", info)
		}
	})
}

// Ensure metadata that does not hash to the info hash is refused before
// it is decoded, and deep nesting that does hash is refused too.
func TestParseInfo(t *testing.T) {
	good, _ := bencode.Marshal(metainfo.Info{Name: "a", PieceLength: 16 << 10, Length: 40 << 10, Pieces: make([]byte, 60)})
	if _, err := ParseInfo(good, sha1.Sum(good)); err != nil {
		t.Fatalf("good info refused: %v", err)
	}
	if _, err := ParseInfo(good, [20]byte{1}); err == nil || !strings.Contains(err.Error(), "does not hash") {
		t.Errorf("wrong hash: %v", err)
	}
	deep := []byte("d3:zzz" + strings.Repeat("l", 1_000_000) + strings.Repeat("e", 1_000_000) + "e")
	if _, err := ParseInfo(deep, sha1.Sum(deep)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("deep info: %v, want ErrTooDeep", err)
	}
}
