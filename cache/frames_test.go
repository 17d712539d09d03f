package cache_test

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/btslave/btslave/cache"
)

// Ensure that a compressed piece is one zstd frame per 16 KiB block and
// that ZstdFrame hands out exactly the frame of a block (the last one
// shorter), for nothing else: misaligned or wrong-length blocks, pieces
// held plain (random data) or not held.
func TestZstdFrame(t *testing.T) {
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	for _, file := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "file"}[file], func(t *testing.T) {
			o := cache.Options{Budget: mib, Compress: true}
			if file {
				o.Dir = t.TempDir()
			}
			c := newCache(t, o)
			const pieceLen = 64 * kib
			tr := openTorrent(t, c, newInfo("f", pieceLen, 2*pieceLen+40*kib))
			text := map[int][]byte{0: textData(1, pieceLen), 2: textData(2, 40*kib)}
			tr.fill(t, 0, text[0])
			tr.fill(t, 1, randData(3, pieceLen))
			tr.fill(t, 2, text[2])
			for _, i := range []int{0, 2} {
				for begin := 0; begin < len(text[i]); begin += cache.FrameBlock {
					length := min(cache.FrameBlock, len(text[i])-begin)
					frame, ok := c.ZstdFrame(tr.ih, i, begin, length, []byte("x"))
					if !ok || frame[0] != 'x' {
						t.Fatalf("piece %d block at %d: no frame", i, begin)
					}
					got, err := dec.DecodeAll(frame[1:], nil)
					if err != nil || !bytes.Equal(got, text[i][begin:begin+length]) {
						t.Fatalf("piece %d block at %d: frame decodes to %d bytes (%v)", i, begin, len(got), err)
					}
					if len(frame) > length/2 {
						t.Errorf("piece %d block at %d: frame of %d bytes", i, begin, len(frame))
					}
				}
			}
			for _, tc := range []struct{ piece, begin, length int }{
				{0, 8 * kib, cache.FrameBlock}, {0, 0, 8 * kib}, {0, 48 * kib, 32 * kib}, {1, 0, cache.FrameBlock}, {3, 0, cache.FrameBlock}, {2, 32 * kib, cache.FrameBlock},
			} {
				if _, ok := c.ZstdFrame(tr.ih, tc.piece, tc.begin, tc.length, nil); ok {
					t.Errorf("frame for %+v", tc)
				}
			}
		})
	}
}
