package scrape

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// isScrape reports whether pkt is a scrape request.
func isScrape(pkt []byte) bool { return len(pkt) >= 16 && binary.BigEndian.Uint32(pkt[8:12]) == 2 }

// Ensure that a UDP scrape splits hashes into packets of at most 74,
// connects once, leaves from LocalIP on one socket and reads every row.
func TestUDP_Scrape(t *testing.T) {
	f := startFakeUDP(t, nil)
	o := fastOptions()
	o.LocalIP = netip.MustParseAddr("127.0.0.4")
	s := mustNew(t, o)
	hs := testHashes(200)
	res, err := s.Scrape(context.Background(), f.url(), hs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(hs) {
		t.Errorf("%d results, want %d", len(res), len(hs))
	}
	for _, h := range hs {
		r, ok := res[h]
		checkResult(t, h, r, ok)
		if r.HasDownloaders {
			t.Errorf("UDP result with downloaders: %+v", r)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.connects != 1 {
		t.Errorf("%d connects, want 1", f.connects)
	}
	total := 0
	for _, n := range f.sizes {
		if n > MaxUDPBatch {
			t.Errorf("packet with %d hashes", n)
		}
		total += n
	}
	if total != 200 || len(f.sizes) != 3 {
		t.Errorf("packets %v, want 3 carrying 200 hashes", f.sizes)
	}
	if len(f.froms) != 1 {
		t.Errorf("packets from %v, want one socket", f.froms)
	}
	for a := range f.froms {
		if a.Addr() != o.LocalIP {
			t.Errorf("packets from %v, want %v", a, o.LocalIP)
		}
	}
}

// Ensure that the connection ID is reused across calls while it is valid
// (BEP 15: one minute) and asked for again after.
func TestUDP_ConnIDReuseAndExpiry(t *testing.T) {
	f := startFakeUDP(t, nil)
	o := fastOptions()
	o.MaxAge = -1 // no cache: every call goes to the tracker
	s := mustNew(t, o)
	hs := testHashes(3)
	for range 3 {
		if _, err := s.Scrape(context.Background(), f.url(), hs); err != nil {
			t.Fatal(err)
		}
	}
	if c, sc := f.counts(); c != 1 || sc != 3 {
		t.Errorf("%d connects, %d scrapes; want 1, 3", c, sc)
	}
	s.connIDLife = 50 * time.Millisecond
	time.Sleep(60 * time.Millisecond)
	if _, err := s.Scrape(context.Background(), f.url(), hs); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.counts(); c != 2 {
		t.Errorf("%d connects after expiry, want 2", c)
	}
}

// Ensure that an error reply to a reused connection ID (the tracker
// restarted, or keeps IDs shorter) leads to one reconnect and a retry.
func TestUDP_ReconnectOnError(t *testing.T) {
	f := startFakeUDP(t, nil)
	o := fastOptions()
	o.MaxAge = -1
	s := mustNew(t, o)
	hs := testHashes(3)
	if _, err := s.Scrape(context.Background(), f.url(), hs); err != nil {
		t.Fatal(err)
	}
	f.expireIDs()
	res, err := s.Scrape(context.Background(), f.url(), hs)
	if err != nil {
		t.Fatalf("after the tracker forgot the ID: %v", err)
	}
	checkResult(t, hs[0], res[hs[0]], true)
	if c, sc := f.counts(); c != 2 || sc != 2 {
		t.Errorf("%d connects, %d scrapes; want 2, 2", c, sc)
	}
}

// Ensure that an error reply (action 3) to a fresh connection ID is a
// *FailureError with the tracker's message, without retries.
func TestUDP_ErrorAction(t *testing.T) {
	var scrapes atomic.Int32
	f := startFakeUDP(t, func(f *fakeUDP) {
		f.handle = func(f *fakeUDP, pkt []byte) [][]byte {
			if isScrape(pkt) {
				scrapes.Add(1)
				return [][]byte{append(udpHeader(3, pkt[12:16]), "info_hash not allowed\x00"...)}
			}
			return [][]byte{f.answer(pkt)}
		}
	})
	s := mustNew(t, fastOptions())
	_, err := s.Scrape(context.Background(), f.url(), testHashes(1))
	var fe *FailureError
	if !errors.As(err, &fe) || fe.Reason != "info_hash not allowed" {
		t.Fatalf("error %v, want a failure with the tracker's message", err)
	}
	if n := scrapes.Load(); n != 1 {
		t.Errorf("%d scrapes, want 1", n)
	}
}

// Ensure that a lost packet is sent again after UDPTimeout, and that
// replies with another transaction ID are ignored.
func TestUDP_RetransmitAndTransactionID(t *testing.T) {
	var scrapes atomic.Int32
	f := startFakeUDP(t, func(f *fakeUDP) {
		f.handle = func(f *fakeUDP, pkt []byte) [][]byte {
			if isScrape(pkt) && scrapes.Add(1) == 1 {
				return nil // lost
			}
			good := f.answer(pkt)
			stray := append([]byte(nil), good...)
			stray[7]++ // another transaction ID
			for i := 8; i < len(stray); i++ {
				stray[i] = 0xff
			}
			return [][]byte{stray, {1, 2, 3}, good}
		}
	})
	o := fastOptions()
	o.UDPTimeout = 100 * time.Millisecond
	s := mustNew(t, o)
	hs := testHashes(5)
	start := time.Now()
	res, err := s.Scrape(context.Background(), f.url(), hs)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answered after %v, before the retransmission", d)
	}
	for _, h := range hs {
		checkResult(t, h, res[h], true)
	}
	if n := scrapes.Load(); n != 2 {
		t.Errorf("%d scrape packets, want 2", n)
	}
}

// Ensure that an unanswered request is sent 1 + UDPRetries times with
// doubling waits, then fails.
func TestUDP_Timeout(t *testing.T) {
	var scrapes atomic.Int32
	f := startFakeUDP(t, func(f *fakeUDP) {
		f.handle = func(f *fakeUDP, pkt []byte) [][]byte {
			if isScrape(pkt) {
				scrapes.Add(1)
				return nil
			}
			return [][]byte{f.answer(pkt)}
		}
	})
	o := fastOptions()
	o.UDPTimeout = 50 * time.Millisecond
	o.UDPRetries = 2
	s := mustNew(t, o)
	start := time.Now()
	_, err := s.Scrape(context.Background(), f.url(), testHashes(1))
	d := time.Since(start)
	if !errors.Is(err, errUDPTimeout) {
		t.Fatalf("error %v, want errUDPTimeout", err)
	}
	if n := scrapes.Load(); n != 3 {
		t.Errorf("%d scrape packets, want 3", n)
	}
	if d < 350*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("gave up after %v, want 50+100+200 ms", d)
	}
}

// Ensure that requests to one tracker are pipelined on one socket, up to
// Concurrency in flight.
func TestUDP_Pipelined(t *testing.T) {
	f := startFakeUDP(t, func(f *fakeUDP) { f.delay = 100 * time.Millisecond })
	o := fastOptions()
	o.Concurrency = 4
	s := mustNew(t, o)
	hs := testHashes(8 * MaxUDPBatch)
	start := time.Now()
	res, err := s.Scrape(context.Background(), f.url(), hs)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	for _, h := range hs {
		checkResult(t, h, res[h], true)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxInflight != 4 {
		t.Errorf("%d packets in flight at most, want 4", f.maxInflight)
	}
	if len(f.froms) != 1 {
		t.Errorf("packets from %v, want one socket", f.froms)
	}
	// connect + 2 rounds of 4 packets: about 300 ms, against 900 ms one by one.
	if d > 700*time.Millisecond {
		t.Errorf("took %v, not pipelined", d)
	}
}

// Ensure that a tracker answering fewer rows than hashes (chihaya's 50)
// gets the rest asked again, and smaller packets from then on.
func TestUDP_PerPacketLimit(t *testing.T) {
	f := startFakeUDP(t, func(f *fakeUDP) { f.maxRows = 50 })
	s := mustNew(t, fastOptions())
	hs := testHashes(300)
	res, err := s.Scrape(context.Background(), f.url(), hs)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		checkResult(t, h, res[h], true)
	}
	more := testHashes(400)[300:]
	if _, err := s.Scrape(context.Background(), f.url(), more); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	over := 0
	for _, n := range f.sizes {
		if n > 50 {
			over++
		}
	}
	// The first packets, sent before the first reply, may carry 74.
	if over > DefaultConcurrency {
		t.Errorf("packet sizes %v: %d above the tracker's 50", f.sizes, over)
	}
	if s.trackers[f.url()].udp.batchSize() != 50 {
		t.Errorf("batch size %d, want 50", s.trackers[f.url()].udp.batchSize())
	}
}

// Ensure that malformed replies are errors: too many rows, a partial row,
// no rows, the wrong action, a short connect reply.
func TestUDP_BadReplies(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(pkt []byte) []byte // edits the good reply
	}{
		{"oversized", func(p []byte) []byte { return append(p, make([]byte, 12)...) }},
		{"huge", func(p []byte) []byte { return append(p, make([]byte, 60000)...) }},
		{"partial row", func(p []byte) []byte { return p[:len(p)-5] }},
		{"no rows", func(p []byte) []byte { return p[:8] }},
		{"wrong action", func(p []byte) []byte { p[3] = 1; return p }},
		{"short connect", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := startFakeUDP(t, func(f *fakeUDP) {
				f.handle = func(f *fakeUDP, pkt []byte) [][]byte {
					good := f.answer(pkt)
					switch {
					case c.edit == nil && !isScrape(pkt):
						return [][]byte{good[:12]}
					case c.edit != nil && isScrape(pkt):
						return [][]byte{c.edit(good)}
					}
					return [][]byte{good}
				}
			})
			s := mustNew(t, fastOptions())
			_, err := s.Scrape(context.Background(), f.url(), testHashes(3))
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v, want malformed", err)
			}
		})
	}
}

// Ensure that the socket is closed when idle, and opened again (with a
// new connection ID) when needed.
func TestUDP_IdleClose(t *testing.T) {
	f := startFakeUDP(t, nil)
	o := fastOptions()
	o.MaxAge = -1
	s := mustNew(t, o)
	s.udpIdle = 50 * time.Millisecond
	hs := testHashes(2)
	if _, err := s.Scrape(context.Background(), f.url(), hs); err != nil {
		t.Fatal(err)
	}
	u := s.trackers[f.url()].udp
	deadline := time.Now().Add(2 * time.Second)
	for {
		u.mu.Lock()
		open := u.sock != nil
		u.mu.Unlock()
		if !open {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("socket still open after the idle time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := s.Scrape(context.Background(), f.url(), hs); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.connects != 2 || len(f.froms) != 2 {
		t.Errorf("%d connects from %d sockets, want 2 and 2", f.connects, len(f.froms))
	}
}

// Ensure that a closed port (ICMP port unreachable) fails at once, not
// after the retransmissions.
func TestUDP_ClosedPort(t *testing.T) {
	f := startFakeUDP(t, nil)
	url := f.url()
	f.pc.Close()
	o := fastOptions()
	o.UDPTimeout = time.Second
	s := mustNew(t, o)
	start := time.Now()
	_, err := s.Scrape(context.Background(), url, testHashes(1))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("error %v, want connection refused", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("failed after %v, want at once", d)
	}
}

// Ensure that Close ends a UDP scrape in flight and later ones fail.
func TestUDP_Close(t *testing.T) {
	f := startFakeUDP(t, func(f *fakeUDP) {
		f.handle = func(f *fakeUDP, pkt []byte) [][]byte {
			if isScrape(pkt) {
				return nil
			}
			return [][]byte{f.answer(pkt)}
		}
	})
	s, err := New(fastOptions())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Scrape(context.Background(), f.url(), []metainfo.Hash{testHash(1, 1, 1, 1)})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("scrape in flight succeeded after Close")
		}
	case <-time.After(time.Second):
		t.Fatal("scrape in flight not ended by Close")
	}
	if _, err := s.Scrape(context.Background(), f.url(), testHashes(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}
