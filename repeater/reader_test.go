package repeater

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/btslave/btslave/config"
)

// lazyEvicted counts the pieces anacrolix still takes for complete that
// the cache no longer holds (evictions not told yet).
func lazyEvicted(sw *Swarm) int {
	n := 0
	for i := range sw.t.NumPieces() {
		if sw.t.Piece(i).State().Complete && !sw.r.cache.Has(sw.ih, i) {
			n++
		}
	}
	return n
}

// Ensure evictions under a streaming reader are told to anacrolix lazily
// (reader.go), and that this loses nothing: a sequential read of a torrent
// four times the cache has the seed's bytes; afterwards anacrolix still
// takes some evicted pieces for complete but never the whole torrent; a
// claim on an evicted piece makes it fetched again; and once the reader
// goes, every eviction is told.
func TestReaderEvictionsToldLazily(t *testing.T) {
	seeder, mi, data := seeding(t, 8<<20, false)
	cfg := config.Default()
	cfg.Cache.Size, cfg.Repeater.SwarmCache = 2<<20, 2<<20
	r, err := New(Options{Peer: testPeer(t, "127.0.0.1"), Cache: cfg.Cache, Repeater: cfg.Repeater, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sw, err := r.Join(torrent.TorrentSpecFromMetaInfo(mi))
	if err != nil {
		t.Fatal(err)
	}
	sw.SetPartialSeed(false)
	sw.AddPeers([]torrent.PeerInfo{{Addr: seeder.listener.Addr(), Trusted: true}})
	const pieceLen, ra = 256 << 10, 512 << 10
	rd := sw.t.NewReader()
	defer rd.Close()
	rd.SetReadahead(ra)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := new(int)
	read := func(off int64, n int) []byte {
		t.Helper()
		sw.Claim(key, int(off/pieceLen), int(min(off+int64(n)+ra, int64(len(data)))-1)/pieceLen+1)
		if _, err := rd.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(readerCtx{rd, ctx}, b); err != nil {
			t.Fatalf("read %d at %d: %v", n, off, err)
		}
		return b
	}
	for off := int64(0); off < int64(len(data)); off += 64 << 10 {
		if got := read(off, 64<<10); !bytes.Equal(got, data[off:off+64<<10]) {
			t.Fatalf("bytes at %d differ", off)
		}
	}
	if e := r.Cache().Stats().Evictions; e == 0 {
		t.Fatal("no eviction: the test did not exercise the cache bound")
	}
	if n := lazyEvicted(sw); n == 0 {
		t.Error("every eviction was told to anacrolix while the reader streamed")
	}
	if sw.t.Complete().Bool() {
		t.Error("anacrolix takes the torrent for complete with pieces evicted (no sentinel)")
	}
	// Back to the start: evicted, so the claim must tell anacrolix.
	if r.Cache().Has(sw.ih, 0) {
		t.Fatal("piece 0 still held: the test did not read back an evicted piece")
	}
	if got := read(0, 64<<10); !bytes.Equal(got, data[:64<<10]) {
		t.Fatal("bytes at 0 differ after eviction")
	}
	sw.Unclaim(key)
	for deadline := time.Now().Add(10 * time.Second); lazyEvicted(sw) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d evictions still not told to anacrolix after the reader left", lazyEvicted(sw))
		}
	}
}

// readerCtx reads rd under ctx.
type readerCtx struct {
	rd  torrent.Reader
	ctx context.Context
}

func (r readerCtx) Read(b []byte) (int, error) { return r.rd.ReadContext(r.ctx, b) }
