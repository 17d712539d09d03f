package scrape

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/torrentfile"
)

// maxHTTPReplyBytes caps an HTTP scrape reply body.
const maxHTTPReplyBytes = 4 << 20

// maxReplyDepth bounds list and dictionary nesting in an HTTP scrape
// reply, checked before the bencode decoder (which recurses once per
// level) sees it. Real replies nest three levels (reply, files, entry).
const maxReplyDepth = 32

// udpRowBytes is the size of one torrent's row in a UDP scrape reply.
const udpRowBytes = 12

// FailureError is returned for a reply that refuses the scrape: an HTTP
// reply with a bencoded "failure reason", or a UDP error (action 3).
type FailureError struct {
	Reason string
}

// Error gives the tracker's reason, quoted.
func (e *FailureError) Error() string { return fmt.Sprintf("tracker refused the scrape: %q", e.Reason) }

// errMalformed is wrapped by errors for replies that cannot be parsed.
var errMalformed = errors.New("malformed tracker reply")

// entry is one torrent's figures in a reply.
type entry struct {
	complete, incomplete, downloaded int64
	downloaders                      int64
	hasDownloaders                   bool
}

// result makes the Result for an entry given by tracker at at; known is
// whether the tracker listed the torrent at all.
func (e entry) result(tracker string, at time.Time, known bool) Result {
	return Result{
		Complete:       e.complete,
		Incomplete:     e.incomplete,
		Downloaded:     e.downloaded,
		Downloaders:    e.downloaders,
		HasDownloaders: e.hasDownloaders,
		Known:          known,
		Tracker:        tracker,
		At:             at,
	}
}

// httpReplyWire is the bencoded HTTP scrape reply (BEP 48). Fields are
// kept raw and decoded one by one, so that their types can be checked.
type httpReplyWire struct {
	Failure bencode.Bytes `bencode:"failure reason"`
	Files   bencode.Bytes `bencode:"files"`
}

// entryWire is one value of the "files" dictionary.
type entryWire struct {
	Complete    bencode.Bytes `bencode:"complete"`
	Incomplete  bencode.Bytes `bencode:"incomplete"`
	Downloaded  bencode.Bytes `bencode:"downloaded"`
	Downloaders bencode.Bytes `bencode:"downloaders"` // BEP 21
}

// parseHTTPReply parses the body of an HTTP scrape reply into the entries
// of its "files" dictionary. Keys that are not 20 bytes long are skipped.
// A reply with a "failure reason" gives a *FailureError. It never panics,
// whatever body holds.
func parseHTTPReply(body []byte) (map[metainfo.Hash]entry, error) {
	if _, err := torrentfile.Scan(body, maxReplyDepth); err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	var w httpReplyWire
	if err := bencode.Unmarshal(body, &w); err != nil {
		var trailing bencode.ErrUnusedTrailingBytes
		if !errors.As(err, &trailing) {
			return nil, fmt.Errorf("%w: %v", errMalformed, err)
		}
	}
	if w.Failure != nil {
		var reason string
		if err := bencode.Unmarshal(w.Failure, &reason); err != nil {
			reason = string(w.Failure)
		}
		return nil, &FailureError{Reason: reason}
	}
	if w.Files == nil {
		return nil, fmt.Errorf("%w: no \"files\" dictionary", errMalformed)
	}
	var files map[string]bencode.Bytes
	if err := bencode.Unmarshal(w.Files, &files); err != nil {
		return nil, fmt.Errorf("%w: files: %v", errMalformed, err)
	}
	out := make(map[metainfo.Hash]entry, len(files))
	for k, raw := range files {
		if len(k) != len(metainfo.Hash{}) {
			continue
		}
		var ew entryWire
		if err := bencode.Unmarshal(raw, &ew); err != nil {
			return nil, fmt.Errorf("%w: files entry %x: %v", errMalformed, k, err)
		}
		var e entry
		var err error
		if e.complete, _, err = rawCount(ew.Complete, "complete"); err != nil {
			return nil, err
		}
		if e.incomplete, _, err = rawCount(ew.Incomplete, "incomplete"); err != nil {
			return nil, err
		}
		if e.downloaded, _, err = rawCount(ew.Downloaded, "downloaded"); err != nil {
			return nil, err
		}
		if e.downloaders, e.hasDownloaders, err = rawCount(ew.Downloaders, "downloaders"); err != nil {
			return nil, err
		}
		out[metainfo.Hash([]byte(k))] = e
	}
	return out, nil
}

// rawCount decodes an optional bencoded count: absent gives 0 and false; a
// negative count (which means nothing) gives 0.
func rawCount(raw bencode.Bytes, name string) (int64, bool, error) {
	if raw == nil {
		return 0, false, nil
	}
	var v int64
	if err := bencode.Unmarshal(raw, &v); err != nil {
		return 0, false, fmt.Errorf("%w: %s: %v", errMalformed, name, err)
	}
	return max(v, 0), true, nil
}

// parseUDPReply parses a UDP scrape reply body after its 8-byte header,
// the answer to a packet of asked hashes: 12 bytes per hash, seeders,
// completed and leechers. It returns one entry per row, in the order of
// the hashes asked. Fewer rows than asked are returned as they are (the
// tracker's per-packet limit); more rows, none, or a partial row are
// malformed.
func parseUDPReply(body []byte, asked int) ([]entry, error) {
	if len(body)%udpRowBytes != 0 {
		return nil, fmt.Errorf("%w: UDP scrape reply of %d bytes after the header, not a multiple of %d", errMalformed, len(body), udpRowBytes)
	}
	n := len(body) / udpRowBytes
	if n > asked {
		return nil, fmt.Errorf("%w: UDP scrape reply with %d rows for %d hashes", errMalformed, n, asked)
	}
	if n == 0 && asked > 0 {
		return nil, fmt.Errorf("%w: UDP scrape reply without rows for %d hashes", errMalformed, asked)
	}
	out := make([]entry, n)
	for i := range out {
		row := body[i*udpRowBytes:]
		count := func(off int) int64 { return max(int64(int32(binary.BigEndian.Uint32(row[off:]))), 0) }
		out[i] = entry{complete: count(0), downloaded: count(4), incomplete: count(8)}
	}
	return out, nil
}
