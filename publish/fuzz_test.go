package publish_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/btslave/btslave/publish"
)

// FuzzCreate hashes a directory whose file sizes come from the input, in
// every version and in 16 or 32 KiB pieces, and checks the result against
// anacrolix's metainfo and Merkle code and a plain SHA-1 of the stream.
func FuzzCreate(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0})
	f.Add([]byte{1, 0x40, 0x9c, 0, 0, 0x64, 0, 0, 0, 0, 0, 0x70, 0x11, 1})
	f.Add([]byte{2, 0, 0x40, 0, 0, 0x80, 0, 0, 0, 0x40, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 1 {
			return
		}
		v := publish.Version(in[0] % 3)
		pl := int64(16<<10) << (in[0] / 3 % 2)
		files := map[string]int{}
		total := 0
		for i, rest := 0, in[1:]; len(rest) >= 3 && i < 6; i, rest = i+1, rest[3:] {
			n := int(binary.LittleEndian.Uint16(rest)) + int(rest[2]%4)<<16 // up to 256 KiB
			files[fmt.Sprintf("d%d/f%d", i%2, i)] = n
			total += n
		}
		if total == 0 {
			return
		}
		dir := writeTree(t, uint64(len(in)), files)
		tr, err := publish.Create(context.Background(), dir, publish.Options{Version: v, PieceLength: pl, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		checkAnacrolix(t, tr)
	})
}

// FuzzDecodeRecord feeds DecodeRecord arbitrary bytes: it must not panic,
// and a record it accepts must survive a JSON round trip unchanged.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"infohash":"0123456789abcdef0123456789abcdef01234567","name":"x","version":"hybrid","size":3,"root":"/d","files":[{"path":["x"],"abs":"/d/x","length":3,"mtime":"2026-01-02T03:04:05Z"}],"magnet":"magnet:?","published":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"infohash":"zz"}`))
	f.Add([]byte(`{"infohash":"0123456789abcdef0123456789abcdef01234567","files":[{"abs":"/a/../b","length":-1}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := publish.DecodeRecord(in)
		if err != nil {
			return
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := publish.DecodeRecord(b)
		if err != nil {
			t.Fatalf("re-encoded record refused: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(r2)
		if string(b) != string(b2) {
			t.Fatalf("round trip changed the record:\n%s\n%s", b, b2)
		}
	})
}
