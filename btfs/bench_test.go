package btfs_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/btslave/btslave/btfs"
	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater"
)

// The two figures, run by `bench/run.sh btfs` (BTFS_BENCH=1): they
// start real programs and take minutes, so plain `go test` skips them.
// They print their figures beside the goals and fail only when something
// breaks (a wrong byte, a read error), never on a figure.

func benchMiB(t *testing.T, env string, def int64) int64 {
	t.Helper()
	if os.Getenv("BTFS_BENCH") == "" {
		t.Skip("benchmark: run with BTFS_BENCH=1 (bench/run.sh btfs)")
	}
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number of MiB", env, v)
	}
	return n
}

// TestBenchBTFSSequential: sequential read throughput of one file through
// the mount (64 MiB cache) against aria2c downloading the same torrent from
// the same Transmission seed (goal: mount ≥ 0.9 × aria2). BTFS_SIZE_MIB
// sets the size (default the 256).
func TestBenchBTFSSequential(t *testing.T) {
	size := benchMiB(t, "BTFS_SIZE_MIB", 256) << 20
	requireFUSE(t)
	lab.Require(t, "transmission-daemon")
	lab.Require(t, "aria2c")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	tracker := lab.StartOpentracker(t)
	torrentPath, dataPath, hash, mi := lab.MakeTorrent(t, lab.TorrentOptions{Size: size, PieceLength: 256 << 10, Announce: []string{tracker.HTTPAnnounce}})
	if err := tracker.Whitelist(hash); err != nil {
		t.Fatal(err)
	}
	seed := lab.StartTransmission(t, lab.TransmissionOptions{DownloadDir: filepath.Dir(dataPath)})
	seedID, err := seed.AddTorrent(torrentPath, filepath.Dir(dataPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seed.WaitComplete(ctx, seedID); err != nil {
		t.Fatal(err)
	}

	// The mount first, without the tracker (so aria2 later cannot find us
	// and must take everything from Transmission).
	budget := benchMiB(t, "BTFS_CACHE_MIB", 64) << 20
	r := newRepeater(t, budget)
	spec := torrent.TorrentSpecFromMetaInfo(mi)
	spec.Trackers = nil
	sw, err := r.JoinWith(spec, repeater.JoinOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	sw.SetPartialSeed(false)
	m := mount(t, sw, btfs.Options{MaxReadahead: budget / 4, ReadTimeout: 60 * time.Second})
	sw.AddPeers([]torrent.PeerInfo{{Addr: &net.TCPAddr{IP: seed.Addr.AsSlice(), Port: seed.PeerPort}, Trusted: true}})
	mounted := filepath.Join(m.Dir(), filepath.Base(dataPath))
	// Time from the open, as aria2's time runs from its start: both
	// include the wait for Transmission's first unchoke.
	start := time.Now()
	start0 := start
	stopTrace := traceMount(m, r, sw)
	watch := watchUnchoke(seed, seedID, "")
	got := sha256File(t, mounted)
	mountTime := time.Since(start)
	mountUnchoke, mountAddr := watch.stop()
	stopTrace()
	if want := sha256File(t, dataPath); got != want {
		t.Fatalf("sha256 %s through the mount, want %s", got, want)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	r.Leave(sw.InfoHash()) // aria2 alone at the seed

	if _, err := tracker.WaitScrape(ctx, hash, func(s lab.ScrapeResult) bool { return s.Complete >= 1 }); err != nil {
		t.Fatal(err)
	}
	// aria2c starts in the phase of Transmission's rechoke pulse (every
	// 10 s, re-armed after each) that the mount started in, so that both
	// wait alike for their first unchoke: the mount comes right after the
	// seed started the torrent and waited 10 s for it in the runs measured, and
	// aria2c, started whenever the mount was done, 4-6 s.
	// BTFS_ALIGN=0 starts aria2c at once, as before.
	if os.Getenv("BTFS_ALIGN") != "0" {
		const pulse = 10 * time.Second
		k := (time.Since(start0) + pulse - 1) / pulse
		time.Sleep(time.Until(start0.Add(k * pulse)))
	}
	start = time.Now()
	watch = watchUnchoke(seed, seedID, mountAddr)
	a := lab.StartAria2(t, lab.Aria2Options{Torrent: torrentPath})
	if err := a.WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	ariaTime := time.Since(start)
	ariaUnchoke, _ := watch.stop()
	lab.VerifyFile(t, filepath.Join(a.Dir, filepath.Base(dataPath)), dataPath)

	mib := float64(size) / (1 << 20)
	mr, ar := mib/mountTime.Seconds(), mib/ariaTime.Seconds()
	fmt.Printf("btfs-seq: %d MiB from Transmission: mount %.2f MiB/s (%v), aria2c %.2f MiB/s (%v): mount = %.2f x aria2 (goal >= 0.9)\n",
		size>>20, mr, mountTime.Round(time.Millisecond), ar, ariaTime.Round(time.Millisecond), mr/ar)
	// The same from each one's first unchoke, as Transmission's peer list
	// shows it (polled every 100 ms): the stream alone.
	if mountUnchoke.IsZero() || ariaUnchoke.IsZero() {
		fmt.Printf("btfs-seq-unchoked: not measured (Transmission's peer list never showed the upload)\n")
		return
	}
	mw, aw := mountUnchoke.Sub(start0), ariaUnchoke.Sub(start)
	ms, as := mountTime-mw, ariaTime-aw
	fmt.Printf("btfs-seq-unchoked: first unchoke after mount %.1f s, aria2c %.1f s; from it: mount %.2f MiB/s (%v), aria2c %.2f MiB/s (%v): mount = %.2f x aria2\n",
		mw.Seconds(), aw.Seconds(), mib/ms.Seconds(), ms.Round(time.Millisecond), mib/as.Seconds(), as.Round(time.Millisecond), as.Seconds()/ms.Seconds())
}

// TestBenchBTFSTTFB: time to the first byte of a random offset in a
// torrent (default the 1 GiB, BTFS_TTFB_MIB) on a seed limited to
// 4 MiB/s (goal: ≤ 2 × one piece's transfer time at that rate). The seed
// is an in-process anacrolix client (BTFS_TTFB_SEED=transmission for a
// Transmission seed, whose 500 ms pulse alone is over the goal).
func TestBenchBTFSTTFB(t *testing.T) {
	size := benchMiB(t, "BTFS_TTFB_MIB", 1024) << 20
	requireFUSE(t)
	const rate = 4 << 20
	pieceLen := int64(1 << 20) // mktorrent's and most clients' choice for 1 GiB
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	torrentPath, dataPath, _, mi := lab.MakeTorrent(t, lab.TorrentOptions{Size: size, PieceLength: pieceLen})
	var peer torrent.PeerInfo
	seedName := "anacrolix"
	if os.Getenv("BTFS_TTFB_SEED") == "transmission" {
		seedName = "transmission"
		lab.Require(t, "transmission-daemon")
		seed := lab.StartTransmission(t, lab.TransmissionOptions{DownloadDir: filepath.Dir(dataPath), UploadLimit: rate})
		id, err := seed.AddTorrent(torrentPath, filepath.Dir(dataPath))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seed.WaitComplete(ctx, id); err != nil {
			t.Fatal(err)
		}
		peer = torrent.PeerInfo{Addr: &net.TCPAddr{IP: seed.Addr.AsSlice(), Port: seed.PeerPort}, Trusted: true}
	} else {
		peer = startSeed(t, mi, filepath.Dir(dataPath), config.Rate(rate))
	}
	budget := int64(64 << 20)
	r := newRepeater(t, budget)
	sw, err := r.JoinWith(torrent.TorrentSpecFromMetaInfo(mi), repeater.JoinOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	sw.SetPartialSeed(false)
	m := mount(t, sw, btfs.Options{MaxReadahead: budget / 4, ReadTimeout: 60 * time.Second})
	sw.AddPeers([]torrent.PeerInfo{peer})
	mounted := filepath.Join(m.Dir(), filepath.Base(dataPath))
	want, err := os.Open(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	// Wait until the connection is up (the first byte of the file), so
	// that the figures measure piece fetching, not the handshake or a
	// seed's first unchoke.
	f, err := os.Open(mounted)
	if err != nil {
		t.Fatal(err)
	}
	warm := time.Now()
	if _, err := f.ReadAt(make([]byte, 1), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	warmup := time.Since(warm)

	pieceTime := time.Duration(float64(pieceLen) / rate * float64(time.Second))
	fmt.Printf("btfs-ttfb: %d MiB torrent, %s seed at 4 MiB/s, piece %d KiB, one piece's transfer time %v, goal <= %v (first byte of the file after connecting: %v)\n",
		size>>20, seedName, pieceLen>>10, pieceTime, 2*pieceTime, warmup.Round(time.Millisecond))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	var worst, sum time.Duration
	const n = 8
	// fresh: piece p has no byte yet and lies outside the readahead
	// (at most MaxReadahead) of every offset read before.
	chosen := []int{0} // the first byte's readahead
	fresh := func(p int, chosen []int) bool {
		if st := sw.Torrent().Piece(p).State(); st.Complete || st.Partial {
			return false
		}
		for _, q := range chosen {
			if p >= q && int64(p-q)*pieceLen <= budget/4 {
				return false
			}
		}
		return true
	}
	for range n {
		// A fresh open per offset, as a player seeking would do, at an
		// offset in a piece nobody has fetched yet.
		off := rng.Int64N(size - 1)
		for !fresh(int(off/pieceLen), chosen) {
			off = rng.Int64N(size - 1)
		}
		chosen = append(chosen, int(off/pieceLen))
		f, err := os.Open(mounted)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		st := sw.Torrent().Stats()
		chunks := st.ChunksReadUseful.Int64()
		s := time.Now()
		_, err = f.ReadAt(buf, off)
		d := time.Since(s)
		st = sw.Torrent().Stats()
		chunks = st.ChunksReadUseful.Int64() - chunks
		f.Close()
		if err != nil && err != io.EOF {
			t.Fatalf("read at %d: %v", off, err)
		}
		exp := make([]byte, 1)
		if _, err := want.ReadAt(exp, off); err != nil {
			t.Fatal(err)
		}
		if buf[0] != exp[0] {
			t.Fatalf("byte at %d: %#x through the mount, want %#x", off, buf[0], exp[0])
		}
		sum += d
		worst = max(worst, d)
		fmt.Printf("btfs-ttfb:   offset %10d (piece %4d): %v (%.2f x piece time; %d KiB arrived meanwhile)\n", off, off/pieceLen, d.Round(time.Millisecond), d.Seconds()/pieceTime.Seconds(), chunks*16)
		// Let the last offset's requests in flight drain. (The seed's
		// limiter then holds a burst of about one request's worth, as
		// any token bucket does after an idle second.)
		time.Sleep(time.Second)
	}
	fmt.Printf("btfs-ttfb: mean %v, worst %v over %d offsets (goal <= %v)\n", (sum / n).Round(time.Millisecond), worst.Round(time.Millisecond), n, 2*pieceTime)
}
