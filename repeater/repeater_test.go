package repeater

import (
	"bytes"
	"context"
	"expvar"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/config"
)

// seeding starts a client seeding a fresh torrent of size random bytes
// from plain files, and waits until its data verified.
func seeding(t testing.TB, size int64, bare bool) (*Client, *metainfo.MetaInfo, []byte) {
	t.Helper()
	dir := t.TempDir()
	mi, data := makeTorrent(t, dir, size, 256<<10)
	seeder, err := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(dir), BareTCP: bare})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seeder.Close)
	st, _ := seeder.AddTorrent(mi)
	st.VerifyData()
	select {
	case <-st.Complete().On():
	case <-time.After(60 * time.Second):
		t.Fatal("seed data did not verify")
	}
	return seeder, mi, data
}

func missingPieceRequests() int64 {
	v, _ := expvar.Get("requestsReceivedForMissingPieces").(*expvar.Int)
	if v == nil {
		return 0
	}
	return v.Value()
}

// Ensure the partial seed end to end in-process: a seed only the repeater
// knows, leechers that know only the repeater, a cache a quarter of the
// torrent. Every leecher gets correct data, the cache evicts, stays in its
// budget, and the library never sees a request for a piece we lack.
func TestRepeaterServesThroughSmallCache(t *testing.T) {
	seeder, mi, data := seeding(t, 16<<20, false)

	cfg := config.Default()
	cfg.Cache.Size = 4 << 20
	cfg.Repeater.SwarmCache = 4 << 20
	r, err := New(Options{Peer: testPeer(t, "127.0.0.1"), Cache: cfg.Cache, Repeater: cfg.Repeater, Tick: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	missingBefore := missingPieceRequests()
	sw, err := r.Join(torrent.TorrentSpecFromMetaInfo(mi))
	if err != nil {
		t.Fatal(err)
	}
	sw.AddPeers([]torrent.PeerInfo{{Addr: seeder.listener.Addr(), Trusted: true}})

	var leechers []*torrent.Torrent
	for i := 0; i < 2; i++ {
		dir := t.TempDir()
		lc, err := NewClient(ClientOptions{Peer: testPeer(t, "127.0.0.1"), Storage: storage.NewFile(dir)})
		if err != nil {
			t.Fatal(err)
		}
		defer lc.Close()
		lt, _ := lc.AddTorrent(mi)
		lt.DownloadAll()
		lt.AddPeers([]torrent.PeerInfo{{Addr: r.Client().listener.Addr(), Trusted: true}})
		leechers = append(leechers, lt)
		defer func(dir string) {
			got, err := os.ReadFile(filepath.Join(dir, "data.bin"))
			if t.Failed() || err != nil {
				return
			}
			if !bytes.Equal(got, data) {
				t.Errorf("leecher file differs")
			}
		}(dir)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	budget := int64(cfg.Cache.Size)
	for _, lt := range leechers {
		for !lt.Complete().Bool() {
			if h := r.Cache().Stats().Held; h > budget {
				t.Fatalf("cache holds %d > budget %d", h, budget)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("leecher stuck at %d/%d bytes; swarm %+v cache %+v wire %+v",
					lt.BytesCompleted(), lt.Length(), sw.Stats(), r.Cache().Stats(), r.Client().Wire.Stats())
			case <-time.After(50 * time.Millisecond):
			}
		}
		rd := lt.NewReader()
		got, err := io.ReadAll(rd)
		rd.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("leecher data differs (%v)", err)
		}
	}
	cs := r.Cache().Stats()
	tot := r.Client().Wire.Totals(sw.InfoHash())
	t.Logf("swarm %+v cache held %d evictions %d; up %d down %d ratio %.2f; wire %+v",
		sw.Stats(), cs.Held, cs.Evictions, tot.BytesUp, tot.BytesDown, float64(tot.BytesUp)/float64(max(tot.BytesDown, 1)), r.Client().Wire.Stats())
	if cs.Evictions == 0 {
		t.Error("no eviction happened: the test did not exercise the cache bound")
	}
	if d := missingPieceRequests() - missingBefore; d != 0 {
		t.Errorf("the library saw %d requests for missing pieces (each closes a connection)", d)
	}
	if tot.BytesUp < 2*int64(len(data)) {
		t.Errorf("repeater uploaded %d, want >= %d (two leechers)", tot.BytesUp, 2*len(data))
	}
}
