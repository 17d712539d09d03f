package feeds_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/merkle"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/store"
)

// openDB opens a fresh database the way the daemon does.
func openDB(t testing.TB) *store.DB {
	t.Helper()
	return openDBAt(t, t.TempDir())
}

func openDBAt(t testing.TB, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testTorrent is a .torrent made in the test, with its info hashes.
type testTorrent struct {
	data   []byte
	v1, v2 string // hex; v2 only for hybrid torrents
	size   int64
}

// makeTorrent builds a single-file torrent of size random bytes in
// 32 KiB pieces. A hybrid torrent (v1 + v2) must fit in one piece so that
// it needs no piece layers.
func makeTorrent(t testing.TB, name string, size int, hybrid bool, trackers ...string) testTorrent {
	t.Helper()
	const pl = 32 << 10
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	info := metainfo.Info{Name: name, PieceLength: pl, Length: int64(size)}
	for off := 0; off < size; off += pl {
		h := sha1.Sum(data[off:min(off+pl, size)])
		info.Pieces = append(info.Pieces, h[:]...)
	}
	if hybrid {
		if size > pl {
			t.Fatalf("hybrid test torrents must fit in one %d-byte piece", pl)
		}
		mh := merkle.NewHash()
		mh.Write(data)
		info.MetaVersion = 2
		info.FileTree = metainfo.FileTree{Dir: map[string]metainfo.FileTree{
			name: {File: metainfo.FileTreeFile{Length: int64(size), PiecesRoot: string(mh.Sum(nil))}},
		}}
	}
	return encodeTorrent(t, info, trackers...)
}

// encodeTorrent bencodes info into a .torrent, valid or not.
func encodeTorrent(t testing.TB, info metainfo.Info, trackers ...string) testTorrent {
	t.Helper()
	ib, err := bencode.Marshal(&info) // by pointer: FileTree marshals itself only so
	if err != nil {
		t.Fatal(err)
	}
	mi := metainfo.MetaInfo{InfoBytes: ib}
	if len(trackers) > 0 {
		mi.Announce = trackers[0]
		mi.AnnounceList = [][]string{trackers}
	}
	var buf bytes.Buffer
	if err := mi.Write(&buf); err != nil {
		t.Fatal(err)
	}
	tt := testTorrent{data: buf.Bytes(), v1: mi.HashInfoBytes().HexString(), size: info.Length}
	if info.HasV2() {
		h := sha256.Sum256(ib)
		tt.v2 = hex.EncodeToString(h[:])
	}
	return tt
}

// testdata reads a file of testdata with {{BASE}} replaced by base.
func testdata(t testing.TB, name, base string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("{{BASE}}"), []byte(base))
}

// server is a loopback HTTP server whose routes can change while it runs
// and which counts requests per path.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	hits   map[string]int
	agents []string
}

func newServer(t testing.TB) *server {
	t.Helper()
	return newServerOn(t, nil)
}

// newServerOn is newServer listening on ln (nil: 127.0.0.1, any port).
func newServerOn(t testing.TB, ln net.Listener) *server {
	t.Helper()
	s := &server{routes: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.agents = append(s.agents, r.UserAgent())
		h := s.routes[r.URL.Path]
		s.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	if ln != nil {
		s.Listener.Close()
		s.Listener = ln
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *server) handle(path string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes[path] = h
}

// file serves body at path.
func (s *server) file(path, ctype string, body []byte) {
	s.handle(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.Write(body)
	})
}

func (s *server) hit(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk *fakeClock
	at  time.Time
	c   chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 2, 12, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) TimerAt(at time.Time) feeds.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, at: at, c: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.c <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	c := t.clk
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves the clock and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			keep = append(keep, t)
			continue
		}
		t.c <- c.now
	}
	c.timers = keep
}

// hasTimerAt reports whether a timer is armed for exactly at.
func (c *fakeClock) hasTimerAt(at time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if t.at.Equal(at) {
			return true
		}
	}
	return false
}

// startService runs a Service until the test ends.
func startService(t testing.TB, opts feeds.Options) *feeds.Service {
	t.Helper()
	svc, err := feeds.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return svc
}

// status returns one feed's status.
func status(svc *feeds.Service, name string) feeds.Status {
	for _, s := range svc.Status() {
		if s.Name == name {
			return s
		}
	}
	return feeds.Status{}
}

// fetchNow triggers a fetch of name and waits for it to end.
func fetchNow(t testing.TB, svc *feeds.Service, name string) feeds.Status {
	t.Helper()
	before := status(svc, name)
	if err := svc.RunNow(name); err != nil {
		t.Fatal(err)
	}
	return waitFetches(t, svc, name, before.Fetches+1)
}

// waitFetches waits until name has been fetched n times.
func waitFetches(t testing.TB, svc *feeds.Service, name string, n int) feeds.Status {
	t.Helper()
	var st feeds.Status
	waitFor(t, fmt.Sprintf("fetch %d of %s", n, name), func() bool {
		st = status(svc, name)
		return st.Fetches >= n
	})
	return st
}

// findItem returns the result whose title (or link) contains s.
func findItem(t testing.TB, res *feeds.Result, s string) feeds.ItemResult {
	t.Helper()
	for _, ir := range res.Items {
		if strings.Contains(ir.Item.Title, s) || strings.Contains(ir.Item.Torrent, s) || strings.Contains(ir.Item.Magnet, s) {
			return ir
		}
	}
	t.Fatalf("no item %q in result", s)
	return feeds.ItemResult{}
}
