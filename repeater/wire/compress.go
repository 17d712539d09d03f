package wire

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// BEP 56 stream compression, as specified in docs/bep56.md: both sides
// advertise "c" (algorithm → priority) and an lt_compress extension id in
// their extended handshakes; once both handshakes are exchanged, each side
// that finds a common algorithm sends one lt_compress message naming it,
// and every byte it sends after that message is one compressed stream.
// The two directions are independent. Peers without "c" see an ordinary
// connection: the keys are ignored by every client tried (Transmission,
// aria2, libtorrent, qBittorrent).

// algo is a compression algorithm; algoNone is plain.
type algo uint8

const (
	algoNone algo = iota
	algoZstd
	algoLZ4
	numAlgos
)

var algoNames = [numAlgos]string{"", "zstd", "lz4"}

func (a algo) String() string { return algoNames[a] }

func parseAlgo(s string) algo {
	for a := algoZstd; a < numAlgos; a++ {
		if algoNames[a] == s {
			return a
		}
	}
	return algoNone
}

// Limits of the profile. They bind senders and receivers alike
// (docs/bep56.md, "Limits").
const (
	// compressMarker names the LTEP message that starts a compressed
	// direction.
	compressMarker = "lt_compress"
	// maxWindow is the largest zstd window a receiver accepts, and the
	// largest block (decompressed) of either algorithm.
	maxWindow = 64 << 10
	// maxExpansion and expansionSlack bound what a compressed direction
	// may decode to: at the end of every block, the bytes decoded since
	// the marker are at most maxExpansion × the compressed bytes since
	// the marker + expansionSlack. A receiver allows one block more.
	maxExpansion   = 64
	expansionSlack = 1 << 20
)

// Errors that close one compressed connection.
var (
	// ErrCompressedStream is returned when a peer's compressed stream is
	// malformed, truncated or outside the profile's limits (window, block
	// size, frames it may not use).
	ErrCompressedStream = errors.New("wire: bad compressed stream")
	// ErrCompressionBomb is returned when a peer's compressed stream
	// decodes to more than the profile allows per compressed byte.
	ErrCompressionBomb = errors.New("wire: compressed stream expands past maxExpansion")
)

// CompressOptions configures BEP 56 stream compression on a layer.
type CompressOptions struct {
	// Zstd and LZ4 are the priorities advertised in "c", 1 to 255; 0
	// leaves an algorithm out. With both 0 nothing is advertised and
	// every connection stays ordinary.
	Zstd, LZ4 int
	// Preferred ("zstd" or "") is advertised as "cp": our pieces are held
	// zstd-compressed (cache.compress), so we send zstd to any peer that
	// accepts it, and send cached blocks without compressing them again
	// (Frames).
	Preferred string
}

func (o CompressOptions) prio(a algo) int {
	switch a {
	case algoZstd:
		return o.Zstd
	case algoLZ4:
		return o.LZ4
	}
	return 0
}

func (o CompressOptions) on() bool { return o.Zstd > 0 || o.LZ4 > 0 }

// Compress turns on BEP 56 for connections wrapped from now on. Call it
// before the client starts.
func (l *Layer) Compress(o CompressOptions) error {
	for _, p := range []int{o.Zstd, o.LZ4} {
		if p < 0 || p > 255 {
			return fmt.Errorf("wire: compression priority %d is outside 0..255", p)
		}
	}
	if o.Preferred != "" && (parseAlgo(o.Preferred) == algoNone || o.prio(parseAlgo(o.Preferred)) == 0) {
		return fmt.Errorf("wire: preferred compression %q is not offered", o.Preferred)
	}
	l.comp = o
	return nil
}

// Frames is an optional interface of the layer's Pieces: pieces held as
// zstd frames, one per 16 KiB block (the cache with cache.compress). A
// block asked for on a zstd-compressed connection is sent as its frame,
// without compressing it again.
type Frames interface {
	// ZstdFrame appends to dst the zstd frame that decodes to the length
	// bytes of piece at begin, and reports whether there is one.
	ZstdFrame(ih metainfo.Hash, piece, begin, length int, dst []byte) ([]byte, bool)
}

// compState is the negotiation on one connection, under Conn.mu.
type compState struct {
	ourID    byte // the lt_compress id in our extended handshake; 0: not offered
	ourSent  bool // our extended handshake, with "c", went out
	peerPrio [numAlgos]int
	peerCP   algo
	started  bool // our marker is queued: our direction is compressed
}

// zstats counts one connection's compressed traffic, both ways, for
// PeerState; the writer and reader update them.
type zstats struct {
	counted           atomic.Bool // counted in Stats.Compressed
	outAlgo, inAlgo   atomic.Uint32
	outPlain, outWire atomic.Int64
	inWire, inPlain   atomic.Int64
}

// CompressState is BEP 56 on one connection: the algorithm each way
// ("" when that direction is plain) and the bytes after the marker, as
// the library wrote or read them (Plain) and on the wire (Wire).
type CompressState struct {
	// Offered is set when our extended handshake advertised "c".
	Offered           bool
	Out, In           string
	OutPlain, OutWire int64
	InPlain, InWire   int64
}

// RatioOut is wire/plain for what we sent (1 when nothing was).
func (s CompressState) RatioOut() float64 { return ratio(s.OutWire, s.OutPlain) }

// RatioIn is wire/plain for what we received (1 when nothing was).
func (s CompressState) RatioIn() float64 { return ratio(s.InWire, s.InPlain) }

func ratio(wire, plain int64) float64 {
	if plain <= 0 {
		return 1
	}
	return float64(wire) / float64(plain)
}

func (z *zstats) state() CompressState {
	return CompressState{
		Out: algo(z.outAlgo.Load()).String(), In: algo(z.inAlgo.Load()).String(),
		OutPlain: z.outPlain.Load(), OutWire: z.outWire.Load(),
		InPlain: z.inPlain.Load(), InWire: z.inWire.Load(),
	}
}

// offerCompression adds "c", "cp" and m.lt_compress to our extended
// handshake msg (length, id 20, ext id 0, dict) when the layer compresses;
// the lt_compress id is the first one the library does not use.
func (c *Conn) offerCompression(msg []byte) []byte {
	o := c.layer.comp
	if !o.on() {
		return msg
	}
	var d map[string]any
	if err := bencode.Unmarshal(msg[6:], &d); err != nil || d == nil {
		return msg // not ours to fix; send it as the library wrote it
	}
	id := addExtension(d, compressMarker)
	if id == 0 {
		return msg
	}
	cd := map[string]any{}
	for a := algoZstd; a < numAlgos; a++ {
		if p := o.prio(a); p > 0 {
			cd[a.String()] = int64(p)
		}
	}
	d["c"] = cd
	if o.Preferred != "" {
		d["cp"] = o.Preferred
	}
	payload, err := bencode.Marshal(d)
	if err != nil {
		return msg
	}
	c.mu.Lock()
	c.st.comp.ourID = byte(id)
	c.mu.Unlock()
	return msgExtBytes(0, payload)
}

// onPeerCompression records "c" and "cp" from the peer's extended
// handshake d. c.mu must be held.
func (s *peerState) onPeerCompression(d map[string]any) {
	cd, ok := d["c"].(map[string]any)
	if !ok {
		return
	}
	var prio [numAlgos]int
	for name, v := range cd {
		if p, ok := v.(int64); ok && p > 0 && p < 256 {
			prio[parseAlgo(name)] = int(p)
		}
	}
	prio[algoNone] = 0
	s.comp.peerPrio = prio
	if cp, ok := d["cp"].(string); ok {
		s.comp.peerCP = parseAlgo(cp)
	}
}

// chooseAlgo picks what we send with: our cp when the peer accepts it,
// else the common algorithm with the highest sum of both priorities (ties:
// zstd first); algoNone without one.
func chooseAlgo(o CompressOptions, peer [numAlgos]int) algo {
	if a := parseAlgo(o.Preferred); a != algoNone && peer[a] > 0 {
		return a
	}
	best, bestSum := algoNone, 0
	for a := algoZstd; a < numAlgos; a++ {
		if o.prio(a) > 0 && peer[a] > 0 && o.prio(a)+peer[a] > bestSum {
			best, bestSum = a, o.prio(a)+peer[a]
		}
	}
	return best
}

// ourExtSent notes that our extended handshake went out (or is on its
// way, ahead of anything queued now) and starts compression if the peer's
// handshake allows it.
func (c *Conn) ourExtSent() {
	c.mu.Lock()
	c.st.comp.ourSent = c.st.comp.ourID != 0
	c.mu.Unlock()
	c.maybeCompress()
}

// maybeCompress queues our lt_compress marker once both extended
// handshakes are exchanged and a common algorithm exists; everything
// queued or written after it goes through the encoder.
func (c *Conn) maybeCompress() {
	c.mu.Lock()
	s := &c.st
	peerID := s.extIDs[compressMarker]
	if s.comp.started || !s.comp.ourSent || !s.extShown || peerID == 0 {
		c.mu.Unlock()
		return
	}
	a := chooseAlgo(c.layer.comp, s.comp.peerPrio)
	if a == algoNone {
		c.mu.Unlock()
		return // a later handshake (BEP 10 allows updates) may bring one
	}
	s.comp.started = true
	c.mu.Unlock()
	marker := msgExtBytes(peerID, []byte(a.String()))
	c.qmu.Lock()
	c.queue = append(c.queue, marker...)
	c.zAt, c.zAlgo = len(c.queue), a
	c.qmu.Unlock()
	c.flushQueue()
}

// isMarker reports whether the peer's extension message ext is its
// lt_compress marker: our id for it, offered in our handshake.
func (c *Conn) isMarker(ext byte) bool {
	if c.r.z != nil {
		return false // one marker per direction; later ones are the library's
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return ext != 0 && ext == c.st.comp.ourID
}

// onMarker starts decoding the peer's direction after its marker msg
// (whole); rest are the bytes already read after it, compressed.
func (c *Conn) onMarker(msg, rest []byte) error {
	a := parseAlgo(string(msg[6:]))
	if a == algoNone || c.layer.comp.prio(a) == 0 {
		c.layer.stats.compressBad.Add(1)
		return fmt.Errorf("%w: lt_compress names %q, which we did not offer", ErrCompressedStream, msg[6:])
	}
	z, err := newZReader(c, a, rest)
	if err != nil {
		c.layer.stats.compressBad.Add(1)
		return err
	}
	c.r.z = z
	c.zs.inAlgo.Store(uint32(a))
	c.countCompressed()
	return nil
}

// countCompressed counts the connection in Stats.Compressed, once.
func (c *Conn) countCompressed() {
	if !c.zs.counted.Swap(true) {
		c.layer.stats.compressed.Add(1)
	}
}

// maxMarker is the longest lt_compress message accepted (an algorithm
// name of up to 32 bytes).
const maxMarker = 6 + 32

// heldExtHandshake acts on our complete extended handshake msg, held
// whole: it gains the compression keys, then waits for the peer's
// bitfield in partial-seed mode (extHandshakeReady) or goes out with this
// write. wmu must be held.
func (c *Conn) heldExtHandshake(msg []byte) {
	msg = c.offerFriends(c.offerCompression(msg))
	if c.w.holdPartial {
		c.flushSegsLocked()
		c.extHandshakeReady(msg)
		return
	}
	c.w.segs = append(c.w.segs, msg)
	c.w.dirty = true
	c.onOurMessage(msgExtended, msg[5:])
	c.ourExtSent()
}

// send writes segs to the peer: as they are, or through the encoder once
// our direction is compressed. wmu must be held.
func (c *Conn) send(segs net.Buffers) error {
	if c.zw != nil {
		return c.zw.write(segs)
	}
	return c.writev(segs)
}

// writev writes bufs with one system call where it can: net.Buffers uses
// writev only on a *net.TCPConn, so the TCP connection under a plaintext
// decryptConn is written directly, and for anything else (MSE) the
// buffers are joined first rather than written one by one.
func (c *Conn) writev(bufs net.Buffers) error {
	var w net.Conn = c.Conn
	if d, ok := w.(*decryptConn); ok {
		if tcp := d.direct(); tcp != nil {
			w = tcp
		}
	}
	if _, ok := w.(*net.TCPConn); ok || len(bufs) <= 1 {
		_, err := bufs.WriteTo(w)
		return err
	}
	bp := outPool.Get().(*[]byte)
	b := (*bp)[:0]
	for _, p := range bufs {
		b = append(b, p...)
	}
	_, err := w.Write(b)
	*bp = b[:0]
	outPool.Put(bp)
	return err
}

// startCompress compresses everything we send from now on with a, rest
// first. Our marker has just gone out. wmu must be held.
func (c *Conn) startCompress(a algo, rest []byte) error {
	zw, err := newZWriter(c, a)
	if err != nil {
		return err
	}
	c.zw = zw
	c.zs.outAlgo.Store(uint32(a))
	c.countCompressed()
	if len(rest) == 0 {
		return nil
	}
	return c.send(net.Buffers{rest})
}

// addExtension gives name the lowest message id that d's "m" dictionary
// (a BEP 10 handshake's) does not use yet and returns it; 0 when all 255
// are taken.
func addExtension(d map[string]any, name string) int64 {
	m, _ := d["m"].(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	used := map[int64]bool{}
	for _, v := range m {
		if id, ok := v.(int64); ok {
			used[id] = true
		}
	}
	for i := int64(1); i < 256; i++ {
		if !used[i] {
			m[name] = i
			d["m"] = m
			return i
		}
	}
	return 0
}
