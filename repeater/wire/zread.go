package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The receiver's side of BEP 56. Compressed bytes from the network collect
// in a buffer of one block and a little more; they are decoded only once a
// whole block is there, so that the decoder never waits for the network
// (the reader must keep waking up for its timers) and a peer's stream
// costs at most that buffer, the decoder's window (maxWindow) and one
// block of output. Decoding is pulled by the library's reads: nothing is
// decoded ahead. Every byte decoded is weighed against the compressed
// bytes read: past maxExpansion × those + expansionSlack + one block the
// connection is closed (ErrCompressionBomb).

// zInBuf is the compressed input buffer: the largest block (header,
// maxWindow bytes, checksum) behind a frame header, with room to spare.
const zInBuf = maxWindow + 1<<10

// errNoInput is what the zstd decoder's source returns when the decoder
// reads past the whole blocks the gate counted: only a compressed block
// that decodes to nothing gets it there (docs/bep56.md forbids those).
var errNoInput = errors.New("compressed block with no output")

// zreader decodes the peer's direction of one connection after its
// marker. It runs on the reader goroutine.
type zreader struct {
	c    *Conn
	algo algo

	in       []byte // compressed input: in[pos:end] not yet consumed
	pos, end int
	rerr     error // a network error, returned once what is whole is decoded
	derr     error // a decoding error that came with the last bytes decoded

	out  []byte // decoded bytes not yet handed on (a slice of obuf or in)
	obuf []byte

	plain, wire int64

	// zstd: the decoder reads from src (in[pos:end]); g says how far the
	// input holds whole blocks with output (outEnd, an offset in in).
	dec    *zstd.Decoder
	g      zgate
	parsed int // offset in in up to which g has parsed
	outEnd int

	// lz4
	l lz4state
}

func newZReader(c *Conn, a algo, rest []byte) (*zreader, error) {
	// Normally one buffer of zInBuf; what came with the marker in one
	// read may be more, until it is consumed (compact).
	z := &zreader{c: c, algo: a, in: make([]byte, max(zInBuf, len(rest)))}
	z.end = copy(z.in, rest)
	z.wire = int64(len(rest))
	c.zs.inWire.Add(z.wire)
	if a == algoZstd {
		dec, err := zstd.NewReader((*zsrc)(z),
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxWindow),
			zstd.WithDecoderMaxMemory(maxWindow),
		)
		if err != nil {
			return nil, fmt.Errorf("wire: zstd decoder: %w", err)
		}
		z.dec = dec
	}
	if err := z.parse(); err != nil {
		return nil, err
	}
	return z, nil
}

// close frees the decoder.
func (z *zreader) close() {
	if z.dec != nil {
		z.dec.Close()
	}
}

// read fills b with decoded bytes: from what is buffered when a whole
// block is there, else after reading the network (waking up by wake, as
// Conn.netRead does). It returns (0, nil) on such a wake-up.
func (z *zreader) read(b []byte, wake time.Time) (int, error) {
	n, err := z.readZ(b, wake)
	if err != nil && (errors.Is(err, ErrCompressedStream) || errors.Is(err, ErrCompressionBomb)) {
		z.c.layer.stats.compressBad.Add(1)
	}
	return n, err
}

func (z *zreader) readZ(b []byte, wake time.Time) (int, error) {
	for {
		n, err := z.next(b)
		if n > 0 {
			z.plain += int64(n)
			z.c.zs.inPlain.Add(int64(n))
			z.c.layer.stats.savedDown.Add(int64(n))
			if z.plain > maxExpansion*z.wire+expansionSlack+maxWindow {
				return 0, fmt.Errorf("%w: %d bytes from %d", ErrCompressionBomb, z.plain, z.wire)
			}
			z.derr = err
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrCompressedStream, err)
		}
		if z.rerr != nil {
			return 0, z.rerr
		}
		if err := z.compact(); err != nil {
			return 0, err
		}
		if z.end == len(z.in) {
			return 0, fmt.Errorf("%w: no whole block in %d bytes", ErrCompressedStream, len(z.in))
		}
		m, err := z.c.netRead(z.in[z.end:], wake)
		z.end += m
		z.wire += int64(m)
		z.c.zs.inWire.Add(int64(m))
		z.c.layer.stats.savedDown.Add(-int64(m))
		if perr := z.parse(); perr != nil {
			return 0, perr
		}
		if err != nil {
			z.rerr = err // decode what is whole first
			continue
		}
		if m == 0 {
			return 0, nil // our own wake-up: the caller runs its timers
		}
	}
}

// compact moves the unconsumed input to the front of in (nothing decoded
// points into it: next hands out z.out first), back to a buffer of zInBuf
// once what came with the marker is consumed.
func (z *zreader) compact() error {
	if z.algo == algoZstd && z.parsed < z.pos {
		return fmt.Errorf("%w: %w", ErrCompressedStream, errNoInput) // the decoder ran ahead of the gate
	}
	if z.pos == 0 && len(z.in) <= zInBuf {
		return nil
	}
	dst := z.in
	if len(z.in) > zInBuf && z.end-z.pos <= zInBuf {
		dst = make([]byte, zInBuf)
	}
	k := copy(dst, z.in[z.pos:z.end])
	z.in = dst
	if z.algo == algoZstd {
		z.parsed -= z.pos
		z.outEnd -= z.pos
	}
	z.end, z.pos = k, 0
	return nil
}

// next hands out decoded bytes if some are ready without reading.
func (z *zreader) next(b []byte) (int, error) {
	if z.derr != nil {
		return 0, z.derr
	}
	if len(z.out) > 0 {
		n := copy(b, z.out)
		z.out = z.out[n:]
		return n, nil
	}
	if z.algo == algoLZ4 {
		return z.nextLZ4(b)
	}
	if z.pos >= z.outEnd {
		return 0, nil
	}
	// The decoder hands out one block per Read when b has room for it;
	// into a smaller b it decodes via obuf, so that nothing stays inside
	// it between calls.
	if len(b) > maxWindow {
		return z.dec.Read(b)
	}
	if z.obuf == nil {
		z.obuf = make([]byte, maxWindow+1)
	}
	n, err := z.dec.Read(z.obuf)
	z.out = z.obuf[:n]
	if n == 0 {
		return 0, err
	}
	k := copy(b, z.out)
	z.out = z.out[k:]
	return k, nil
}

// zsrc is the zstd decoder's source: the buffered input.
type zsrc zreader

func (s *zsrc) Read(p []byte) (int, error) {
	z := (*zreader)(s)
	if z.pos == z.end {
		return 0, errNoInput
	}
	n := copy(p, z.in[z.pos:z.end])
	z.pos += n
	return n, nil
}

// parse advances the gate over newly buffered input.
func (z *zreader) parse() error {
	if z.algo != algoZstd {
		return nil
	}
	for {
		k, out, err := z.g.step(z.in[z.parsed:z.end])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCompressedStream, err)
		}
		if k == 0 {
			return nil
		}
		z.parsed += k
		if out {
			z.outEnd = z.parsed
		}
	}
}

// zgate follows the zstd framing (RFC 8878) of the peer's stream: frame
// headers, block headers and sizes, checksums. It checks the profile's
// limits and tells where whole blocks with output end.
type zgate struct {
	inFrame  bool
	window   int
	checksum bool
}

// step consumes the next whole unit of b (a frame header, or a block with
// its checksum if it ends a frame that has one) and reports its length
// and whether decoding it yields output; 0 when b holds no whole unit.
func (g *zgate) step(b []byte) (n int, out bool, err error) {
	if !g.inFrame {
		if len(b) < 5 {
			return 0, false, nil
		}
		if m := binary.LittleEndian.Uint32(b); m != 0xfd2fb528 {
			return 0, false, fmt.Errorf("frame magic %#08x (only zstd frames, no skippable ones)", m)
		}
		fhd := b[4]
		single := fhd&0x20 != 0
		if fhd&0x08 != 0 {
			return 0, false, errors.New("reserved bit set in the frame header")
		}
		if fhd&0x03 != 0 {
			return 0, false, errors.New("frame needs a dictionary")
		}
		fcs := [4]int{0, 2, 4, 8}[fhd>>6]
		if single && fcs == 0 {
			fcs = 1
		}
		hl := 5 + fcs
		if !single {
			hl++
		}
		if len(b) < hl {
			return 0, false, nil
		}
		var window uint64
		if single {
			v := b[5 : 5+fcs]
			switch fcs {
			case 1:
				window = uint64(v[0])
			case 2:
				window = uint64(binary.LittleEndian.Uint16(v)) + 256
			case 4:
				window = uint64(binary.LittleEndian.Uint32(v))
			case 8:
				window = binary.LittleEndian.Uint64(v)
			}
			window = max(window, 1<<10)
		} else {
			wd := b[5]
			base := uint64(1) << (10 + wd>>3)
			window = base + base/8*uint64(wd&7)
		}
		if window > maxWindow {
			return 0, false, fmt.Errorf("window of %d bytes, more than %d", window, maxWindow)
		}
		g.inFrame, g.window, g.checksum = true, int(window), fhd&0x04 != 0
		return hl, false, nil
	}
	if len(b) < 3 {
		return 0, false, nil
	}
	h := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	last, typ, size := h&1 != 0, (h>>1)&3, h>>3
	maxBlock := min(g.window, 128<<10)
	body := size
	switch typ {
	case 1: // RLE: one byte, repeated size times
		body = 1
	case 3:
		return 0, false, errors.New("reserved block type")
	}
	if size > maxBlock {
		return 0, false, fmt.Errorf("block of %d bytes in a window of %d", size, g.window)
	}
	n = 3 + body
	if last && g.checksum {
		n += 4
	}
	if len(b) < n {
		return 0, false, nil
	}
	if last {
		g.inFrame = false
	}
	return n, typ == 2 || size > 0, nil
}

// lz4state follows the lz4 frame format of the peer's stream and decodes
// whole blocks.
type lz4state struct {
	inFrame            bool
	linked             bool
	blockSum, frameSum bool
	dict               []byte // linked blocks: the last maxWindow bytes decoded
}

// nextLZ4 decodes the next whole block into b (or out), skipping frame
// headers and end marks.
func (z *zreader) nextLZ4(b []byte) (int, error) {
	l := &z.l
	for {
		in := z.in[z.pos:z.end]
		if !l.inFrame {
			if len(in) < 7 {
				return 0, nil
			}
			if m := binary.LittleEndian.Uint32(in); m != 0x184d2204 {
				return 0, fmt.Errorf("lz4 frame magic %#08x (only lz4 frames, no skippable ones)", m)
			}
			flg, bd := in[4], in[5]
			if flg>>6 != 1 || flg&0x02 != 0 || bd&0x8f != 0 {
				return 0, fmt.Errorf("lz4 frame descriptor %#02x %#02x: bad version or reserved bits", flg, bd)
			}
			if flg&0x01 != 0 {
				return 0, errors.New("lz4 frame needs a dictionary")
			}
			if bd>>4 != 4 {
				return 0, fmt.Errorf("lz4 blocks of up to %d bytes, more than %d", 1<<(8+2*(bd>>4)), maxWindow)
			}
			hl := 7
			if flg&0x08 != 0 {
				hl += 8 // content size, ignored
			}
			if len(in) < hl {
				return 0, nil
			}
			l.inFrame, l.linked = true, flg&0x20 == 0
			l.blockSum, l.frameSum = flg&0x10 != 0, flg&0x04 != 0
			z.pos += hl
			continue
		}
		if len(in) < 4 {
			return 0, nil
		}
		h := binary.LittleEndian.Uint32(in)
		if h == 0 { // end mark
			n := 4
			if l.frameSum {
				n += 4
			}
			if len(in) < n {
				return 0, nil
			}
			l.inFrame, l.dict = false, l.dict[:0]
			z.pos += n
			continue
		}
		size := int(h &^ (1 << 31))
		if size > maxWindow {
			return 0, fmt.Errorf("lz4 block of %d bytes, more than %d", size, maxWindow)
		}
		n := 4 + size
		if l.blockSum {
			n += 4
		}
		if len(in) < n {
			return 0, nil
		}
		data := in[4 : 4+size]
		z.pos += n
		var out []byte
		if h&(1<<31) != 0 {
			out = data // in does not move until it is handed on
		} else {
			if z.obuf == nil {
				z.obuf = make([]byte, maxWindow+1)
			}
			var k int
			var err error
			if l.linked && len(l.dict) > 0 {
				k, err = lz4.UncompressBlockWithDict(data, z.obuf[:maxWindow], l.dict)
			} else {
				k, err = lz4.UncompressBlock(data, z.obuf[:maxWindow])
			}
			if err != nil {
				return 0, fmt.Errorf("lz4 block: %w", err)
			}
			out = z.obuf[:k]
		}
		if l.linked {
			l.remember(out)
		}
		if len(out) == 0 {
			continue
		}
		k := copy(b, out)
		z.out = out[k:]
		return k, nil
	}
}

// remember keeps the last maxWindow bytes decoded, the dictionary of the
// next linked block.
func (l *lz4state) remember(out []byte) {
	if l.dict == nil {
		l.dict = make([]byte, 0, maxWindow)
	}
	if len(out) >= maxWindow {
		l.dict = append(l.dict[:0], out[len(out)-maxWindow:]...)
		return
	}
	if keep := maxWindow - len(out); len(l.dict) > keep {
		copy(l.dict, l.dict[len(l.dict)-keep:])
		l.dict = l.dict[:keep]
	}
	l.dict = append(l.dict, out...)
}

// footprint is what the reader holds besides the zstd decoder's own
// state (its window and block buffers: about 3 × maxWindow).
func (z *zreader) footprint() int {
	return cap(z.in) + cap(z.obuf) + cap(z.l.dict)
}
