package friends

import (
	"errors"
	"testing"
	"time"
)

var (
	testIH  = []byte("01234567890123456789")
	peerIDA = []byte("-BS0001-aaaaaaaaaaaa")
	peerIDB = []byte("-BS0001-bbbbbbbbbbbb")
)

func TestSwarmHelloMeet(t *testing.T) {
	a, b := newID(t), newID(t)
	now := time.Unix(1_800_000_000, 0)
	ma := &Meeter{ID: a, Book: openBook(t), Accept: "ask", Addr: "127.0.0.2:7980", Now: func() time.Time { return now }}
	mb := &Meeter{ID: b, Book: openBook(t), Accept: "auto", Addr: "127.0.0.3:7980", Now: func() time.Time { return now }}

	ha, err := ma.Hello(testIH, peerIDA, peerIDB)
	if err != nil {
		t.Fatal(err)
	}
	// b under auto: a becomes a friend at once.
	if err := mb.OnHello(testIH, peerIDB, peerIDA, ha); err != nil {
		t.Fatal(err)
	}
	if !mb.Book.Known(a.Public()) {
		t.Fatal("auto did not accept")
	}
	// a under ask: b's hello leaves a pending request.
	hb, _ := mb.Hello(testIH, peerIDB, peerIDA)
	if err := ma.OnHello(testIH, peerIDA, peerIDB, hb); err != nil {
		t.Fatal(err)
	}
	if p, _ := ma.Book.Pending(); len(p) != 1 || ma.Book.Known(b.Public()) {
		t.Fatalf("ask: pending %v", p)
	}

	// The same hello replayed into another connection or swarm, stale, or
	// tampered with is refused and changes nothing.
	c := &Meeter{ID: newID(t), Book: openBook(t), Accept: "auto", Now: func() time.Time { return now }}
	for name, tc := range map[string]struct {
		ih, ours, theirs, p []byte
		at                  time.Time
		want                error
	}{
		"other receiver": {testIH, []byte("-BS0001-cccccccccccc"), peerIDA, ha, now, ErrBadSignature},
		"other swarm":    {[]byte("99999999999999999999"), peerIDB, peerIDA, ha, now, ErrBadSignature},
		"stale":          {testIH, peerIDB, peerIDA, ha, now.Add(time.Hour), ErrStaleHello},
		"malformed":      {testIH, peerIDB, peerIDA, []byte("d1:k3:abce"), now, ErrMalformed},
		"oversized":      {testIH, peerIDB, peerIDA, make([]byte, MaxSwarmHello+1), now, ErrMalformed},
	} {
		at := tc.at
		c.Now = func() time.Time { return at }
		if err := c.OnHello(tc.ih, tc.ours, tc.theirs, tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if l, _ := c.Book.List(); len(l) != 0 {
		t.Fatalf("refused hellos made friends: %v", l)
	}
	// never: refused.
	c.Accept, c.Now = "never", func() time.Time { return now }
	hc, _ := ma.Hello(testIH, peerIDA, peerIDB)
	if err := c.OnHello(testIH, peerIDB, peerIDA, hc); !errors.Is(err, ErrRefused) {
		t.Fatalf("never: %v", err)
	}
}

func FuzzParseSwarmHello(f *testing.F) {
	id, _ := LoadIdentity(f.TempDir())
	now := time.Unix(1_800_000_000, 0)
	h, _ := NewSwarmHello(id, testIH, peerIDA, peerIDB, "127.0.0.2:7980", now)
	f.Add(h)
	f.Add([]byte("de"))
	f.Fuzz(func(t *testing.T, p []byte) {
		got, err := ParseSwarmHello(p, testIH, peerIDA, peerIDB, now)
		if err != nil {
			return
		}
		if len(got.Key) != 32 || len(got.Sig) != 64 {
			t.Fatalf("accepted %x", p)
		}
	})
}
