package wire

import (
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"sync"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The sender's side of BEP 56 (docs/bep56.md, "Framing" and "Flushing").
//
// Everything the library writes after our marker is cut into units, one
// per PIECE message (with the small messages around it), and runs of units
// of one kind are grouped into chunks of at most maxWindow bytes. A chunk
// that looks compressible (order-0 entropy of a sample, plus what recent
// compressions achieved) becomes one zstd frame (EncodeAll on a process-
// wide encoder: no per-connection encoder state) or one lz4 block; any
// other chunk is sent as a raw block, without copying and without running
// the compressor. Each Write ends with everything it was given on the
// wire, so compression adds no latency. A PIECE block the cache holds as
// a zstd frame is sent as that frame (Frames).

const (
	// minCompress is the smallest chunk worth a frame; smaller ones (lone
	// control messages) go raw.
	minCompress = 512
	// maxEntropy (bits per byte of a sample) is what still compresses:
	// random data samples at about 7.8, text at 4 to 5.5.
	maxEntropy = 7.2
	// A chunk compressed to more than 95% of its size is a miss; after
	// missLimit misses in a row only one unit in sampleEvery is tried.
	missLimit   = 4
	sampleEvery = 32
	// flushAt is how much output is gathered before it is written.
	flushAt = 192 << 10
)

var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithWindowSize(maxWindow),
		zstd.WithEncoderCRC(false),
		zstd.WithLowerEncoderMem(true),
	)
})

var (
	lz4Pool     = sync.Pool{New: func() any { return new(lz4.Compressor) }}
	outPool     = sync.Pool{New: func() any { b := make([]byte, 0, flushAt+maxWindow+1<<10); return &b }}
	scratchPool = sync.Pool{New: func() any { b := make([]byte, maxWindow); return &b }}
)

type class uint8

const (
	classAny      class = iota // too small to judge: joins its neighbours
	classCompress              // worth trying
	classRaw                   // sent as is
)

// run is a list of input slices (the library's buffer, the queue) that is
// sent as one chunk.
type run struct {
	parts [][]byte
	n     int
	cls   class
	// low and high are set when the run holds units tried with a low-
	// or a high-entropy sample.
	low, high bool
}

func (r *run) add(b []byte) {
	if len(b) > 0 {
		r.parts = append(r.parts, b)
		r.n += len(b)
	}
}

func (r *run) reset() {
	clear(r.parts)
	*r = run{parts: r.parts[:0]}
}

// item is one piece of output: an input slice, or out[lo:hi].
type item struct {
	ext    []byte
	lo, hi int
}

// zwriter compresses our direction of one connection. It runs under
// Conn.wmu.
type zwriter struct {
	c      *Conn
	algo   algo
	ih     metainfo.Hash
	frames Frames // nil unless the layer's Pieces holds zstd frames and algo is zstd

	// open: zstd, a raw frame is open; lz4, the frame header went out.
	open bool

	// The sampler: compressions in a row that did not pay, of units with
	// a low-entropy sample and of the others; whether the latter compress
	// after all (a probe paid); units sent raw unsampled.
	lowMiss, highMiss int
	tryHigh           bool
	skips             int

	// Message tracking: the header of the current message (enough of a
	// PIECE's for index and begin), the body bytes left after it, and
	// the bytes of a block sent as a cached frame, to drop.
	hdr      [13]byte
	hdrN     int
	body     int
	skip     int
	msgStart int // offset of the current message in unit; -1 if emitted

	plain, wire int64 // since the marker, for the expansion limit

	unit, group run
	out         []byte
	items       []item
}

func newZWriter(c *Conn, a algo) (*zwriter, error) {
	if a == algoZstd {
		if _, err := zstdEncoder(); err != nil {
			return nil, fmt.Errorf("wire: zstd encoder: %w", err)
		}
	}
	z := &zwriter{c: c, algo: a, ih: c.infoHash(), msgStart: -1}
	if f, ok := c.layer.pieces.(Frames); ok && a == algoZstd && c.layer.comp.Preferred == algoZstd.String() {
		z.frames = f
	}
	return z, nil
}

// write sends segs, the plaintext stream, compressed.
func (z *zwriter) write(segs net.Buffers) error {
	bp := outPool.Get().(*[]byte)
	z.out = (*bp)[:0]
	defer func() {
		*bp = z.out[:0]
		outPool.Put(bp)
		z.out = nil
	}()
	plain0, wire0 := z.plain, z.wire
	var err error
	for _, s := range segs {
		if err = z.feed(s); err != nil {
			break
		}
	}
	if err == nil {
		z.closeUnit()
		z.emitGroup()
		err = z.flush()
	}
	z.msgStart = -1 // what was collected of a header went out
	z.unit.reset()
	z.group.reset()
	dp, dw := z.plain-plain0, z.wire-wire0
	z.c.zs.outPlain.Add(dp)
	z.c.zs.outWire.Add(dw)
	z.c.layer.stats.savedUp.Add(dp - dw)
	return err
}

// feed tracks the message framing of s and adds it to the current unit.
func (z *zwriter) feed(s []byte) error {
	for len(s) > 0 {
		switch {
		case z.skip > 0:
			k := min(z.skip, len(s))
			z.skip -= k
			s = s[k:]
		case z.body > 0:
			k := min(z.body, len(s))
			z.unit.add(s[:k])
			z.body -= k
			s = s[k:]
		default:
			if z.hdrN == 0 {
				z.msgStart = z.unit.n
			}
			need := z.hdrNeed()
			k := min(need-z.hdrN, len(s))
			copy(z.hdr[z.hdrN:], s[:k])
			z.hdrN += k
			z.unit.add(s[:k])
			s = s[k:]
			if z.hdrN == 5 && z.hdr[4] == msgPiece && z.msgStart > 0 {
				// A PIECE starts a unit of its own.
				z.splitUnit(z.msgStart)
				z.msgStart = 0
			}
			if z.hdrN == z.hdrNeed() {
				if err := z.onHeader(); err != nil {
					return err
				}
			}
		}
		if z.out != nil && len(z.out) >= flushAt {
			if err := z.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// hdrNeed is how many header bytes the current message needs tracked.
func (z *zwriter) hdrNeed() int {
	switch {
	case z.hdrN < 4 || be32(z.hdr[:]) == 0:
		return 4
	case z.hdrN < 5 || z.hdr[4] != msgPiece || be32(z.hdr[:]) < 9:
		return 5
	default:
		return 13
	}
}

func (z *zwriter) onHeader() error {
	n := int(be32(z.hdr[:]))
	z.body = 4 + n - z.hdrN
	if z.hdrN == 13 && z.frames != nil {
		length := n - 9
		if z.splice(int(be32(z.hdr[5:])), int(be32(z.hdr[9:])), length) {
			z.skip, z.body = length, 0
		}
	}
	z.hdrN = 0
	return nil
}

// splitUnit closes the unit's first at bytes as a unit of their own and
// keeps the rest as the current unit.
func (z *zwriter) splitUnit(at int) {
	u := &z.unit
	var head run
	rest := u.parts[:0:0]
	off := 0
	for _, p := range u.parts {
		switch {
		case off+len(p) <= at:
			head.add(p)
		case off >= at:
			rest = append(rest, p)
		default:
			head.add(p[:at-off])
			rest = append(rest, p[at-off:])
		}
		off += len(p)
	}
	tail := run{parts: rest, n: u.n - head.n}
	*u = head
	z.closeUnit()
	z.unit = tail
}

// closeUnit classifies the current unit and adds it to the group,
// emitting the group first when the unit does not belong to it.
func (z *zwriter) closeUnit() {
	u := &z.unit
	for u.n > 0 {
		cur := *u
		var rest run
		if cur.n > maxWindow { // split into chunks a block can carry
			cur, rest = cutRun(cur, maxWindow)
		}
		cls, low := classAny, false
		if cur.n >= minCompress {
			cls, low = z.classify(cur)
		}
		g := &z.group
		if g.n > 0 && (g.n+cur.n > maxWindow || (cls != classAny && g.cls != classAny && cls != g.cls)) {
			z.emitGroup()
		}
		for _, p := range cur.parts {
			g.add(p)
		}
		if cls != classAny {
			g.cls = cls
		}
		if cls == classCompress {
			g.low, g.high = g.low || low, g.high || !low
		}
		*u = rest
	}
	u.reset()
}

// cutRun splits r after n bytes.
func cutRun(r run, n int) (head, tail run) {
	off := 0
	for _, p := range r.parts {
		switch {
		case off+len(p) <= n:
			head.add(p)
		case off >= n:
			tail.add(p)
		default:
			head.add(p[:n-off])
			tail.add(p[n-off:])
		}
		off += len(p)
	}
	return head, tail
}

// classify says whether a unit is worth compressing, and whether its
// sample's order-0 entropy is low: a low-entropy unit is, unless such
// units stopped paying; a high-entropy one only if such units paid
// lately. Otherwise one unit in sampleEvery is tried, so that a change in
// the data is noticed.
func (z *zwriter) classify(u run) (class, bool) {
	low := sampleEntropy(u.parts, u.n) <= maxEntropy
	if low && z.lowMiss < missLimit || !low && z.tryHigh {
		return classCompress, low
	}
	z.skips++
	if z.skips%sampleEvery == 0 {
		return classCompress, low
	}
	return classRaw, low
}

// emitGroup sends the group as one frame or block, compressed if it is
// worth trying and pays, raw otherwise.
func (z *zwriter) emitGroup() {
	g := &z.group
	if g.n == 0 {
		return
	}
	if g.cls != classCompress || g.n < minCompress || !z.compress(g) {
		z.raw(g)
	}
	g.reset()
}

// contiguous returns the group's bytes in one slice: the one part, or a
// copy in scratch.
func contiguous(g *run, scratch []byte) []byte {
	if len(g.parts) == 1 {
		return g.parts[0]
	}
	b := scratch[:0]
	for _, p := range g.parts {
		b = append(b, p...)
	}
	return b
}

// compress appends g compressed and reports whether it did; it does not
// when the output would not be smaller than raw, or would break the
// expansion limit.
func (z *zwriter) compress(g *run) bool {
	sp := scratchPool.Get().(*[]byte)
	defer scratchPool.Put(sp)
	src := contiguous(g, *sp)
	mark := len(z.out)
	rawCost := z.rawCost(g.n)
	switch z.algo {
	case algoZstd:
		if z.open {
			z.out = append(z.out, zstdEndFrame...)
		}
		enc, _ := zstdEncoder()
		z.out = enc.EncodeAll(src, z.out)
	case algoLZ4:
		if !z.open {
			z.out = append(z.out, lz4Frame...)
		}
		hdr := len(z.out)
		bound := lz4.CompressBlockBound(len(src))
		z.out = append(z.out, make([]byte, 4+bound)...)
		lc := lz4Pool.Get().(*lz4.Compressor)
		k, err := lc.CompressBlock(src, z.out[hdr+4:])
		lz4Pool.Put(lc)
		if err != nil || k == 0 || k >= len(src) {
			z.out = z.out[:mark]
			z.scored(g, false)
			return false
		}
		binary.LittleEndian.PutUint32(z.out[hdr:], uint32(k))
		z.out = z.out[:hdr+4+k]
	}
	cost := len(z.out) - mark
	z.scored(g, (g.n-cost)*20 >= g.n)
	if cost >= rawCost || !z.withinExpansion(g.n, cost) {
		z.out = z.out[:mark]
		return false
	}
	z.open = z.algo == algoLZ4
	z.items = append(z.items, item{lo: mark, hi: len(z.out)})
	z.plain += int64(g.n)
	z.wire += int64(cost)
	return true
}

// rawCost is what n bytes cost on the wire sent raw now.
func (z *zwriter) rawCost(n int) int {
	hdr, frame := 3, len(zstdRawFrame)
	if z.algo == algoLZ4 {
		hdr, frame = 4, len(lz4Frame)
	}
	if z.open {
		frame = 0
	}
	return n + hdr + frame
}

// scored updates the sampler after a compression of g.
func (z *zwriter) scored(g *run, paid bool) {
	switch {
	case paid:
		if g.low {
			z.lowMiss = 0
		}
		if g.high {
			z.highMiss, z.tryHigh = 0, true
		}
	default:
		if g.low {
			z.lowMiss++
		}
		if g.high {
			if z.highMiss++; z.highMiss >= missLimit {
				z.tryHigh = false
			}
		}
	}
}

// withinExpansion reports whether n plain bytes sent as cost wire bytes
// keep the direction within the expansion limit (docs/bep56.md).
func (z *zwriter) withinExpansion(n, cost int) bool {
	return z.plain+int64(n) <= maxExpansion*(z.wire+int64(cost))+expansionSlack
}

// raw appends g as one raw block (zstd) or uncompressed block (lz4),
// referring to the input without copying it.
func (z *zwriter) raw(g *run) {
	mark := len(z.out)
	switch z.algo {
	case algoZstd:
		if !z.open {
			z.out = append(z.out, zstdRawFrame...)
			z.open = true
		}
		z.out = append(z.out, byte(g.n<<3), byte(g.n>>5), byte(g.n>>13))
	case algoLZ4:
		if !z.open {
			z.out = append(z.out, lz4Frame...)
			z.open = true
		}
		z.out = binary.LittleEndian.AppendUint32(z.out, uint32(g.n)|1<<31)
	}
	z.items = append(z.items, item{lo: mark, hi: len(z.out)})
	for _, p := range g.parts {
		z.items = append(z.items, item{ext: p})
	}
	z.plain += int64(g.n)
	z.wire += int64(g.n + len(z.out) - mark)
}

// splice sends the block (piece, begin, length) as the frame the cache
// holds, if it has one and sending it keeps within the limits. Everything
// before it (the PIECE header included) is emitted first.
func (z *zwriter) splice(piece, begin, length int) bool {
	if length <= 0 || length > maxWindow {
		return false
	}
	z.closeUnit()
	z.emitGroup()
	mark := len(z.out)
	if z.open {
		z.out = append(z.out, zstdEndFrame...)
	}
	out, ok := z.frames.ZstdFrame(z.ih, piece, begin, length, z.out)
	cost := len(out) - mark
	if !ok || cost >= length || !z.withinExpansion(length, cost) {
		z.out = out[:mark]
		return false
	}
	z.out = out
	z.open = false
	z.items = append(z.items, item{lo: mark, hi: len(z.out)})
	z.plain += int64(length)
	z.wire += int64(cost)
	z.c.layer.stats.spliced.Add(1)
	return true
}

// flush writes the output gathered so far.
func (z *zwriter) flush() error {
	if len(z.items) == 0 {
		return nil
	}
	bufs := make(net.Buffers, 0, len(z.items))
	for _, it := range z.items {
		if it.ext != nil {
			bufs = append(bufs, it.ext)
		} else {
			bufs = append(bufs, z.out[it.lo:it.hi])
		}
	}
	err := z.c.writev(bufs)
	clear(z.items)
	z.items = z.items[:0]
	z.out = z.out[:0]
	return err
}
