package cache_test

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/cache"
)

// loopbackConfig is a client config for loopback tests (DESIGN.md §2).
func loopbackConfig(t *testing.T) *torrent.ClientConfig {
	cfg := torrent.NewDefaultClientConfig()
	cfg.ListenHost = torrent.LoopbackListenHost
	cfg.ListenPort = 0
	cfg.NoDHT = true
	cfg.DisablePEX = true
	cfg.DisableTrackers = true
	cfg.NoDefaultPortForwarding = true
	cfg.DisableIPv6 = true
	cfg.DisableUTP = true
	cfg.Seed = true
	// anacrolix v1.61's peer writer can miss a wake-up (tickleWriter
	// broadcasts while the writer is between filling its buffer and
	// waiting); a pending request update then waits for the keep-alive
	// timer, a minute by default. Seen as downloads stalling for good
	// under -race. A short timeout bounds the stall.
	cfg.KeepAliveTimeout = 250 * time.Millisecond
	cfg.DataDir = t.TempDir()
	cfg.Slogger = testLogger()
	return cfg
}

// testLogger logs warnings, or everything with CACHE_CLIENT_DEBUG set.
func testLogger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("CACHE_CLIENT_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// Ensure that a real anacrolix client downloads a torrent four times the
// cache budget through the cache, piece by piece, from a real seeder:
// every piece arrives intact, the cache evicts older pieces to make room,
// and the client learns of evictions through OnEvict.
func TestClientDownloadThroughCache(t *testing.T) {
	const (
		pieceLen = 256 * kib
		total    = 64 * mib
		budget   = 16 * mib
		window   = 4 // pieces asked for at once
	)
	type variant struct {
		name               string
		file, compress, cp bool
	}
	variants := []variant{{name: "memory+capacity", cp: true}}
	for _, b := range backends {
		variants = append(variants, variant{b.name, b.file, b.compress, false})
	}
	for _, b := range variants {
		t.Run(b.name, func(t *testing.T) {
			if testing.Short() && b.name != "memory" {
				t.Skip("short")
			}
			start := time.Now()
			// The seeder: plain anacrolix file storage over a 64 MiB file.
			seedDir := t.TempDir()
			src := randData(42, total)
			if b.compress {
				// Compressible to about 60%, so that it still does not
				// fit: half of every 8 KiB is text.
				for off := 0; off < total; off += 8 * kib {
					copy(src[off:off+4*kib], textData(uint64(off), 4*kib))
				}
			}
			if err := os.WriteFile(filepath.Join(seedDir, "data.bin"), src, 0o600); err != nil {
				t.Fatal(err)
			}
			info := metainfo.Info{PieceLength: pieceLen}
			if err := info.BuildFromFilePath(filepath.Join(seedDir, "data.bin")); err != nil {
				t.Fatal(err)
			}
			infoBytes, err := bencode.Marshal(info)
			if err != nil {
				t.Fatal(err)
			}
			mi := &metainfo.MetaInfo{InfoBytes: infoBytes}
			ih := mi.HashInfoBytes()

			scfg := loopbackConfig(t)
			fileStorage := storage.NewFileOpts(storage.NewFileClientOpts{
				ClientBaseDir:   seedDir,
				PieceCompletion: storage.NewMapPieceCompletion(),
				UsePartFiles:    g.Some(false),
			})
			defer fileStorage.Close()
			scfg.DefaultStorage = fileStorage
			seeder, err := torrent.NewClient(scfg)
			if err != nil {
				t.Fatal(err)
			}
			defer seeder.Close()
			st, err := seeder.AddTorrent(mi)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-st.Complete().On():
			case <-time.After(20 * time.Second):
				t.Fatal("seeder did not verify its data")
			}

			// The leecher: the cache.
			var lt atomic.Pointer[torrent.Torrent]
			var evictions atomic.Int64
			o := cache.Options{Budget: budget, Compress: b.compress, Capacity: b.cp}
			o.Logger = testLogger()
			if b.file {
				o.Dir = t.TempDir()
			}
			o.OnEvict = func(ih metainfo.Hash, piece int) {
				// The safe order: cancel, then resync completion.
				o.Logger.Debug("OnEvict", "piece", piece)
				evictions.Add(1)
				if tt := lt.Load(); tt != nil {
					tt.Piece(piece).SetPriority(torrent.PiecePriorityNone)
					tt.Piece(piece).UpdateCompletion()
				}
			}
			c := newCache(t, o)
			lcfg := loopbackConfig(t)
			leecher, err := torrent.NewClient(lcfg)
			if err != nil {
				t.Fatal(err)
			}
			defer leecher.Close()
			tt, _ := leecher.AddTorrentOpt(torrent.AddTorrentOpts{InfoHash: ih, Storage: c, InfoBytes: infoBytes})
			lt.Store(tt)
			var writeErrs atomic.Int64
			tt.SetOnWriteChunkError(func(err error) {
				if writeErrs.Add(1) <= 3 {
					t.Logf("write chunk error: %v", err)
				}
			})
			<-tt.GotInfo()
			tt.AddPeers([]torrent.PeerInfo{{Addr: seeder.ListenAddrs()[0].(*net.TCPAddr), Trusted: true}})

			// A second handle on the cache to check what it holds.
			check, err := c.OpenTorrent(t.Context(), tt.Info(), ih)
			if err != nil {
				t.Fatal(err)
			}
			defer check.Close()
			sub := tt.SubscribePieceStateChanges()
			defer sub.Close()
			n := tt.NumPieces()
			buf := make([]byte, pieceLen)
			next := 0
			for i := range n {
				for ; next < n && next < i+window; next++ {
					tt.Piece(next).SetPriority(torrent.PiecePriorityNormal)
				}
				deadline := time.After(20 * time.Second)
				for !c.Has(ih, i) {
					select {
					case <-sub.Values:
					case <-time.After(50 * time.Millisecond):
					case <-deadline:
						var st bytes.Buffer
						leecher.WriteStatus(&st)
						t.Logf("leecher status:\n%s", st.String())
						st.Reset()
						seeder.WriteStatus(&st)
						t.Logf("seeder status:\n%s", st.String())
						t.Fatalf("piece %d did not arrive: %+v, %d peer conns, stats %+v", i, tt.PieceState(i), len(tt.PeerConns()), c.Stats())
					}
				}
				p := check.Piece(info.Piece(i))
				if _, err := p.ReadAt(buf, 0); err != nil {
					// Evicted already: the cache is smaller than the window
					// only if something is wrong.
					t.Fatalf("piece %d: %v", i, err)
				}
				if !bytes.Equal(buf, src[int64(i)*pieceLen:int64(i+1)*pieceLen]) {
					t.Fatalf("piece %d differs from the source", i)
				}
				if s := c.Stats(); s.Held > s.Budget {
					t.Fatalf("held %d > budget %d", s.Held, s.Budget)
				}
				if o.Capacity {
					// With a capacity, anacrolix counts wanted pieces,
					// complete or not, against it: unwant what arrived,
					// or it stops requesting once the budget is full.
					tt.Piece(i).SetPriority(torrent.PiecePriorityNone)
				}
			}
			s := c.Stats()
			t.Logf("%s: %v, %d write errors, %d OnEvict, stats %+v", b.name, time.Since(start).Round(time.Millisecond),
				writeErrs.Load(), evictions.Load(), s)
			if s.Evictions == 0 || s.Held > s.Budget || (!b.compress && s.Pieces > budget/pieceLen) {
				t.Errorf("stats %+v", s)
			}
			// The client learns of evictions: it no longer claims the
			// first piece (evicted long ago). It marks the last piece
			// complete after the cache does.
			deadline := time.Now().Add(5 * time.Second)
			for (tt.PieceState(0).Complete || !tt.PieceState(n-1).Complete) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if ps := tt.PieceState(0); ps.Complete || ps.Priority != torrent.PiecePriorityNone {
				t.Errorf("evicted piece 0 in the client: %+v", ps)
			}
			if !tt.PieceState(n - 1).Complete {
				t.Error("last piece not complete in the client")
			}
			if writeErrs.Load() != 0 {
				t.Errorf("%d chunk write errors", writeErrs.Load())
			}
		})
	}
}
