package torrentfile

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// torrentBytes is a .torrent of info with announce URL tracker ("" for
// none).
func torrentBytes(t testing.TB, info metainfo.Info, tracker string) []byte {
	ib, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := (&metainfo.MetaInfo{InfoBytes: ib, Announce: tracker}).Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// nested is a .torrent whose key "zzz" holds n nested lists, beside a
// valid info dictionary when info is set.
func nested(n int, info []byte) []byte {
	s := "d3:zzz" + strings.Repeat("l", n) + strings.Repeat("e", n)
	if info != nil {
		s = "d4:info" + string(info) + "3:zzz" + strings.Repeat("l", n) + strings.Repeat("e", n)
	}
	return []byte(s + "e")
}

// Ensure that Parse refuses issue #17's .torrent (8,000,000 nested lists,
// 16 MB) with ErrBadTorrent and ErrTooDeep, and a valid torrent with a
// deep but allowed unknown key is accepted.
func TestParseDeep(t *testing.T) {
	_, err := Parse(nested(8_000_000, nil))
	if !errors.Is(err, ErrBadTorrent) || !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), "nests deeper than 64 levels") {
		t.Fatalf("deep .torrent: %v", err)
	}
	info := metainfo.Info{Name: "x", PieceLength: 16384, Length: 20000, Pieces: make([]byte, 40)}
	ib, _ := bencode.Marshal(info)
	if tt, err := Parse(nested(MaxDepth-1, ib)); err != nil || tt.Size != 20000 || len(tt.V1) != 20 {
		t.Fatalf("deep but allowed: %+v %v", tt, err)
	}
	if _, err := Parse(nested(MaxDepth, ib)); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("one level too deep beside a valid info: %v", err)
	}
}

// FuzzParse checks that Parse never panics whatever the .torrent, that
// every refusal wraps ErrBadTorrent, and that what it accepts is within
// the limits the rest of btslave relies on.
func FuzzParse(f *testing.F) {
	single := metainfo.Info{Name: "x", PieceLength: 16384, Length: 20000, Pieces: make([]byte, 40)}
	multi := metainfo.Info{Name: "d", PieceLength: 32768, Pieces: make([]byte, 20),
		Files: []metainfo.FileInfo{{Length: 100, Path: []string{"a"}}, {Length: 200, Path: []string{"b", "c"}}}}
	sb, _ := bencode.Marshal(single)
	for _, b := range [][]byte{
		torrentBytes(f, single, "http://127.0.0.1:1/announce"),
		torrentBytes(f, multi, ""),
		nested(10_000, nil), // deep nesting
		nested(10_000, sb),
		nested(MaxDepth-1, sb),
		nested(MaxDepth, sb),
		[]byte("d4:info" + strings.Repeat("l", 100) + strings.Repeat("e", 100) + "e"),
		[]byte("d4:infod6:lengthi-1eee"),
		[]byte("d8:announce3:url4:infod4:name1:x12:piece lengthi0e6:pieces0:ee"),
		[]byte("d4:infod4:name1:x12:piece lengthi16384e6:lengthi99999999999999999e6:pieces20:01234567890123456789ee"),
		[]byte("d4:infod4:name1:x12:meta versioni2e12:piece lengthi16384e9:file treed1:ad0:d6:lengthi1e11:pieces root32:" +
			strings.Repeat("\x00", 32) + "eeeee"),
		[]byte("de"),
		[]byte(""),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tt, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrBadTorrent) {
				t.Fatalf("refusal does not wrap ErrBadTorrent: %v", err)
			}
			return
		}
		if _, err := Scan(data, MaxDepth); err != nil {
			t.Fatalf("accepted a .torrent Scan refuses: %v", err)
		}
		pl := tt.Info.PieceLength
		switch {
		case tt.MetaInfo == nil:
			t.Fatal("no metainfo")
		case tt.Size <= 0 || tt.Size > MaxTotalLength:
			t.Fatalf("size %d", tt.Size)
		case pl <= 0 || pl > MaxPieceLength:
			t.Fatalf("piece length %d", pl)
		case tt.V1 == nil && tt.V2 == nil, tt.V1 != nil && len(tt.V1) != 20, tt.V2 != nil && len(tt.V2) != 32:
			t.Fatalf("info hashes v1 %x v2 %x", tt.V1, tt.V2)
		case tt.Info.NumPieces() > MaxPieces:
			t.Fatalf("%d pieces", tt.Info.NumPieces())
		}
	})
}
