package wire

import (
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// goSource is up to n bytes of the Go source tree's files concatenated
// (the text-like data), or textData when it is not there.
func goSource(tb testing.TB, n int) []byte {
	var b []byte
	filepath.WalkDir(filepath.Join(runtime.GOROOT(), "src"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || len(b) >= n {
			return fs.SkipAll
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			if data, err := os.ReadFile(path); err == nil {
				b = append(b, data...)
			}
		}
		return nil
	})
	if len(b) < n {
		tb.Logf("Go source tree not found: text-like data instead")
		return textData(1, n)
	}
	return b[:n]
}

// pieceWrites is data as PIECE messages in writes of whole messages of at
// least 32 KiB, as anacrolix writes them.
func pieceWrites(data []byte) (writes [][]byte, total int) {
	var buf []byte
	for off := 0; off < len(data); off += 16 << 10 {
		buf = append(buf, pieceMsg(uint32(off>>18), uint32(off&(256<<10-1)), data[off:min(off+16<<10, len(data))])...)
		if len(buf) >= 32<<10 || off+16<<10 >= len(data) {
			writes = append(writes, buf)
			total += len(buf)
			buf = nil
		}
	}
	return writes, total
}

// compressedStream is what our encoder sends for writes.
func compressedStream(tb testing.TB, a algo, writes [][]byte) []byte {
	fc := &fakeConn{}
	zw, err := newZWriter(New(&fakePieces{n: 64}).Wrap(fc, true), a)
	if err != nil {
		tb.Fatal(err)
	}
	for _, w := range writes {
		if err := zw.write(net.Buffers{w}); err != nil {
			tb.Fatal(err)
		}
	}
	return fc.written()
}

// BenchmarkDecompress is one connection's reader on one core: 16 MiB of
// Go source as PIECE messages, decoded and parsed by the layer, as MB/s
// of decoded stream. BEP 56 asks for at least 500 MB/s.
func BenchmarkDecompress(b *testing.B) {
	writes, plain := pieceWrites(goSource(b, 16<<20))
	for _, a := range []algo{algoZstd, algoLZ4} {
		b.Run(a.String(), func(b *testing.B) {
			wire := compressedStream(b, a, writes)
			buf := make([]byte, 1<<17)
			b.SetBytes(int64(plain))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c, _ := hostileConn(b, a.String(), wire, 0)
				for {
					if _, err := c.Read(buf); err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
				}
			}
			b.ReportMetric(float64(len(wire))/float64(plain), "wire/plain")
		})
	}
}

// BenchmarkCompress is our encoder on one core: Go source, random data
// (sampled, sent raw) and zeros, as MB/s of the plain stream.
func BenchmarkCompress(b *testing.B) {
	src := goSource(b, 16<<20)
	for _, tc := range []struct {
		name string
		a    algo
		data []byte
	}{{"zstd/text", algoZstd, src}, {"zstd/random", algoZstd, randomData(1, 16<<20)}, {"lz4/text", algoLZ4, src}, {"lz4/random", algoLZ4, randomData(1, 16<<20)}} {
		b.Run(tc.name, func(b *testing.B) {
			writes, plain := pieceWrites(tc.data)
			b.SetBytes(int64(plain))
			b.ReportAllocs()
			b.ResetTimer()
			var wire int
			for range b.N {
				fc := &discardConn{}
				zw, _ := newZWriter(New(&fakePieces{n: 64}).Wrap(fc, true), tc.a)
				for _, w := range writes {
					zw.write(net.Buffers{w})
				}
				wire = fc.n
			}
			b.ReportMetric(float64(wire)/float64(plain), "wire/plain")
		})
	}
}

// discardConn counts what is written to it.
type discardConn struct {
	fakeConn
	n int
}

func (d *discardConn) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

// BenchmarkConnMemory measures what a connection holds: 32 connection
// pairs on loopback each carry 256 KiB of Go source and 256 KiB of random
// data both ways, then the live heap is divided by the connections (the
// test's own 128 KiB library read buffers taken out). plain is the wire
// layer without compression; the difference is compression's cost. Goal:
// at most 1 MiB per connection.
func BenchmarkConnMemory(b *testing.B) {
	const pairs = 32
	text := goSource(b, 256<<10)
	rnd := randomData(3, 256<<10)
	for _, mode := range []struct {
		name string
		opts CompressOptions
	}{{"plain", CompressOptions{}}, {"zstd", CompressOptions{Zstd: 1}}, {"lz4", CompressOptions{LZ4: 1}}} {
		b.Run(mode.name, func(b *testing.B) {
			var perConn float64
			for range b.N {
				before := liveHeap()
				var sides []*libSide
				for range pairs {
					la, lb := New(&fakePieces{n: 64}), New(&fakePieces{n: 64})
					la.Compress(mode.opts)
					lb.Compress(mode.opts)
					x, y := compressedPair(b, la, lb)
					if mode.opts.on() {
						waitCompressed(b, x.c)
						waitCompressed(b, y.c)
					}
					for _, d := range [][]byte{text, rnd} {
						sendPieces(b, x, y, d)
						sendPieces(b, y, x, d)
					}
					sides = append(sides, x, y)
				}
				for _, s := range sides { // what the test's libraries read
					s.mu.Lock()
					s.got = nil
					s.mu.Unlock()
				}
				after := liveHeap()
				perConn = float64(after-before-int64(len(sides))*(1<<17)) / float64(len(sides))
				for _, s := range sides {
					s.c.Close()
					<-s.done
				}
				runtime.KeepAlive(sides)
			}
			b.ReportMetric(perConn, "B/conn")
		})
	}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
