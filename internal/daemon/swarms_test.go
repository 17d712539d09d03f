package daemon

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/torrentfile"
)

func validTorrent(t testing.TB) []byte {
	info := metainfo.Info{Name: "x", PieceLength: 16384, Length: 20000, Pieces: make([]byte, 40)}
	ib, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	(&metainfo.MetaInfo{InfoBytes: ib}).Write(&b)
	return b.Bytes()
}

// FuzzSwarmRecord feeds arbitrary .torrent bytes and magnet links to the
// request parser, the path of POST /api/v1/swarms, of records rejoined at
// start and of the autopilot's joins (torrentfile.Parse for .torrent
// bytes): it must never panic, every refusal must be a bad request (400,
// exit 2), and an accepted torrent must have an info hash.
func FuzzSwarmRecord(f *testing.F) {
	f.Add(validTorrent(f), "")
	f.Add([]byte("d4:infod6:lengthi-1eee"), "")
	f.Add([]byte("d8:announce3:url4:infod4:name1:x12:piece lengthi0e6:pieces0:ee"), "")
	f.Add([]byte(nil), "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x")
	f.Add([]byte(nil), "magnet:?xt=urn:btih:zz")
	// Deep nesting (issue #17): refused before the recursive decoder.
	f.Add([]byte("d3:zzz"+strings.Repeat("l", 10_000)+strings.Repeat("e", 10_000)+"e"), "")
	f.Add([]byte("d4:info"+strings.Repeat("l", 100)+strings.Repeat("e", 100)+"e"), "")
	// A valid torrent with one level too many beside its info dictionary.
	good := string(validTorrent(f)) // "d4:info" + the info dictionary + "e"
	f.Add([]byte(good[:len(good)-1]+"3:zzz"+strings.Repeat("l", 64)+strings.Repeat("e", 64)+"e"), "")
	f.Fuzz(func(t *testing.T, torrent []byte, magnet string) {
		rec := swarmRecord{Torrent: torrent}
		if len(torrent) == 0 {
			rec.Magnet = magnet
		}
		spec, err := rec.spec()
		if err != nil {
			if !errors.Is(err, api.ErrBadRequest) {
				t.Fatalf("refusal is not a bad request: %v", err)
			}
			return
		}
		if spec.InfoHash == (metainfo.Hash{}) && !spec.InfoHashV2.Ok {
			t.Fatalf("accepted spec without an info hash")
		}
		if len(torrent) > 0 {
			if _, err := torrentfile.Scan(torrent, torrentfile.MaxDepth); err != nil {
				t.Fatalf("accepted a .torrent nesting too deep: %v", err)
			}
		}
	})
}
