package wire

import (
	"fmt"
	"strings"

	"github.com/anacrolix/torrent/bencode"

	"github.com/btslave/btslave/internal/torrentfile"
)

// MaxPeerRequests caps the request queue a peer advertises (reqq) as the
// library sees it. anacrolix fills whatever a peer advertises; Transmission
// 3.00 advertises 512 and, near that depth, rejects or silently drops
// requests, after which anacrolix stops requesting (see kickAfterReject and
// RequestTimeout). 250 is anacrolix's own default for peers that say
// nothing, and 250 blocks of 16 KiB in flight fill a 40 MiB/s link at 100 ms.
const MaxPeerRequests = 250

// Limits on what a peer's BEP 10 extended handshakes may cost. Real ones are
// a few hundred bytes, name under 20 extensions, nest two levels and come
// once or twice per connection.
const (
	// maxExtHandshake is the largest extended handshake accepted; it is
	// held whole, checked and rewritten before the library sees it.
	maxExtHandshake = 16 << 10
	// maxExtDepth bounds the handshake's bencode nesting: the library's
	// decoder recurses once per level.
	maxExtDepth = 8
	// maxExtHandshakes is how many extended handshakes one connection may
	// send (BEP 10 allows later ones to update the first).
	maxExtHandshakes = 8
	// maxPeerExtensions bounds the extension names kept per connection.
	maxPeerExtensions = 64
	// maxExtName and maxClientName bound the strings kept from a handshake.
	maxExtName    = 64
	maxClientName = 64
)

// libraryExtensions are the extension names the library is shown from a
// peer's "m": those it implements. Every other name is kept by the layer
// only (bounded): anacrolix adds each name it sees to a process-wide expvar
// map that is never emptied.
var libraryExtensions = map[string]bool{
	"ut_metadata": true, "ut_pex": true, "ut_holepunch": true,
	"upload_only": true, "lt_donthave": true,
}

// LibraryExtension reports whether the library is shown the peer's
// extension name (see libraryExtensions).
func LibraryExtension(name string) bool { return libraryExtensions[name] }

// onPeerExtHandshake checks the peer's extended handshake msg (length, id
// 20, ext id 0, dict), records what the layer needs from it, and returns
// the message the library is to see: "m" cut to the extensions it
// implements, "v" truncated, "reqq" capped at MaxPeerRequests, and
// "metadata_size" removed while the layer fetches the metadata itself
// (metadata.go). Anything malformed, too deep or too frequent closes the
// connection before the library decodes it.
func (c *Conn) onPeerExtHandshake(msg []byte) ([]byte, error) {
	d, err := parseExtHandshake(msg[6:])
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	s := &c.st
	s.extHandshakes++
	if s.extHandshakes > maxExtHandshakes {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: more than %d on one connection", ErrBadExtHandshake, maxExtHandshakes)
	}
	if m, ok := d["m"].(map[string]any); ok {
		ids := s.extIDsW()
		for k, v := range m {
			id, ok := v.(int64)
			if !ok || len(k) > maxExtName {
				continue
			}
			// A later handshake updates the map (BEP 10): id 0 removes an
			// extension. Names past the cap are ignored.
			if id <= 0 || id > 255 {
				delete(ids, k)
			} else if _, known := ids[k]; known || len(ids) < maxPeerExtensions {
				ids[k] = byte(id)
			}
		}
	}
	if v, ok := d["v"].(string); ok && v != "" {
		s.clientName = v[:min(len(v), maxClientName)]
	}
	u, _ := d["upload_only"].(int64)
	s.peerUpload = u != 0
	s.extShown = true
	_, shareMode := s.extIDs["share_mode"] // an extension only libtorrent has
	s.dropsUploadOnly = shareMode || strings.Contains(strings.ToLower(s.clientName), "libtorrent")
	strip := false
	if size, ok := d["metadata_size"].(int64); ok {
		s.metaSize = size
		strip = c.layer.fetchesInfo(s.infoHash)
	}
	s.onPeerCompression(d)
	c.mu.Unlock()
	c.maybeCompress()
	return libraryView(d, strip)
}

// parseExtHandshake checks and decodes an extended handshake payload.
func parseExtHandshake(payload []byte) (map[string]any, error) {
	n, err := torrentfile.Scan(payload, maxExtDepth)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrBadExtHandshake, err)
	case n != len(payload):
		return nil, fmt.Errorf("%w: %d bytes after the dictionary", ErrBadExtHandshake, len(payload)-n)
	case payload[0] != 'd':
		return nil, fmt.Errorf("%w: not a dictionary", ErrBadExtHandshake)
	}
	var d map[string]any
	if err := bencode.Unmarshal(payload, &d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExtHandshake, err)
	}
	return d, nil
}

// libraryView is the extended handshake message the library sees for the
// peer's dictionary d: "m" cut to what the library implements, "v"
// truncated, "reqq" capped, BEP 56's "c" and "cp" (the layer's) removed,
// and "metadata_size" removed when strip is set.
func libraryView(d map[string]any, strip bool) ([]byte, error) {
	delete(d, "c")
	delete(d, "cp")
	if m, ok := d["m"].(map[string]any); ok {
		lib := map[string]any{}
		for k, v := range m {
			if libraryExtensions[k] {
				lib[k] = v
			}
		}
		d["m"] = lib
	}
	if v, ok := d["v"].(string); ok && len(v) > maxClientName {
		d["v"] = v[:maxClientName]
	}
	if q, ok := d["reqq"].(int64); ok && q > MaxPeerRequests {
		d["reqq"] = int64(MaxPeerRequests)
	}
	if strip {
		delete(d, "metadata_size")
	}
	out, err := bencode.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadExtHandshake, err)
	}
	return msgExtBytes(0, out), nil
}

// rewriteExtHandshake adds upload_only: 1 to our extended handshake msg
// (length, id 20, ext id 0, bencoded dict).
func (c *Conn) rewriteExtHandshake(msg []byte) []byte {
	var d map[string]any
	if err := bencode.Unmarshal(msg[6:], &d); err != nil || d == nil {
		return msg // not ours to fix; send as the library wrote it
	}
	d["upload_only"] = int64(1)
	payload, err := bencode.Marshal(d)
	if err != nil {
		return msg
	}
	c.mu.Lock()
	c.st.partialSeed = true
	c.mu.Unlock()
	return msgExtBytes(0, payload)
}

// onOurExtHandshake learns the library's own extension ids from our
// extended handshake payload: the layer must recognise the peer's
// ut_metadata and ut_pex messages, which carry our ids.
func (c *Conn) onOurExtHandshake(payload []byte) {
	var h struct {
		M map[string]int64 `bencode:"m"`
	}
	if bencode.Unmarshal(payload, &h) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.ourMetaID = byte(h.M["ut_metadata"])
	c.st.ourPexID = byte(h.M["ut_pex"])
	c.st.ourExtShown = true
}
