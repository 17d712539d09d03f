package friends

import (
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func openBook(t *testing.T) *Book {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "b.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bk, err := OpenBook(db)
	if err != nil {
		t.Fatal(err)
	}
	return bk
}

func TestBookAcceptPolicy(t *testing.T) {
	bk := openBook(t)
	a, b, c := newID(t), newID(t), newID(t)
	// never: refused, nothing kept.
	if ok, err := bk.Request(a.Public(), "127.0.0.2:1", "never"); ok || !errors.Is(err, ErrRefused) {
		t.Fatalf("never: %v %v", ok, err)
	}
	if p, _ := bk.Pending(); len(p) != 0 || bk.Known(a.Public()) {
		t.Fatal("refused request was kept")
	}
	// ask: pending until accepted.
	if ok, err := bk.Request(a.Public(), "127.0.0.2:1", "ask"); ok || err != nil {
		t.Fatalf("ask: %v %v", ok, err)
	}
	if p, _ := bk.Pending(); len(p) != 1 || bk.Known(a.Public()) {
		t.Fatalf("pending %v", p)
	}
	if _, err := bk.Accept(a.ID()); err != nil || !bk.Known(a.Public()) {
		t.Fatalf("accept: %v", err)
	}
	if p, _ := bk.Pending(); len(p) != 0 {
		t.Fatal("accepted request still pending")
	}
	if _, err := bk.Accept(c.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("accept unknown: %v", err)
	}
	// auto: a friend at once.
	if ok, err := bk.Request(b.Public(), "127.0.0.3:1", "auto"); !ok || err != nil {
		t.Fatalf("auto: %v %v", ok, err)
	}
	if l, _ := bk.List(); len(l) != 2 {
		t.Fatalf("list %v", l)
	}
	if err := bk.Remove(b.ID()); err != nil || bk.Known(b.Public()) {
		t.Fatalf("remove: %v", err)
	}
	if err := bk.Remove(b.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
}

func TestPolicyDecideAndOrder(t *testing.T) {
	p := Policy{CreditLimit: 1000, StarterCredit: 100}
	room := Capacity{Swarms: 1, MaxSwarms: 4, CacheFree: 1 << 20, Needed: 1 << 10}
	for _, c := range []struct {
		name string
		s    Standing
		c    Capacity
		ok   bool
	}{
		{"friend in credit", Standing{Friend: true, Balance: 10}, room, true},
		{"stranger", Standing{Balance: 1 << 30}, room, false},
		{"owes too much", Standing{Friend: true, Balance: -1000}, room, false},
		{"owes a bit", Standing{Friend: true, Balance: -999}, room, true},
		{"new friend uses starter credit", Standing{Friend: true, New: true, Balance: -1050}, room, true},
		{"max swarms", Standing{Friend: true}, Capacity{Swarms: 4, MaxSwarms: 4}, false},
		{"cache", Standing{Friend: true}, Capacity{MaxSwarms: 4, CacheFree: 10, Needed: 11}, false},
		{"upload", Standing{Friend: true}, Capacity{MaxSwarms: 4, UploadFull: true}, false},
		{"filters", Standing{Friend: true}, Capacity{MaxSwarms: 4, Filtered: true}, false},
		{"own master first", Standing{Friend: true}, Capacity{MaxSwarms: 4, OwnMasterNeedsSlots: true}, false},
	} {
		ok, why := p.Decide(c.s, c.c)
		if ok != c.ok || (!ok && why == "") {
			t.Errorf("%s: %v %q", c.name, ok, why)
		}
	}
	rs := []Request{
		{InfoHash: "free"},
		{InfoHash: "poor", Standing: Standing{Friend: true, Balance: -500}},
		{InfoHash: "rich", Standing: Standing{Friend: true, Balance: 500}},
		{InfoHash: "own", OwnMaster: true},
		{InfoHash: "new", Standing: Standing{Friend: true, New: true}},
	}
	p.Order(rs)
	var got []string
	for _, r := range rs {
		got = append(got, r.InfoHash)
	}
	want := []string{"own", "rich", "new", "poor", "free"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}
