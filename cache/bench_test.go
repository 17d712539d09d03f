package cache_test

import (
	"crypto/sha1"
	"io"
	"testing"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/cache"
)

// Benchmarks write and read 16 KiB chunks of 256 KiB pieces, as anacrolix
// does, through the storage.ClientImpl interface, for each backend and for
// anacrolix's own file storage as the reference.

const (
	benchPiece  = 256 * kib
	benchChunk  = 16 * kib
	benchPieces = 512 // a 128 MiB torrent
	benchBudget = 32 * mib
)

type benchStore struct {
	name string
	text bool // compressible data
	open func(b *testing.B) storage.ClientImpl
}

func cacheStore(o cache.Options) func(b *testing.B) storage.ClientImpl {
	return func(b *testing.B) storage.ClientImpl {
		o := o
		o.Budget = benchBudget
		if o.Dir != "" {
			o.Dir = b.TempDir()
		}
		c, err := cache.New(o)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
}

var benchStores = []benchStore{
	{"memory", false, cacheStore(cache.Options{})},
	{"file", false, cacheStore(cache.Options{Dir: "x"})},
	{"memory+zstd/text", true, cacheStore(cache.Options{Compress: true})},
	{"memory+zstd/random", false, cacheStore(cache.Options{Compress: true})},
	{"file+zstd/text", true, cacheStore(cache.Options{Dir: "x", Compress: true})},
	{"anacrolix-file", false, func(b *testing.B) storage.ClientImpl {
		s := storage.NewFileOpts(storage.NewFileClientOpts{
			ClientBaseDir:   b.TempDir(),
			PieceCompletion: storage.NewMapPieceCompletion(),
			UsePartFiles:    g.Some(false),
		})
		b.Cleanup(func() { s.Close() })
		return s
	}},
}

func benchTorrent(b *testing.B, ci storage.ClientImpl) (*metainfo.Info, storage.TorrentImpl) {
	info := newInfo("bench", benchPiece, benchPieces*benchPiece)
	ti, err := ci.OpenTorrent(b.Context(), info, metainfo.Hash{0xbe})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ti.Close() })
	return info, ti
}

func benchData(text bool) []byte {
	if text {
		return textData(1, benchPiece)
	}
	return randData(1, benchPiece)
}

// BenchmarkWriteAt writes pieces chunk by chunk and marks each complete
// (which is where compression happens); the cache evicts once full.
func BenchmarkWriteAt(b *testing.B) {
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			info, ti := benchTorrent(b, bs.open(b))
			data := benchData(bs.text)
			b.SetBytes(benchChunk)
			b.ReportAllocs()
			b.ResetTimer()
			var p storage.PieceImpl
			for i := 0; b.Loop(); i++ {
				k := i % (benchPiece / benchChunk)
				if k == 0 {
					p = ti.Piece(info.Piece(i / (benchPiece / benchChunk) % benchPieces))
				}
				off := k * benchChunk
				if _, err := p.WriteAt(data[off:off+benchChunk], int64(off)); err != nil {
					b.Fatal(err)
				}
				if k == benchPiece/benchChunk-1 {
					if err := p.MarkComplete(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkReadAt reads 64 held pieces (16 MiB) chunk by chunk, in order,
// as a peer downloading them would.
func BenchmarkReadAt(b *testing.B) {
	const held = 64
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			info, ti := benchTorrent(b, bs.open(b))
			data := benchData(bs.text)
			for i := range held {
				p := ti.Piece(info.Piece(i))
				if err := write(p, data); err != nil {
					b.Fatal(err)
				}
				if err := p.MarkComplete(); err != nil {
					b.Fatal(err)
				}
			}
			buf := make([]byte, benchChunk)
			b.SetBytes(benchChunk)
			b.ReportAllocs()
			b.ResetTimer()
			var p storage.PieceImpl
			for i := 0; b.Loop(); i++ {
				k := i % (benchPiece / benchChunk)
				if k == 0 {
					p = ti.Piece(info.Piece(i / (benchPiece / benchChunk) % held))
				}
				if _, err := p.ReadAt(buf, int64(k*benchChunk)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// readerOnly hides a PieceImpl's WriteTo, to measure the hash path without it.
type readerOnly struct{ storage.PieceImpl }

// BenchmarkHash hashes a held piece the way anacrolix does
// (storage.Piece.WriteTo into SHA-1), with and without the cache's
// io.WriterTo.
func BenchmarkHash(b *testing.B) {
	for _, bs := range benchStores {
		for _, writerTo := range []bool{true, false} {
			name := bs.name + map[bool]string{true: "/WriteTo", false: "/ReadAt"}[writerTo]
			b.Run(name, func(b *testing.B) {
				info, ti := benchTorrent(b, bs.open(b))
				p := ti.Piece(info.Piece(0))
				if err := write(p, benchData(bs.text)); err != nil {
					b.Fatal(err)
				}
				p.MarkComplete()
				if !writerTo {
					// anacrolix's file storage sets only Piece.
					inner := ti.Piece
					ti.PieceWithHash = func(p metainfo.Piece, _ g.Option[[]byte]) storage.PieceImpl {
						return readerOnly{inner(p)}
					}
				}
				sp := (&storage.Torrent{TorrentImpl: ti}).Piece(info.Piece(0))
				h := sha1.New()
				b.SetBytes(benchPiece)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					h.Reset()
					if _, err := sp.WriteTo(h); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

var _ io.WriterTo = storage.Piece{}
