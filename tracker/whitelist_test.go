package tracker_test

import (
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btslave/btslave/tracker"
)

// Ensure whitelist mode: only listed torrents are served (HTTP failure
// reason, UDP error, left out of scrapes), and the list is reread when
// the file changes; a malformed file is refused at start and, later,
// leaves the old list in place.
func TestWhitelist(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "whitelist.txt")
	a, b := randomHash(), randomHash()
	writeFile(t, path, "# the torrents we publish\n"+a.HexString()+" first\n\n")
	tr := startTracker(t, tracker.Options{Whitelist: path, WhitelistPoll: 20 * time.Millisecond})
	if r := httpAnnounce(t, tr, ann{ih: a, port: 1, left: 1}); r.Failure != "" {
		t.Fatalf("listed torrent refused: %q", r.Failure)
	}
	if r := httpAnnounce(t, tr, ann{ih: b, port: 1, left: 1}); !strings.Contains(r.Failure, "not registered") {
		t.Errorf("unlisted torrent: %+v", r)
	}
	u := newUDPClient(t, tr, netip.Addr{})
	u.connect()
	if r, _ := u.announce(b, 1, 1, 0, -1); !strings.Contains(r.err, "not registered") {
		t.Errorf("unlisted torrent over UDP: %+v", r)
	}
	if files, _ := httpScrape(t, tr, a, b); len(files) != 1 {
		t.Errorf("scrape lists %d torrents, want only the listed one", len(files))
	}

	writeFile(t, path, b.HexString()+"\n")
	waitFor(t, 5*time.Second, "the new whitelist", func() bool {
		return httpAnnounce(t, tr, ann{ih: b, port: 2, left: 1}).Failure == ""
	})
	if r := httpAnnounce(t, tr, ann{ih: a, port: 1, left: 1}); r.Failure == "" {
		t.Error("a torrent taken off the whitelist is still served")
	}
	writeFile(t, path, "not a hash\n")
	time.Sleep(100 * time.Millisecond)
	if r := httpAnnounce(t, tr, ann{ih: b, port: 2, left: 1}); r.Failure != "" {
		t.Errorf("a malformed whitelist replaced the old one: %q", r.Failure)
	}
	if st := tr.Stats(); st.Open || st.Whitelisted != 1 || st.NotAllowed < 2 {
		t.Errorf("stats %+v", st)
	}

	if _, err := tracker.New(tracker.Options{HTTPListen: "127.0.0.1:0", Whitelist: path}); err == nil ||
		!strings.Contains(err.Error(), "whitelist.txt:1") {
		t.Errorf("malformed whitelist at start: %v", err)
	}
	if _, err := tracker.New(tracker.Options{HTTPListen: "127.0.0.1:0", Whitelist: filepath.Join(dir, "none")}); err == nil {
		t.Error("missing whitelist accepted")
	}
}

// Ensure that a flood of announces from one address is limited while
// another address announcing at a normal pace is never refused.
func TestFloodLimited(t *testing.T) {
	tr := startTracker(t, tracker.Options{RatePerIP: 20})
	ih := randomHash()
	flooder := newUDPClient(t, tr, netip.MustParseAddr("127.0.0.2"))
	flooder.connect()
	var answered atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			select {
			case <-stop:
				return
			default:
			}
			flooder.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := flooder.c.Read(buf); err == nil {
				answered.Add(1)
			}
		}
	})
	sent := 0
	honest := newUDPClient(t, tr, netip.MustParseAddr("127.0.0.3"))
	honest.connect()
	start := time.Now()
	for i := range 20 {
		for range 100 {
			sendAnnounce(t, flooder, ih, 7000)
			sent++
		}
		if r, ok := honest.announce(ih, uint16(8000+i), 1, 0, -1); !ok || r.err != "" {
			t.Fatalf("honest announce %d: %+v %v", i, r, ok)
		}
		httpAnnounce(t, tr, ann{ih: ih, port: 9000 + i, left: 1, from: netip.MustParseAddr("127.0.0.4")})
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	// Burst of 200 plus 20/s.
	if max := 200 + int64(20*elapsed) + 5; answered.Load() > max || answered.Load() < 200 {
		t.Errorf("flooder: %d of %d announces answered in %.1fs, want 200..%d", answered.Load(), sent, elapsed, max)
	}
	if st := tr.Stats(); st.RateLimited == 0 {
		t.Errorf("stats show no rate limiting: %+v", st)
	}
}

// sendAnnounce sends one UDP announce without waiting for the reply.
func sendAnnounce(t *testing.T, u *udpClient, ih [20]byte, port uint16) {
	t.Helper()
	pkt := make([]byte, 98)
	be := func(off int, v uint64, n int) {
		for i := range n {
			pkt[off+n-1-i] = byte(v >> (8 * i))
		}
	}
	be(0, u.conn, 8)
	be(8, 1, 4)
	be(12, 7, 4)
	copy(pkt[16:], ih[:])
	be(64, 1, 8) // left
	be(96, uint64(port), 2)
	if _, err := u.c.Write(pkt); err != nil {
		t.Fatal(err)
	}
}
