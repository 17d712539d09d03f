package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// markerStream is what a peer that offers compression sends us up to and
// including its marker for algorithm name; our library's handshake gives
// lt_compress id 3 (libExt has ut_metadata 1 and ut_pex 2).
func markerStream(name string) []byte {
	peerExt := extMsg(map[string]any{"m": map[string]any{"ut_metadata": 1, compressMarker: 7}, "c": map[string]any{"zstd": 1, "lz4": 1}, "v": "btslave/peer"})
	return cat(handshake(true), peerExt, msgExtBytes(3, []byte(name)))
}

// hostileConn reads markerStream(name) followed by body through a
// compressing layer, in chunks of chunk bytes.
func hostileConn(t testing.TB, name string, body []byte, chunk int) (*Conn, *Layer) {
	l := New(&fakePieces{n: 64})
	l.Compress(compOpts)
	c := l.Wrap(&fakeConn{in: bytes.NewReader(cat(markerStream(name), body)), chunk: chunk}, false)
	if _, err := c.Write(cat(handshake(true), libExt("btslave/test"))); err != nil {
		t.Fatal(err)
	}
	return c, l
}

// zstdFrameHeader is a frame header with Window_Descriptor wd.
func zstdFrameHeader(wd byte) []byte { return []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, wd} }

// zstdBlock is a block header: last, type (0 raw, 1 RLE, 2 compressed), size.
func zstdBlock(last bool, typ, size int) []byte {
	h := size<<3 | typ<<1
	if last {
		h |= 1
	}
	return []byte{byte(h), byte(h >> 8), byte(h >> 16)}
}

// maxDecoded is what a compressed stream of n bytes may decode to before
// the receiver closes it.
func maxDecoded(n int) int { return maxExpansion*n + expansionSlack + maxWindow }

// Ensure that hostile compressed streams close that one connection with
// ErrCompressedStream or ErrCompressionBomb, and that what the library
// saw before stayed within the limits: bombs (zstd RLE and compressed
// zeros, lz4 zeros), windows and blocks over 64 KiB, skippable frames,
// dictionaries, reserved types, garbage after the marker, markers naming
// what we did not offer.
func TestDecompressHostile(t *testing.T) {
	zeros := make([]byte, maxWindow)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	var zbomb []byte
	for range 2000 {
		zbomb = enc.EncodeAll(zeros, zbomb)
	}
	rle := zstdFrameHeader(6 << 3)
	for range 20000 {
		rle = append(rle, append(zstdBlock(false, 1, maxWindow), 0)...)
	}
	var lc lz4.Compressor
	lzBlock := make([]byte, lz4.CompressBlockBound(maxWindow))
	k, _ := lc.CompressBlock(zeros, lzBlock)
	lbomb := append([]byte(nil), lz4Frame...)
	for range 2000 {
		lbomb = binary.LittleEndian.AppendUint32(lbomb, uint32(k))
		lbomb = append(lbomb, lzBlock[:k]...)
	}
	for _, tc := range []struct {
		name, algo string
		body       []byte
		want       error
	}{
		{"zstd RLE bomb", "zstd", rle, ErrCompressionBomb},
		{"zstd zeros bomb", "zstd", zbomb, ErrCompressionBomb},
		{"lz4 zeros bomb", "lz4", lbomb, ErrCompressionBomb},
		{"window 8 MiB", "zstd", cat(zstdFrameHeader(13<<3), zstdBlock(true, 0, 1), []byte{0}), ErrCompressedStream},
		{"single segment of 1 GiB", "zstd", cat([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xa0}, []byte{0, 0, 0, 0x40}, zstdBlock(true, 1, 8)), ErrCompressedStream},
		{"block over the window", "zstd", cat(zstdFrameHeader(0), zstdBlock(true, 0, 2000), make([]byte, 2000)), ErrCompressedStream},
		{"reserved block type", "zstd", cat(zstdFrameHeader(6<<3), zstdBlock(true, 3, 4), make([]byte, 4)), ErrCompressedStream},
		{"skippable frame", "zstd", cat([]byte{0x50, 0x2a, 0x4d, 0x18, 0xff, 0xff, 0xff, 0x7f}, make([]byte, 100)), ErrCompressedStream},
		{"dictionary", "zstd", cat([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x01, 6 << 3, 9}, zstdBlock(true, 0, 1), []byte{0}), ErrCompressedStream},
		{"garbage after the marker", "zstd", bytes.Repeat([]byte("garbage!"), 100), ErrCompressedStream},
		{"corrupt compressed block", "zstd", cat(zstdFrameHeader(6<<3), zstdBlock(true, 2, 40), bytes.Repeat([]byte{0xff}, 40)), ErrCompressedStream},
		{"lz4 4 MiB blocks", "lz4", cat([]byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0}, make([]byte, 20)), ErrCompressedStream},
		{"lz4 block over 64 KiB", "lz4", cat(lz4Frame, []byte{0x00, 0x00, 0x02, 0x80}), ErrCompressedStream},
		{"lz4 garbage block", "lz4", cat(lz4Frame, []byte{40, 0, 0, 0}, bytes.Repeat([]byte{0xf0}, 40)), ErrCompressedStream},
		{"lz4 skippable frame", "lz4", cat([]byte{0x50, 0x2a, 0x4d, 0x18, 8, 0, 0, 0}, make([]byte, 8)), ErrCompressedStream},
		{"marker names gzip", "gzip", nil, ErrCompressedStream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{0, 7} {
				c, l := hostileConn(t, tc.algo, tc.body, chunk)
				got, err := readAllBounded(t, c, 1<<17)
				if !errors.Is(err, tc.want) {
					t.Fatalf("chunk %d: err %v, want %v", chunk, err, tc.want)
				}
				if n := len(got) - len(markerStream("")); n > maxDecoded(len(tc.body)) {
					t.Errorf("the library read %d bytes from %d compressed", n, len(tc.body))
				}
				if s := l.Stats(); s.CompressRefused != 1 {
					t.Errorf("stats %+v", s)
				}
			}
		})
	}
}

// Ensure that a truncated stream ends the connection cleanly with what
// was whole: blocks cut short are never decoded.
func TestDecompressTruncated(t *testing.T) {
	text := textData(6, 40<<10)
	stream := cat(pieceMsg(0, 0, text[:16<<10]), pieceMsg(0, 16<<10, text[16<<10:32<<10]))
	enc, _ := zstdEncoder()
	frame1 := enc.EncodeAll(stream[:len(stream)/2], nil)
	frame2 := enc.EncodeAll(stream[len(stream)/2:], nil)
	c, _ := hostileConn(t, "zstd", nil, 0)
	prefix, err := readAll(c, 1<<17) // the handshakes, as the library sees them
	if err != nil {
		t.Fatal(err)
	}
	for cut := len(frame1) - 1; cut <= len(frame1)+len(frame2); cut += 97 {
		body := cat(frame1, frame2)[:cut]
		c, _ := hostileConn(t, "zstd", body, 0)
		got, err := readAllBounded(t, c, 1<<17)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		want := cat(prefix, stream[:len(stream)/2])
		switch {
		case cut < len(frame1):
			want = prefix
		case cut == len(frame1)+len(frame2):
			want = cat(prefix, stream)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("cut %d: library read %d bytes, want %d", cut, len(got), len(want))
		}
	}
}

// Ensure that a sender keeps highly compressible data (zeros) within the
// expansion limit, so that a btslave receiver never closes a btslave
// sender for it.
func TestZerosWithinExpansion(t *testing.T) {
	la, lb := New(&fakePieces{n: 64}), New(&fakePieces{n: 64})
	la.Compress(compOpts)
	lb.Compress(compOpts)
	a, b := compressedPair(t, la, lb)
	waitCompressed(t, a.c)
	plain, wire := sendPieces(t, a, b, make([]byte, 8<<20))
	if plain > maxExpansion*wire+expansionSlack {
		t.Errorf("%d bytes as %d on the wire: past the expansion limit", plain, wire)
	}
	if wire*32 > plain {
		t.Errorf("zeros: %d bytes as %d on the wire, want far less", plain, wire)
	}
	if s := lb.Stats(); s.CompressRefused != 0 {
		t.Errorf("receiver refused the stream: %+v", s)
	}
}

// FuzzDecompress feeds arbitrary bytes after a peer's marker (zstd or
// lz4). It must never panic, never hold more than its buffers, and never
// hand the library more than the expansion limit allows.
func FuzzDecompress(f *testing.F) {
	enc, _ := zstdEncoder()
	text := cat(pieceMsg(1, 0, textData(7, 16<<10)), msg(msgHave, 0, 0, 0, 1))
	f.Add(false, enc.EncodeAll(text, nil), uint8(0))
	f.Add(false, enc.EncodeAll(text, nil)[:100], uint8(3))
	f.Add(false, cat(zstdRawFrame, zstdBlock(false, 0, 5), msg(msgUnchoke), zstdEndFrame, enc.EncodeAll(text, nil)), uint8(1))
	f.Add(false, cat(zstdFrameHeader(6<<3), zstdBlock(false, 1, maxWindow), []byte{0}, zstdBlock(true, 1, maxWindow), []byte{0}), uint8(5))
	f.Add(false, cat(zstdFrameHeader(13<<3), zstdBlock(true, 0, 1), []byte{0}), uint8(0))
	f.Add(false, []byte("garbage after the marker"), uint8(2))
	var lc lz4.Compressor
	dst := make([]byte, lz4.CompressBlockBound(len(text)))
	k, _ := lc.CompressBlock(text, dst)
	f.Add(true, cat(lz4Frame, binary.LittleEndian.AppendUint32(nil, uint32(k)), dst[:k]), uint8(0))
	f.Add(true, cat(lz4Frame, binary.LittleEndian.AppendUint32(nil, 5|1<<31), msg(msgChoke), []byte{0, 0, 0, 0}, lz4Frame), uint8(4))
	f.Fuzz(func(t *testing.T, useLZ4 bool, body []byte, chunk uint8) {
		name := "zstd"
		if useLZ4 {
			name = "lz4"
		}
		c, _ := hostileConn(t, name, body, int(chunk%64))
		got, _ := readAllBounded(t, c, 1<<17)
		if n := len(got) - len(markerStream("")); n > maxDecoded(len(body)) {
			t.Fatalf("the library read %d bytes from %d compressed", n, len(body))
		}
	})
}

// opsStream turns fuzz bytes into a valid message stream: PIECEs of text,
// random bytes or zeros of up to 16 KiB, HAVEs and keep-alives.
func opsStream(ops []byte) []byte {
	var s []byte
	for i, op := range ops {
		size := int(op>>3) * 528
		switch op % 5 {
		case 0:
			s = append(s, pieceMsg(uint32(i), 0, textData(uint64(i), size))...)
		case 1:
			s = append(s, pieceMsg(uint32(i), 0, randomData(uint64(i), size))...)
		case 2:
			s = append(s, pieceMsg(uint32(i), 0, make([]byte, size))...)
		case 3:
			s = append(s, msg(msgHave, 0, 0, 0, op&63)...)
		case 4:
			s = append(s, 0, 0, 0, 0)
		}
	}
	return s
}

// FuzzCompressRoundTrip writes message streams through a compressing
// writer, cut into writes anywhere, and reads the wire bytes back through
// a decompressing layer: the library must read exactly what was written.
func FuzzCompressRoundTrip(f *testing.F) {
	f.Add(false, []byte{0, 1, 2, 3, 4, 0xf8, 0xf9, 0xfa, 3, 0x80}, uint16(40000))
	f.Add(true, []byte{0xf8, 0xf9, 0xf8, 4, 0xfa, 0xf8}, uint16(13))
	f.Add(false, []byte{0xf9, 0xf9, 0xf9, 0xf9, 0xf9, 0xf8, 0xf8}, uint16(65535))
	f.Fuzz(func(t *testing.T, useLZ4 bool, ops []byte, cut uint16) {
		if len(ops) > 256 {
			ops = ops[:256]
		}
		stream := opsStream(ops)
		a, name := algoZstd, "zstd"
		if useLZ4 {
			a, name = algoLZ4, "lz4"
		}
		fc := &fakeConn{in: bytes.NewReader(nil)}
		zw, err := newZWriter(New(&fakePieces{n: 64}).Wrap(fc, true), a)
		if err != nil {
			t.Fatal(err)
		}
		step := int(cut) + 1
		for i := 0; i < len(stream); i += step {
			if err := zw.write(net.Buffers{stream[i:min(i+step, len(stream))]}); err != nil {
				t.Fatal(err)
			}
		}
		wire := fc.written()
		if len(wire) > len(stream)+len(stream)/200+(len(stream)/step+1)*16+16 {
			t.Errorf("%d bytes grew to %d on the wire", len(stream), len(wire))
		}
		c, _ := hostileConn(t, name, nil, 0)
		prefix, _ := readAll(c, 1<<17)
		c, _ = hostileConn(t, name, wire, int(cut%29))
		got, err := readAll(c, 1<<17)
		if err != nil || !bytes.Equal(got, cat(prefix, stream)) {
			t.Fatalf("read back %d bytes (%v), want %d", len(got)-len(prefix), err, len(stream))
		}
	})
}

// Ensure interoperability with the reference framings, beyond our own
// encoder: a zstd sender that keeps one frame open and flushes it at each
// write (libzstd's ZSTD_e_flush, here klauspost's streaming encoder with
// a 64 KiB window and checksums) and an lz4 sender using the frame format
// with checksums (pierrec's Writer) are read exactly; and our lz4 stream
// reads with pierrec's Reader, which checks the header checksum.
func TestStandardFrames(t *testing.T) {
	writes, _ := pieceWrites(cat(textData(10, 256<<10), randomData(11, 64<<10), textData(12, 64<<10)))
	stream := cat(writes...)
	var zbody bytes.Buffer
	ze, err := zstd.NewWriter(&zbody, zstd.WithWindowSize(maxWindow), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(true))
	if err != nil {
		t.Fatal(err)
	}
	var lbody bytes.Buffer
	lw := lz4.NewWriter(&lbody)
	if err := lw.Apply(lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true), lz4.BlockChecksumOption(true)); err != nil {
		t.Fatal(err)
	}
	for _, w := range writes {
		ze.Write(w)
		ze.Flush()
		lw.Write(w)
		lw.Flush()
	}
	ze.Close()
	lw.Close()
	for _, tc := range []struct {
		name string
		body []byte
	}{{"zstd", zbody.Bytes()}, {"lz4", lbody.Bytes()}} {
		c, _ := hostileConn(t, tc.name, nil, 0)
		prefix, _ := readAll(c, 1<<17)
		c, _ = hostileConn(t, tc.name, tc.body, 1000)
		got, err := readAll(c, 1<<17)
		if err != nil || !bytes.Equal(got, cat(prefix, stream)) {
			t.Errorf("%s: read back %d bytes (%v), want %d", tc.name, len(got)-len(prefix), err, len(stream))
		}
	}
	ours := compressedStream(t, algoLZ4, writes)
	got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(ours)))
	if err != io.ErrUnexpectedEOF && err != nil || !bytes.Equal(got, stream) {
		t.Errorf("pierrec's lz4 Reader read %d bytes of our stream (%v), want %d", len(got), err, len(stream))
	}
}
