package wire

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

type fakeFriends struct {
	name string
	mu   sync.Mutex
	got  [][]byte // payloads OnHello saw
	ids  [][2][]byte
	fail bool
}

func (f *fakeFriends) Hello(ih, ours, theirs []byte) ([]byte, error) {
	return []byte("d1:n" + string(rune('0'+len(f.name))) + ":" + f.name + "e"), nil
}

func (f *fakeFriends) OnHello(ih, ours, theirs, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, append([]byte(nil), p...))
	f.ids = append(f.ids, [2][]byte{append([]byte(nil), ours...), append([]byte(nil), theirs...)})
	if f.fail {
		return errors.New("refused")
	}
	return nil
}

func (f *fakeFriends) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		f.mu.Lock()
		got := append([][]byte(nil), f.got...)
		f.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(time.Millisecond)
	}
}

// Ensure that two layers with a friends hook exchange one hello each over
// bts_friends, that the libraries never see it nor the extension's name,
// and that a layer without the hook offers nothing.
func TestFriendsHelloExchange(t *testing.T) {
	for _, comp := range []bool{false, true} {
		la, lb := New(&fakePieces{n: 64}), New(&fakePieces{n: 64})
		if comp {
			if err := la.Compress(compOpts); err != nil {
				t.Fatal(err)
			}
			if err := lb.Compress(compOpts); err != nil {
				t.Fatal(err)
			}
		}
		fa, fb := &fakeFriends{name: "alice", fail: true}, &fakeFriends{name: "bob"}
		la.SetFriends(fa)
		lb.SetFriends(fb)
		a, b := compressedPair(t, la, lb)
		if got := fb.wait(t, 1); len(got) != 1 || string(got[0]) != "d1:n5:alicee" {
			t.Fatalf("comp %v: b got %q", comp, got)
		}
		if got := fa.wait(t, 1); len(got) != 1 || string(got[0]) != "d1:n3:bobe" {
			t.Fatalf("comp %v: a got %q", comp, got)
		}
		if len(fa.ids[0][0]) != 20 || len(fa.ids[0][1]) != 20 {
			t.Fatalf("peer IDs %q", fa.ids[0])
		}
		// The libraries go on: a's (refused) hello did not close anything.
		if _, err := a.c.Write(msg(msgInterested)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		seen, err := b.seen()
		if err != nil {
			t.Fatalf("comp %v: b's library: %v", comp, err)
		}
		if bytes.Contains(seen, []byte(FriendsExtension)) || bytes.Contains(seen, []byte("alice")) {
			t.Fatalf("comp %v: the library saw bts_friends: %q", comp, seen)
		}
		if !bytes.HasSuffix(seen, msg(msgInterested)) {
			t.Fatalf("comp %v: interested did not arrive: %q", comp, seen[max(0, len(seen)-20):])
		}
	}

	// One side without the hook: no hello either way.
	la, lb := New(&fakePieces{n: 64}), New(&fakePieces{n: 64})
	fa := &fakeFriends{name: "alice"}
	la.SetFriends(fa)
	compressedPair(t, la, lb)
	time.Sleep(100 * time.Millisecond)
	if got := fa.wait(t, 0); len(got) != 0 {
		t.Fatalf("hello from a peer without bts_friends: %q", got)
	}
}
