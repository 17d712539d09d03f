package btfs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"golang.org/x/sys/unix"

	"github.com/btslave/btslave/btfs"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater"
)

// Ensure a multi-file torrent served by a real Transmission seed reads
// right through the mount, at the size: 256 MiB through a 32 MiB
// cache; every file's sha256 by two readers at once, 200 reads of 64 KiB
// at random offsets (most of them of evicted pieces, fetched again) by 8
// readers at once, the cache within its budget all along; then, with the
// seed gone, an unmount while a read waits returns at once and fails that
// read. About 2 minutes: each random read of an evicted piece waits for
// Transmission's 500 ms peer pulse, so they run 8 at a time.
// BTFS_SMALL=1 runs 16 MiB through 2 MiB with 40 random reads, for quick
// local runs.
func TestInteropTransmissionSeed(t *testing.T) {
	requireFUSE(t)
	lab.Require(t, "transmission-daemon")
	scale, reads := int64(64), 200 // 256 MiB
	if os.Getenv("BTFS_SMALL") != "" {
		scale, reads = 4, 40 // 16 MiB
	}
	files := []int64{6 * scale << 18, 6*scale<<18 + 4321, 4*scale<<18 - 4321 - 1000, 1000}
	total := int64(0)
	for _, f := range files {
		total += f
	}
	torrentPath, dataPath, _, mi := lab.MakeTorrent(t, lab.TorrentOptions{Name: "multi", Files: files, PieceLength: 256 << 10})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	seed := lab.StartTransmission(t, lab.TransmissionOptions{DownloadDir: filepath.Dir(dataPath)})
	seedID, err := seed.AddTorrent(torrentPath, filepath.Dir(dataPath))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seed.WaitComplete(ctx, seedID); err != nil {
		t.Fatal(err)
	}
	budget := total / 8
	r := newRepeater(t, budget)
	sw, err := r.JoinWith(torrent.TorrentSpecFromMetaInfo(mi), repeater.JoinOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	sw.SetPartialSeed(false) // a reader downloads, as the daemon's mounts do
	peak := watchBudget(r)
	m := mount(t, sw, btfs.Options{MaxReadahead: budget / 4, ReadTimeout: 60 * time.Second})
	// Transmission never dials loopback peers: we dial it.
	sw.AddPeers([]torrent.PeerInfo{{Addr: &net.TCPAddr{IP: seed.Addr.AsSlice(), Port: seed.PeerPort}, Trusted: true}})

	start := time.Now()
	names := make([]string, len(files))
	for i := range files {
		names[i] = filepath.Join("multi", fmt.Sprintf("f%03d.bin", i)) // lab.MakeTorrent's names
	}
	// Two readers at once, each taking the next file to hash.
	queue := make(chan string, len(names))
	for _, name := range names {
		queue <- name
	}
	close(queue)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range queue {
				if got, want := sha256File(t, filepath.Join(m.Dir(), name)), sha256File(t, filepath.Join(filepath.Dir(dataPath), name)); got != want {
					t.Errorf("%s: sha256 %s through the mount, want %s", name, got, want)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d MiB read through the mount in %v", total>>20, time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}
	// Random reads over the three large files: drop the kernel's page
	// cache of them first, so that the reads reach the mount.
	var got, want []string
	for _, name := range names[:3] {
		got, want = append(got, filepath.Join(m.Dir(), name)), append(want, filepath.Join(filepath.Dir(dataPath), name))
		dropPageCache(t, got[len(got)-1])
	}
	rStart := time.Now()
	randomReadsAtOnce(t, got, want, reads, 8, 64<<10)
	t.Logf("%d random reads in %v", reads, time.Since(rStart).Round(time.Millisecond))
	if p := peak(); p > budget {
		t.Errorf("the cache held %d bytes, over its budget %d", p, budget)
	}

	// Unmount while a read waits for a piece nobody can send.
	if err := seed.Remove(seedID, false); err != nil {
		t.Fatal(err)
	}
	name := names[0]
	dropPageCache(t, filepath.Join(m.Dir(), name))
	off := int64(-1)
	for p := 0; p < int(files[0]/(256<<10)); p++ {
		if !r.Cache().Has(sw.InfoHash(), p) {
			off = int64(p) * 256 << 10
			break
		}
	}
	if off < 0 {
		t.Fatal("the cache holds all of the first file")
	}
	f, err := os.Open(filepath.Join(m.Dir(), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	readErr := make(chan error, 1)
	go func() {
		_, err := f.ReadAt(make([]byte, 64<<10), off)
		readErr <- err
	}()
	time.Sleep(time.Second)
	select {
	case err := <-readErr:
		t.Fatalf("the read returned before the unmount: %v", err)
	default:
	}
	uStart := time.Now()
	if err := m.Unmount(); err != nil {
		t.Fatalf("unmount with a read in flight: %v", err)
	}
	select {
	case err := <-readErr:
		if err == nil {
			t.Error("the read in flight succeeded without a seed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read in flight never returned after the unmount")
	}
	if btfs.IsMounted(m.Dir()) {
		t.Error("still mounted after Unmount")
	}
	t.Logf("unmounted with a read in flight in %v; mount stats %+v", time.Since(uStart).Round(time.Millisecond), m.Stats())
}

// randomReadsAtOnce makes n reads of size bytes at random offsets by
// readers readers at once, reader i on file i%len(got) with a handle of
// its own, and compares each with the same bytes of want.
func randomReadsAtOnce(t *testing.T, got, want []string, n, readers, size int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := n / readers
			if i < n%readers {
				k++
			}
			errs <- randomReadsOf(got[i%len(got)], want[i%len(want)], k, size, uint64(i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func randomReadsOf(got, want string, n, size int, seed uint64) error {
	g, err := os.Open(got)
	if err != nil {
		return err
	}
	defer g.Close()
	w, err := os.Open(want)
	if err != nil {
		return err
	}
	defer w.Close()
	st, err := w.Stat()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	buf, ref := make([]byte, size), make([]byte, size)
	for range n {
		off := rng.Int64N(st.Size())
		k, err := g.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: read %d at %d: %w", got, size, off, err)
		}
		wantN, err := w.ReadAt(ref, off)
		if err != nil && err != io.EOF {
			return err
		}
		if k != wantN || !bytes.Equal(buf[:k], ref[:wantN]) {
			return fmt.Errorf("%s: read at %d: %d bytes, want %d; equal %v", got, off, k, wantN, bytes.Equal(buf[:k], ref[:min(k, wantN)]))
		}
	}
	return nil
}

// dropPageCache makes the kernel forget the cached pages of path.
func dropPageCache(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}
