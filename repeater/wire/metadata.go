package wire

import (
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/torrentfile"
)

// Metadata from peers (BEP 9) for torrents joined by magnet or info hash.
//
// anacrolix v1.61 decodes the assembled info dictionary before it checks
// the hash, with a decoder that recurses once per nesting level: any peer
// of a magnet swarm could send 16 MiB of nested lists and overflow the
// stack of the whole process. So the library never fetches metadata
// itself: the layer removes metadata_size from the peers' extended
// handshakes while a torrent's info is unknown (the library then requests
// nothing), fetches the metadata on the same connections, checks that it
// hashes to the info hash and passes torrentfile.ParseInfo, and only then
// hands it to the library (Layer.OnInfo). A connection whose metadata does
// not hash is closed; metadata that hashes but fails the checks is refused
// for good (Layer.InfoRefused).

const (
	// metaBlock is the ut_metadata piece size (BEP 9).
	metaBlock = 16 << 10
	// maxDecodedExt bounds ut_metadata and ut_pex messages: a metadata
	// block and its dictionary.
	maxDecodedExt = metaBlock + 1<<10
	// metaDepth bounds the dictionary of those messages.
	metaDepth = 4
	// metaWindow is how many metadata blocks are requested at once from a
	// connection.
	metaWindow = 8
	// metaFetchers is how many connections fetch one torrent's metadata at
	// once (each a whole copy, so that a liar is found by its own copy).
	metaFetchers = 2
)

// metaStall is how long a fetch may make no progress before its slot goes
// to another connection (a variable for tests).
var metaStall = 20 * time.Second

// ut_metadata message types.
const (
	metaRequest = 0
	metaData    = 1
	metaReject  = 2
)

// metaConn is one connection's fetch of one copy of the metadata.
type metaConn struct {
	size      int
	buf       []byte // blocks received, in order
	requested int    // blocks requested so far
	progress  time.Time
}

// metaFetch is the layer's state for one torrent's metadata.
type metaFetch struct {
	active map[*Conn]struct{}
	done   bool
	err    error // set when the metadata hashed but was refused
}

type metaState struct {
	mu      sync.Mutex
	sink    func(ih metainfo.Hash, info []byte)
	fetches map[metainfo.Hash]*metaFetch
}

// OnInfo makes the layer fetch and check the metadata of torrents whose
// info is unknown (Pieces.NumPieces is 0) and pass it to f, which should
// give it to the library (Torrent.SetInfoBytes). f runs on its own
// goroutine. Without it the library fetches metadata unchecked.
func (l *Layer) OnInfo(f func(ih metainfo.Hash, info []byte)) {
	l.meta.mu.Lock()
	l.meta.sink = f
	l.meta.mu.Unlock()
}

// InfoRefused returns why metadata received for ih was refused although it
// hashed to ih (nil if not): such a torrent is broken for every peer.
func (l *Layer) InfoRefused(ih metainfo.Hash) error {
	l.meta.mu.Lock()
	defer l.meta.mu.Unlock()
	if f := l.meta.fetches[ih]; f != nil {
		return f.err
	}
	return nil
}

// fetchesInfo reports whether the layer, not the library, fetches ih's
// metadata.
func (l *Layer) fetchesInfo(ih metainfo.Hash) bool {
	l.meta.mu.Lock()
	f := l.meta.fetches[ih]
	open := l.meta.sink != nil && (f == nil || !f.done) // done is written under mu (endFetch)
	l.meta.mu.Unlock()
	return open && l.pieces.NumPieces(ih) == 0
}

// decodedExt reports whether the peer's extension message ext is one the
// library decodes as bencode (ut_metadata, ut_pex), so the layer checks it
// first. c.mu must not be held.
func (c *Conn) decodedExt(ext byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ext == c.st.ourMetaID && ext != 0 || ext == c.st.ourPexID && ext != 0
}

// onDecodedExt checks one ut_metadata or ut_pex message payload and reports
// whether the library is to see it: the layer keeps the replies to its own
// metadata requests.
func (c *Conn) onDecodedExt(ext byte, payload []byte) (bool, error) {
	n, err := torrentfile.Scan(payload, metaDepth)
	if err != nil {
		return false, fmt.Errorf("%w: extension message %d: %w", ErrBadMessage, ext, err)
	}
	c.mu.Lock()
	isMeta := ext == c.st.ourMetaID
	c.mu.Unlock()
	if !isMeta {
		return true, nil
	}
	var h struct {
		Type  int64 `bencode:"msg_type"`
		Piece int64 `bencode:"piece"`
		Total int64 `bencode:"total_size"`
	}
	if err := bencode.Unmarshal(payload[:n], &h); err != nil {
		return false, fmt.Errorf("%w: ut_metadata: %v", ErrBadMessage, err)
	}
	if h.Type == metaRequest {
		return true, nil // for the library, which serves our metadata
	}
	c.mu.Lock()
	m := c.st.meta
	c.mu.Unlock()
	if m == nil {
		// Not ours: the library's (it fetches when the layer does not),
		// or an answer to a fetch the layer gave up or finished.
		return !c.layer.fetchesInfo(c.infoHash()) && !c.layer.infoDone(c.infoHash()), nil
	}
	switch h.Type {
	case metaReject:
		c.layer.endFetch(c, nil)
		return false, nil
	case metaData:
		return false, c.onMetaBlock(m, int(h.Piece), payload[n:])
	}
	return false, nil // unknown types are ignored (BEP 9)
}

// onMetaBlock stores one block of our fetch; the last one completes it.
// m is read and written under c.mu (checkMetaStall and requestMeta run on
// other goroutines).
func (c *Conn) onMetaBlock(m *metaConn, piece int, block []byte) error {
	c.mu.Lock()
	got := len(m.buf) / metaBlock
	if piece != got || piece >= m.requested {
		c.mu.Unlock()
		return fmt.Errorf("%w: ut_metadata block %d not requested (want %d)", ErrBadMessage, piece, got)
	}
	want := min(metaBlock, m.size-len(m.buf))
	if len(block) != want {
		c.mu.Unlock()
		return fmt.Errorf("%w: ut_metadata block %d of %d bytes, want %d", ErrBadMessage, piece, len(block), want)
	}
	m.buf = append(m.buf, block...)
	m.progress = time.Now()
	done := len(m.buf) >= m.size
	info, ih := m.buf, c.st.infoHash
	c.mu.Unlock()
	if !done {
		c.requestMeta(m)
		return nil
	}
	if _, err := torrentfile.ParseInfo(info, ih); err != nil {
		if !hashesTo(info, ih) { // this peer lied
			c.layer.endFetch(c, nil)
			return fmt.Errorf("%w: metadata from this peer: %w", ErrBadMessage, err)
		}
		c.layer.stats.metaRefused.Add(1)
		c.layer.endFetch(c, err) // it hashes: the torrent itself is bad
		return nil
	}
	c.layer.stats.metaFetched.Add(1)
	c.layer.gotInfo(ih, info) // first: no other connection starts a fetch
	c.layer.endFetch(c, nil)
	return nil
}

// hashesTo reports whether b hashes to ih (v1, or v2 truncated).
func hashesTo(b []byte, ih metainfo.Hash) bool {
	v1, v2 := sha1.Sum(b), sha256.Sum256(b)
	return v1 == ih || [20]byte(v2[:20]) == ih
}

// requestMeta asks for blocks up to the window.
func (c *Conn) requestMeta(m *metaConn) {
	c.mu.Lock()
	id := c.st.extIDs["ut_metadata"]
	var out []byte
	for m.requested*metaBlock < m.size && m.requested-len(m.buf)/metaBlock < metaWindow {
		p, _ := bencode.Marshal(map[string]int64{"msg_type": metaRequest, "piece": int64(m.requested)})
		out = append(out, msgExtBytes(id, p)...)
		m.requested++
	}
	c.mu.Unlock()
	if len(out) > 0 {
		c.inject(out)
	}
}

// maybeFetchInfo starts a metadata fetch on this connection when the
// torrent needs one, both extended handshakes are known and the torrent
// has a free fetch slot. c.mu must not be held.
func (c *Conn) maybeFetchInfo() {
	if c.closed.Load() {
		return
	}
	c.mu.Lock()
	s := &c.st
	ready := s.meta == nil && s.ihKnown && s.ourExtShown && s.extShown &&
		s.extIDs["ut_metadata"] != 0 && s.metaSize > 0 && s.metaSize <= torrentfile.MaxInfoBytes
	ih, size := s.infoHash, int(s.metaSize)
	c.mu.Unlock()
	if !ready || !c.layer.fetchesInfo(ih) || !c.layer.startFetch(c, ih) {
		return
	}
	m := &metaConn{size: size, progress: time.Now()}
	c.mu.Lock()
	c.st.meta = m
	c.mu.Unlock()
	c.requestMeta(m)
	time.AfterFunc(metaStall, func() { c.checkMetaStall(m) })
}

// checkMetaStall gives up a fetch that made no progress for metaStall.
func (c *Conn) checkMetaStall(m *metaConn) {
	c.mu.Lock()
	current := c.st.meta == m
	since := time.Since(m.progress)
	c.mu.Unlock()
	switch {
	case !current || c.closed.Load():
	case since >= metaStall:
		c.layer.endFetch(c, nil)
	default:
		time.AfterFunc(metaStall-since, func() { c.checkMetaStall(m) })
	}
}

// startFetch gives c one of ih's fetch slots.
func (l *Layer) startFetch(c *Conn, ih metainfo.Hash) bool {
	l.meta.mu.Lock()
	defer l.meta.mu.Unlock()
	if l.meta.fetches == nil {
		l.meta.fetches = map[metainfo.Hash]*metaFetch{}
	}
	f := l.meta.fetches[ih]
	if f == nil {
		f = &metaFetch{active: map[*Conn]struct{}{}}
		l.meta.fetches[ih] = f
	}
	if _, busy := f.active[c]; busy || f.done || len(f.active) >= metaFetchers {
		return false
	}
	f.active[c] = struct{}{}
	return true
}

// endFetch ends c's fetch; refused, when set, is why metadata that hashed
// was refused, which ends ih's fetching for good. Freed slots go to other
// connections of the torrent.
func (l *Layer) endFetch(c *Conn, refused error) {
	c.mu.Lock()
	c.st.meta = nil
	ih := c.st.infoHash
	c.mu.Unlock()
	l.meta.mu.Lock()
	f := l.meta.fetches[ih]
	if f != nil {
		delete(f.active, c)
		if refused != nil {
			f.done, f.err = true, refused
		}
	}
	again := f != nil && !f.done
	l.meta.mu.Unlock()
	if again {
		for _, o := range l.connsOf(ih) {
			if o != c {
				go o.maybeFetchInfo()
			}
		}
	}
}

// gotInfo records ih's metadata as fetched and hands it on.
func (l *Layer) gotInfo(ih metainfo.Hash, info []byte) {
	l.meta.mu.Lock()
	f := l.meta.fetches[ih]
	var others []*Conn
	if f != nil {
		f.done = true
		for o := range f.active {
			others = append(others, o)
		}
		clear(f.active)
	}
	sink := l.meta.sink
	l.meta.mu.Unlock()
	for _, o := range others {
		o.mu.Lock()
		o.st.meta = nil // their late blocks are dropped
		o.mu.Unlock()
	}
	if sink != nil {
		go sink(ih, info)
	}
}

// infoDone reports whether ih's metadata fetch ended.
func (l *Layer) infoDone(ih metainfo.Hash) bool {
	l.meta.mu.Lock()
	defer l.meta.mu.Unlock()
	f := l.meta.fetches[ih]
	return f != nil && f.done
}

// forgetInfo drops ih's fetch state (when the torrent is forgotten).
func (l *Layer) forgetInfo(ih metainfo.Hash) {
	l.meta.mu.Lock()
	delete(l.meta.fetches, ih)
	l.meta.mu.Unlock()
}

// footprint is what the connection's own state holds in bytes, roughly:
// buffers, captured messages, bitsets, maps and a metadata fetch. Tests
// bound it after every message.
func (c *Conn) footprint() int {
	n := cap(c.r.buf) + cap(c.r.capture) + cap(c.r.inject)
	c.mu.Lock()
	s := &c.st
	n += 8 * (cap(s.have.w) + cap(s.advertised.w) + cap(s.announced.w) + cap(s.withheld.w))
	n += len(s.extIDs)*(16+maxExtName) + (len(s.outstanding)+len(s.expired)+len(s.cancelled))*40 + len(s.clientName)
	if s.meta != nil {
		n += cap(s.meta.buf)
	}
	c.mu.Unlock()
	if c.r.z != nil {
		n += c.r.z.footprint()
	}
	c.qmu.Lock()
	n += cap(c.queue)
	c.qmu.Unlock()
	return n
}
