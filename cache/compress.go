package cache

import (
	"fmt"
	"os"
	"sync"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/klauspost/compress/zstd"
)

// A compressed piece is kept only if it is at most 95% of the plain length:
// n <= l - l/minSavingDiv.
const minSavingDiv = 20

// FrameBlock is how much of a piece one zstd frame holds: a compressed
// piece is the concatenation of one independent frame per 16 KiB block
// (the block peers request), so that a block can be sent to a peer as its
// frame, without compressing it again (ZstdFrame; BEP 56 "cp").
const FrameBlock = 16 << 10

// framesBound is the most bytes a piece of length l takes as frames.
func (c *Cache) framesBound(l int64) int64 {
	full := l / FrameBlock
	n := full * int64(c.enc.MaxEncodedSize(FrameBlock))
	if rest := l % FrameBlock; rest > 0 {
		n += int64(c.enc.MaxEncodedSize(int(rest)))
	}
	return n
}

// encodeFrames appends src to dst as one zstd frame per FrameBlock and
// returns the frames' offsets in dst's appended part (len = frames + 1).
func (c *Cache) encodeFrames(src, dst []byte) ([]byte, []uint32) {
	offs := make([]uint32, 0, len(src)/FrameBlock+2)
	base := len(dst)
	for off := 0; off < len(src); off += FrameBlock {
		offs = append(offs, uint32(len(dst)-base))
		dst = c.enc.EncodeAll(src[off:min(off+FrameBlock, len(src))], dst)
	}
	return dst, append(offs, uint32(len(dst)-base))
}

func newCodec() (*zstd.Encoder, *zstd.Decoder, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithWindowSize(1<<20),
		zstd.WithEncoderCRC(false),
		zstd.WithLowerEncoderMem(true),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("cache: zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		enc.Close()
		return nil, nil, fmt.Errorf("cache: zstd decoder: %w", err)
	}
	return enc, dec, nil
}

// compressor holds the buffers compressions reuse; the zstd encoder runs
// one compression at a time anyway. Their capacity is charged as scratch
// (c.compBytes) for the life of the cache. Lock order: mu, then Cache.mu.
type compressor struct {
	mu      sync.Mutex
	in, out []byte // in: the file backend's plain input
}

// A torrent whose last missLimit pieces did not compress is sampled: one
// piece in every sampleEvery is tried.
const (
	missLimit   = 4
	sampleEvery = 32
)

// compress replaces h's plain data with a zstd frame when that saves at
// least 5%. Readers keep reading the plain data while it compresses.
// Lock held on entry and return; it unlocks.
func (c *Cache) compress(h *held) {
	p := h.p
	t := p.t
	l := p.length
	c.compIn += l
	if t.compMisses >= missLimit {
		t.compSkips++
		if t.compSkips%sampleEvery != 0 {
			c.compOut += l
			return
		}
	}
	// Busy, so that nothing evicts or converts it meanwhile.
	h.compressing = true
	h.refs++
	ver := h.version
	c.unlock()
	c.comp.mu.Lock()
	defer c.comp.mu.Unlock()
	c.mu.Lock()
	n, lost, err := c.compressLocked(h, ver)
	if err != nil {
		c.log.Warn("cache: compressing piece", "err", err)
	}
	if n > 0 {
		t.compMisses = 0
		c.compOut += n
	} else {
		t.compMisses++
		c.compOut += l
	}
	h.compressing = false
	c.unref(h)
	if lost && p.h == h && !busy(h) {
		// A file rewrite failed half way: the data is gone.
		c.evict(h, keepAny)
	}
}

// compressLocked does the work of compress with c.comp.mu held. It returns
// the compressed size, or 0 if the piece stays plain, and whether a failed
// rewrite lost the data.
func (c *Cache) compressLocked(h *held, ver uint32) (n int64, lost bool, err error) {
	p := h.p
	l := p.length
	if c.closed {
		return 0, false, nil
	}
	bound := c.framesBound(l)
	growOut := max(0, bound-int64(cap(c.comp.out)))
	growIn := int64(0)
	if c.dir != "" {
		growIn = max(0, l-int64(cap(c.comp.in)))
	}
	if grow := growOut + growIn; grow > 0 {
		// Once per larger piece length: may evict.
		if !c.reserve(grow, &c.scratch) {
			c.log.Debug("cache: no room for the compression buffer", "piece", p)
			return 0, false, nil
		}
		c.compBytes += grow
		c.unlock()
		if growOut > 0 {
			c.comp.out = make([]byte, 0, bound)
		}
		if growIn > 0 {
			c.comp.in = make([]byte, l)
		}
		c.mu.Lock()
	}
	src := h.buf
	var f *os.File
	if c.dir != "" {
		if f, err = c.fileOf(h); err != nil {
			return 0, false, err
		}
	}
	c.unlock()
	if f != nil {
		src = c.comp.in[:l]
		err = readFull(f, src)
	}
	var out []byte
	var frames []uint32
	if err == nil {
		out, frames = c.encodeFrames(src, c.comp.out[:0])
	}
	c.mu.Lock()
	if err != nil {
		// Nothing was written: the plain data is intact.
		return 0, false, fmt.Errorf("%v: reading for compression: %w", p, err)
	}
	n = int64(len(out))
	if cap(out) != cap(c.comp.out) || n > l-l/minSavingDiv || h.version != ver || c.closed {
		return 0, false, nil
	}
	// Upgrade to exclusive: wait for other readers to leave.
	h.excl = true
	defer func() {
		h.excl = false
		c.wake()
	}()
	for h.refs > 1 {
		c.wait()
	}
	if c.dir == "" {
		// The plain buffer goes to the free list (still counted); the
		// exact-size copy is charged before it exists, which reclaims
		// free buffers first, so it always fits.
		c.stored -= l
		c.pushFreeBuf(h.buf)
		h.buf = nil
		if !c.reserve(n, &c.stored) {
			panic("cache: no room for a compressed piece after freeing its plain buffer")
		}
		c.unlock()
		exact := make([]byte, n)
		copy(exact, out)
		c.mu.Lock()
		h.buf = exact
	} else {
		c.unlock()
		err = writeCompressed(f, out)
		c.mu.Lock()
		if err != nil {
			return 0, true, fmt.Errorf("%v: writing compressed piece: %w", p, err)
		}
		c.release(l-n, &c.stored)
	}
	p.t.stored += n - l
	h.size = n
	h.compressed = true
	h.frames = frames
	return n, false, nil
}

func writeCompressed(f *os.File, out []byte) error {
	if _, err := f.WriteAt(out, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(out)))
}

// inflate decompresses h into h.plain, a decompressed copy charged as
// scratch. Lock held; it unlocks, with h.inflating set.
func (c *Cache) inflate(h *held) error {
	p := h.p
	l := p.length
	load := int64(0)
	if c.dir != "" {
		load = h.size
	}
	h.inflating = true
	h.refs++
	// The load first: a failed takeBuf leaves no buffer behind.
	ok := c.reserve(load, &c.scratch)
	var buf []byte
	if ok {
		if buf, ok = c.takeBuf(l, &c.scratch); !ok {
			c.release(load, &c.scratch)
		}
	}
	if !ok {
		h.inflating = false
		c.unref(h)
		return c.fullErr(p, l+load)
	}
	src := h.buf
	var f *os.File
	var err error
	if c.dir != "" {
		f, err = c.fileOf(h)
	}
	c.unlock()
	if buf == nil {
		buf = make([]byte, l)
	}
	if err == nil && f != nil {
		src = make([]byte, load)
		if err = readFull(f, src); err != nil {
			err = fmt.Errorf("%v: reading compressed piece: %w", p, err)
		}
	}
	if err == nil {
		var out []byte
		out, err = c.dec.DecodeAll(src, buf[:0])
		if err != nil {
			err = fmt.Errorf("%v: decompressing: %w", p, err)
		} else if int64(len(out)) != l {
			err = fmt.Errorf("%v: decompressed %d bytes, want %d", p, len(out), l)
		}
	}
	c.mu.Lock()
	if load > 0 {
		c.release(load, &c.scratch)
	}
	h.inflating = false
	c.unref(h)
	if err != nil {
		c.releaseBuf(buf, l, &c.scratch)
		return err
	}
	h.plain = buf[:l]
	c.inflatedBytes += l
	c.inflated.pushFront(h)
	c.trimInflated(h)
	return nil
}

// releaseBuf returns a buffer charged by takeBuf: to the free list if it
// was handed out, else only the charge.
func (c *Cache) releaseBuf(buf []byte, l int64, acct *int64) {
	if buf == nil {
		c.release(l, acct)
		return
	}
	*acct -= l
	c.pushFreeBuf(buf)
}

// decompressInPlace turns an idle compressed piece back into plain data so
// that it can be overwritten. It first makes the decompressed copy and
// returns; the caller re-checks and calls again. Lock held; it unlocks.
func (c *Cache) decompressInPlace(h *held) error {
	if h.plain == nil {
		return c.inflate(h)
	}
	p := h.p
	l := p.length
	if c.dir == "" {
		// The copy moves from scratch to stored; the frame is freed.
		plain := h.plain
		c.inflated.remove(h)
		c.inflatedBytes -= l
		h.plain = nil
		c.scratch -= l
		c.stored += l
		c.release(h.size, &c.stored)
		p.t.stored += l - h.size
		h.buf = plain
		h.size = l
		h.compressed, h.frames = false, nil
		return nil
	}
	// The file grows from the frame to l: charge the difference first.
	h.excl = true
	grow := l - h.size
	if !c.reserve(grow, &c.stored) {
		h.excl = false
		c.wake()
		return c.fullErr(p, grow)
	}
	f, err := c.fileOf(h)
	plain := h.plain
	c.unlock()
	if err == nil {
		_, err = f.WriteAt(plain, 0)
	}
	c.mu.Lock()
	h.excl = false
	c.wake()
	c.releasePlain(h, keepAny)
	p.t.stored += grow
	h.size = l
	h.compressed, h.frames = false, nil
	if err != nil {
		c.evict(h, keepAny)
		return fmt.Errorf("%v: rewriting decompressed piece: %w", p, err)
	}
	return nil
}

// ZstdFrame appends to dst the zstd frame holding length bytes of piece i
// at begin, when the piece is held compressed and that is one of its
// frames (begin a multiple of FrameBlock, length FrameBlock or the rest of
// the piece). It implements wire.Frames: a block sent to a peer that
// takes zstd goes as the frame, not compressed again.
func (c *Cache) ZstdFrame(ih metainfo.Hash, i, begin, length int, dst []byte) ([]byte, bool) {
	c.mu.Lock()
	p := c.lookup(ih, i)
	if p == nil || p.h == nil || p.lost || !p.h.compressed || p.h.excl || begin < 0 || begin%FrameBlock != 0 ||
		length != min(FrameBlock, int(p.length)-begin) || length <= 0 {
		c.unlock()
		return dst, false
	}
	h := p.h
	b := begin / FrameBlock
	if b+1 >= len(h.frames) {
		c.unlock()
		return dst, false
	}
	lo, hi := int64(h.frames[b]), int64(h.frames[b+1])
	if c.dir == "" {
		dst = append(dst, h.buf[lo:hi]...)
		c.unlock()
		return dst, true
	}
	h.refs++ // not evicted or rewritten meanwhile
	f, err := c.fileOf(h)
	c.unlock()
	n := len(dst)
	if err == nil {
		dst = append(dst, make([]byte, hi-lo)...)
		var k int
		k, err = f.ReadAt(dst[n:], lo)
		if k == int(hi-lo) {
			err = nil
		}
	}
	c.mu.Lock()
	c.unref(h)
	c.unlock()
	if err != nil {
		return dst[:n], false
	}
	return dst, true
}
