package publish_test

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/btslave/btslave/publish"
)

// benchFile is a file of random bytes shared by the benchmarks; it stays in
// the page cache, so these measure hashing, not the disk (bench/publish.sh
// measures both on 2 GiB).
func benchFile(b *testing.B, mib int) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "data.bin")
	dir := writeTree(b, 9, map[string]int{"x": 1 << 20})
	block, err := os.ReadFile(filepath.Join(dir, "x"))
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	for i := range mib {
		block[0] = byte(i)
		block[1] = byte(i >> 8)
		if _, err := f.Write(block); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkCreate is the hashing throughput of each version on a 256 MiB
// file from the page cache, 2 MiB pieces.
func BenchmarkCreate(b *testing.B) {
	const mib = 256
	p := benchFile(b, mib)
	for _, v := range versions {
		b.Run(v.String(), func(b *testing.B) {
			b.SetBytes(mib << 20)
			for b.Loop() {
				if _, err := publish.Create(context.Background(), p, publish.Options{Version: v, PieceLength: 2 << 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHashCeiling is what the CPU allows for a hybrid: SHA-1 and
// SHA-256 (16 KiB leaves) of memory, on every core, no I/O.
func BenchmarkHashCeiling(b *testing.B) {
	const piece = 2 << 20
	for _, name := range []string{"sha1", "sha256", "both"} {
		b.Run(name, func(b *testing.B) {
			p := runtime.GOMAXPROCS(0)
			bufs := make([][]byte, p)
			for i := range bufs {
				bufs[i] = make([]byte, piece)
			}
			b.SetBytes(int64(p) * piece)
			for b.Loop() {
				var wg sync.WaitGroup
				for i := range p {
					wg.Go(func() {
						buf := bufs[i]
						if name != "sha256" {
							sha1.Sum(buf)
						}
						if name != "sha1" {
							for o := 0; o < piece; o += publish.BlockSize {
								sha256.Sum256(buf[o : o+publish.BlockSize])
							}
						}
					})
				}
				wg.Wait()
			}
		})
	}
}
