package btfs_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent"

	"github.com/btslave/btslave/btfs"
	"github.com/btslave/btslave/internal/lab"
)

// Ensure a mounted multi-file torrent shows its tree, and that every file
// read through the mount, sequentially, at random offsets and by two
// readers at once, has the seed's bytes, while the cache (2 MiB for 8 MiB
// of data) never exceeds its budget.
func TestMountReadsThroughSmallCache(t *testing.T) {
	requireFUSE(t)
	files := []int64{3<<20 + 12345, 5 << 20, 1000}
	_, dataPath, _, mi := lab.MakeTorrent(t, lab.TorrentOptions{Name: "multi", Files: files, PieceLength: 256 << 10})
	seed := startSeed(t, mi, filepath.Dir(dataPath), 0)
	const budget = 2 << 20
	r := newRepeater(t, budget)
	sw, err := r.Join(torrent.TorrentSpecFromMetaInfo(mi))
	if err != nil {
		t.Fatal(err)
	}
	peak := watchBudget(r)
	m := mount(t, sw, btfs.Options{MaxReadahead: 512 << 10, ReadTimeout: 30 * time.Second})
	// Stat works before any peer is known: the tree is the metainfo's.
	ents, err := os.ReadDir(filepath.Join(m.Dir(), "multi"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(files) {
		t.Fatalf("%d entries, want %d: %v", len(ents), len(files), ents)
	}
	for i, e := range ents {
		st, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != files[i] || st.Mode().Perm() != 0o444 {
			t.Errorf("%s: size %d mode %v, want %d 0444", e.Name(), st.Size(), st.Mode(), files[i])
		}
		if mi.CreationDate > 0 && st.ModTime().Unix() != mi.CreationDate {
			t.Errorf("%s: mtime %v, want the torrent's creation date %v", e.Name(), st.ModTime(), time.Unix(mi.CreationDate, 0))
		}
	}
	if err := os.WriteFile(filepath.Join(m.Dir(), "multi", ents[0].Name()), []byte("x"), 0o644); err == nil {
		t.Error("a write through the mount succeeded")
	}
	sw.AddPeers([]torrent.PeerInfo{seed})

	// Two readers at once, on different files.
	var wg sync.WaitGroup
	for _, e := range ents[:2] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, want := sha256File(t, filepath.Join(m.Dir(), "multi", e.Name())), sha256File(t, filepath.Join(dataPath, e.Name())); got != want {
				t.Errorf("%s through the mount: sha256 %s, want %s", e.Name(), got, want)
			}
		}()
	}
	wg.Wait()
	for _, e := range ents {
		if got, want := sha256File(t, filepath.Join(m.Dir(), "multi", e.Name())), sha256File(t, filepath.Join(dataPath, e.Name())); got != want {
			t.Errorf("%s through the mount: sha256 %s, want %s", e.Name(), got, want)
		}
	}
	randomReads(t, filepath.Join(m.Dir(), "multi", ents[1].Name()), filepath.Join(dataPath, ents[1].Name()), 50, 64<<10)
	if p := peak(); p > budget {
		t.Errorf("the cache held %d bytes, over its budget %d", p, budget)
	}
	if st := m.Stats(); st.Timeouts != 0 || st.BytesRead == 0 {
		t.Errorf("mount stats %+v", st)
	}
}

// randomReads compares n reads of size bytes at random offsets (each
// through a fresh open, so the kernel's page cache of another handle does
// not answer it) of got against want.
func randomReads(t *testing.T, got, want string, n, size int) {
	t.Helper()
	ref, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(got)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		off := rng.Int64N(int64(len(ref)))
		k, err := f.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatalf("read %d at %d: %v", size, off, err)
		}
		if wantN := min(size, len(ref)-int(off)); k != wantN || !bytes.Equal(buf[:k], ref[off:int(off)+k]) {
			t.Fatalf("read at %d: %d bytes, want %d; equal %v", off, k, wantN, bytes.Equal(buf[:k], ref[off:int(off)+k]))
		}
	}
}

// Ensure a torrent without metadata mounts at once as an empty root with
// the status file, and that its files appear once the metadata comes.
func TestMountBeforeMetadata(t *testing.T) {
	requireFUSE(t)
	_, dataPath, _, mi := lab.MakeTorrent(t, lab.TorrentOptions{Name: "single.bin", Size: 1 << 20, PieceLength: 32 << 10})
	seed := startSeed(t, mi, filepath.Dir(dataPath), 0)
	r := newRepeater(t, 4<<20)
	sw, err := r.Join(&torrent.TorrentSpec{AddTorrentOpts: torrent.AddTorrentOpts{InfoHash: mi.HashInfoBytes()}})
	if err != nil {
		t.Fatal(err)
	}
	m := mount(t, sw, btfs.Options{})
	ents, err := os.ReadDir(m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != btfs.StatusFile {
		t.Fatalf("root before the metadata: %v, want only %s", ents, btfs.StatusFile)
	}
	msg, err := os.ReadFile(filepath.Join(m.Dir(), btfs.StatusFile))
	if err != nil || !bytes.Contains(msg, []byte("waiting for the torrent's metadata")) {
		t.Fatalf("status file: %q, %v", msg, err)
	}
	sw.AddPeers([]torrent.PeerInfo{seed})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(m.Dir(), "single.bin")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file never appeared; stats %+v; peers %+v; wire %+v", sw.Torrent().Stats().ConnStats, r.Client().Wire.Peers(sw.InfoHash()), r.Client().Wire.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The files are added before the status file is removed: it may
	// outlive the file's appearance by a moment.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := os.Stat(filepath.Join(m.Dir(), btfs.StatusFile))
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status file still there 5 s after the files appeared: %v", err)
		}
	}
	if got, want := sha256File(t, filepath.Join(m.Dir(), "single.bin")), sha256File(t, dataPath); got != want {
		t.Errorf("sha256 %s, want %s", got, want)
	}
}
