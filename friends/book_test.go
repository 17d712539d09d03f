package friends

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

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

func TestBookInviteKeptUntilUsed(t *testing.T) {
	bk := openBook(t)
	a := newID(t)
	inv, err := NewInvite(a, "127.0.0.2:7980", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bk.AddInvite(inv); err != nil {
		t.Fatal(err)
	}
	f, err := bk.Get(a.ID())
	if err != nil || f.Invite != inv.String() || f.Addr != "127.0.0.2:7980" || f.Via != "invite" {
		t.Fatalf("after AddInvite: %+v %v", f, err)
	}
	if err := bk.InviteUsed(a.ID()); err != nil {
		t.Fatal(err)
	}
	if f, _ := bk.Get(a.ID()); f.Invite != "" {
		t.Fatalf("invite kept after use: %+v", f)
	}
	if _, err := bk.Get(newID(t).ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get unknown: %v", err)
	}
}

// Ensure that Deny drops a pending request only, never a friend, and
// that SetName labels a friend and survives a second Add.
func TestBookDenyAndName(t *testing.T) {
	bk := openBook(t)
	a, b := newID(t), newID(t)
	if _, err := bk.Request(a.Public(), "127.0.0.2:1", "ask"); err != nil {
		t.Fatal(err)
	}
	if _, err := bk.Add(b.Public(), "127.0.0.3:1", "invite"); err != nil {
		t.Fatal(err)
	}
	if err := bk.Deny(b.ID()); !errors.Is(err, ErrNotFound) || !bk.Known(b.Public()) {
		t.Fatalf("deny of a friend: %v, still a friend %v", err, bk.Known(b.Public()))
	}
	if err := bk.Deny(a.ID()); err != nil {
		t.Fatal(err)
	}
	if p, _ := bk.Pending(); len(p) != 0 || bk.Known(a.Public()) {
		t.Fatalf("denied request: pending %v, friend %v", p, bk.Known(a.Public()))
	}
	if err := bk.Deny(a.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second deny: %v", err)
	}
	if _, err := bk.SetName(b.ID(), "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := bk.Add(b.Public(), "127.0.0.4:1", "accepted"); err != nil {
		t.Fatal(err)
	}
	if f, err := bk.Get(b.ID()); err != nil || f.Name != "bob" || f.Addr != "127.0.0.4:1" {
		t.Fatalf("after a second add: %+v %v", f, err)
	}
	if _, err := bk.SetName(a.ID(), "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("name of a stranger: %v", err)
	}
}
