package friends

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net"
	"sync"
	"testing"
	"time"
)

type fakeHandler struct {
	mu    sync.Mutex
	helps []HelpRequest
	tells []Tell
}

func (h *fakeHandler) HelpRequest(_ context.Context, _ ed25519.PublicKey, r HelpRequest) HelpReply {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.helps = append(h.helps, r)
	return HelpReply{ID: r.ID, Accept: true}
}
func (h *fakeHandler) Delivered(_ context.Context, _ ed25519.PublicKey, d Delivered) IOUMsg {
	return IOUMsg{IOU: d.IOU}
}
func (h *fakeHandler) Inquire(context.Context, ed25519.PublicKey, Inquire) Tell {
	return Tell{Swarms: []SwarmStat{{InfoHash: ih, Seeders: 1}}}
}
func (h *fakeHandler) Tell(_ context.Context, _ ed25519.PublicKey, t Tell) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tells = append(h.tells, t)
}

func startServer(t *testing.T) (*Server, string, *fakeHandler) {
	t.Helper()
	h := &fakeHandler{}
	s := &Server{ID: newID(t), Book: openBook(t), Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s, ln.Addr().String(), h
}

func TestChannelInviteThenHelp(t *testing.T) {
	s, addr, h := startServer(t)
	b := newID(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Unknown key without an invite: refused, the book unchanged.
	if _, err := Dial(ctx, b, addr, s.ID.Public(), ""); err == nil {
		t.Fatal("stranger without invite admitted")
	}
	// An invite of someone else's: refused.
	other := newID(t)
	oinv, _ := NewInvite(other, addr, time.Hour, time.Now())
	if _, err := Dial(ctx, b, addr, s.ID.Public(), oinv.String()); err == nil {
		t.Fatal("someone else's invite admitted")
	}
	if s.Book.Known(b.Public()) {
		t.Fatal("refused dialer became a friend")
	}

	inv, _ := NewInvite(s.ID, addr, time.Hour, time.Now())
	c, err := Dial(ctx, b, addr, s.ID.Public(), inv.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !s.Book.Known(b.Public()) {
		t.Fatal("invite did not make a friend")
	}
	rep, err := c.Call(ctx, HelpRequest{ID: 3, InfoHash: ih, Master: "127.0.0.9:51413"})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := rep.(HelpReply); !ok || !r.Accept || r.ID != 3 {
		t.Fatalf("reply %#v", rep)
	}
	rep, err = c.Call(ctx, Delivered{InfoHash: ih, IOU: []byte{9}})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := rep.(IOUMsg); !ok || !bytes.Equal(r.IOU, []byte{9}) {
		t.Fatalf("iou reply %#v", rep)
	}
	if _, err := c.Call(ctx, Tell{Swarms: []SwarmStat{{InfoHash: ih, Leechers: 5}}}); err != nil {
		t.Fatal(err)
	}
	rep, err = c.Call(ctx, Inquire{})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := rep.(Tell); !ok || len(r.Swarms) != 1 {
		t.Fatalf("tell %#v", rep)
	}
	h.mu.Lock()
	if len(h.helps) != 1 || len(h.tells) != 1 {
		t.Errorf("handler saw %d helps, %d tells", len(h.helps), len(h.tells))
	}
	h.mu.Unlock()

	// Now a friend: no invite needed on the next connection.
	c2, err := Dial(ctx, b, addr, s.ID.Public(), "")
	if err != nil {
		t.Fatalf("friend redial: %v", err)
	}
	// An oversized frame closes the connection.
	c2.c.Write([]byte{0x7f, 0, 0, 0, byte(TypeTell)})
	c2.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := Receive(c2.c); err == nil {
		t.Fatal("connection survived an oversized frame")
	}
	c2.Close()
}
