package scrape

import (
	"encoding/binary"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
)

// FuzzHTTPScrapeReply checks that no reply body makes the parser panic and
// that what it accepts survives a round trip: the entries, encoded again,
// parse to the same entries.
func FuzzHTTPScrapeReply(f *testing.F) {
	h1 := strings.Repeat("\x01", 20)
	h2 := "abcdefghij klmnopqr\xff"
	for _, s := range []string{
		"d5:filesdee",
		"d5:filesd20:" + h1 + "d8:completei5e10:downloadedi50e10:incompletei10eee",
		"d5:filesd20:" + h1 + "d8:completei5e10:incompletei10e11:downloadersi3eee" + "20:" + h2 + "de" + "ee",
		"d5:filesd20:" + h1 + "d8:completei-5e4:name3:fooeee",
		"d5:filesd3:abcd8:completei1eeee",
		"d5:filesd20:" + h1 + "d8:completei99999999999999999999eeee",
		"d5:filesd20:" + h1 + "i3eee",
		"d5:filesd20:" + h1 + "d8:complete3:abceeee",
		"d14:failure reason12:unregisterede",
		"d14:failure reasoni3ee",
		"d5:flagsd20:min_request_intervali900ee5:filesdee",
		"d5:filesi1ee",
		"d8:intervali1800ee",
		"d5:filesdeeXYZ",
		"<html>",
		"d",
		"",
		"d5:files" + strings.Repeat("d1:a", 10_000) + strings.Repeat("e", 10_000) + "e", // deep nesting
	} {
		f.Add([]byte(s))
	}
	f.Add(deepReply(maxReplyDepth - 3))
	f.Add(deepReply(100_000))
	f.Fuzz(func(t *testing.T, body []byte) {
		files, err := parseHTTPReply(body)
		if err != nil {
			var fe *FailureError
			if !errors.As(err, &fe) && !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is neither a failure nor malformed", err)
			}
			return
		}
		type wireEntry struct {
			Complete    int64  `bencode:"complete"`
			Incomplete  int64  `bencode:"incomplete"`
			Downloaded  int64  `bencode:"downloaded"`
			Downloaders *int64 `bencode:"downloaders,omitempty"`
		}
		wire := map[string]wireEntry{}
		for h, e := range files {
			if e.complete < 0 || e.incomplete < 0 || e.downloaded < 0 || e.downloaders < 0 {
				t.Fatalf("negative figures: %+v", e)
			}
			if !e.hasDownloaders && e.downloaders != 0 {
				t.Fatalf("downloaders %d without the key", e.downloaders)
			}
			we := wireEntry{Complete: e.complete, Incomplete: e.incomplete, Downloaded: e.downloaded}
			if e.hasDownloaders {
				we.Downloaders = &e.downloaders
			}
			wire[string(h[:])] = we
		}
		again, err := bencode.Marshal(map[string]any{"files": wire})
		if err != nil {
			t.Fatal(err)
		}
		files2, err := parseHTTPReply(again)
		if err != nil {
			t.Fatalf("re-encoded reply %q: %v", again, err)
		}
		if !maps.Equal(files, files2) {
			t.Fatalf("round trip changed the entries:\n%+v\n%+v", files, files2)
		}
	})
}

// FuzzUDPScrapeReply does the same for UDP scrape reply bodies: rows are
// never more than asked, never negative, and read back from their bytes.
func FuzzUDPScrapeReply(f *testing.F) {
	row := func(s, c, l uint32) []byte {
		b := binary.BigEndian.AppendUint32(nil, s)
		b = binary.BigEndian.AppendUint32(b, c)
		return binary.BigEndian.AppendUint32(b, l)
	}
	f.Add(row(5, 50, 10), 1)
	f.Add(append(row(1, 2, 3), row(0xffffffff, 0x80000000, 7)...), 2)
	f.Add(append(row(1, 2, 3), row(4, 5, 6)...), 74)
	f.Add(row(1, 2, 3), 0)
	f.Add([]byte{}, 1)
	f.Add([]byte{1, 2, 3, 4, 5}, 1)
	f.Add(make([]byte, 12*75), 74)
	f.Fuzz(func(t *testing.T, body []byte, asked int) {
		rows, err := parseUDPReply(body, asked)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v is not malformed", err)
			}
			return
		}
		if len(rows) > max(asked, 0) || len(rows)*udpRowBytes != len(body) {
			t.Fatalf("%d rows from %d bytes for %d hashes", len(rows), len(body), asked)
		}
		for i, e := range rows {
			if e.complete < 0 || e.incomplete < 0 || e.downloaded < 0 || e.hasDownloaders {
				t.Fatalf("row %d: %+v", i, e)
			}
			if v := int32(binary.BigEndian.Uint32(body[i*12:])); v >= 0 && int64(v) != e.complete {
				t.Fatalf("row %d: complete %d, wire %d", i, e.complete, v)
			}
		}
	})
}
