package friends

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Handler answers the requests a friend sends on the direct channel. The
// daemon implements it with the ledger, the repeater and its caps.
type Handler interface {
	// HelpRequest decides and, if it accepts, starts helping.
	HelpRequest(ctx context.Context, from ed25519.PublicKey, r HelpRequest) HelpReply
	// Delivered countersigns the proposal in d (or answers our latest).
	Delivered(ctx context.Context, from ed25519.PublicKey, d Delivered) IOUMsg
	// Inquire answers with the figures we hold.
	Inquire(ctx context.Context, from ed25519.PublicKey, q Inquire) Tell
	// Tell takes gossiped figures.
	Tell(ctx context.Context, from ed25519.PublicKey, t Tell)
}

// Server is the direct channel's listener.
type Server struct {
	ID      Identity
	Book    *Book
	Handler Handler
	Log     *slog.Logger
	// IdleTimeout closes a connection with no message for that long.
	// Default 2 minutes.
	IdleTimeout time.Duration
	now         func() time.Time

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// ErrNotFriend is returned for a connection from a key that is not a
// friend and brings no valid invite of ours.
var ErrNotFriend = errors.New("not a friend")

// Serve accepts connections on ln (a plain TCP listener; Serve adds TLS)
// until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = 2 * time.Minute
	}
	if s.now == nil {
		s.now = time.Now
	}
	// Any well-formed key may finish the handshake; the Hello decides.
	cfg, err := s.ID.ServerConfig(func(ed25519.PublicKey) bool { return true })
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("friends: accept: %w", err)
		}
		s.track(c, true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.track(c, false)
			defer c.Close()
			if err := s.serveConn(ctx, tls.Server(c, cfg)); err != nil {
				s.Log.Warn("friends: connection closed", "remote", c.RemoteAddr().String(), "reason", err)
			}
		}()
	}
}

func (s *Server) track(c net.Conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	if add {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
}

func (s *Server) serveConn(ctx context.Context, c *tls.Conn) error {
	c.SetDeadline(s.now().Add(30 * time.Second))
	if err := c.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	key, err := ConnKey(c.ConnectionState())
	if err != nil {
		return err
	}
	m, err := Receive(c)
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	h, ok := m.(Hello)
	if !ok {
		return fmt.Errorf("first message is %v, want hello: %w", m.Type(), ErrMalformed)
	}
	if err := s.admit(key, h, c.RemoteAddr().String()); err != nil {
		return err
	}
	if err := Send(c, Hello{Version: ProtocolVersion}); err != nil {
		return err
	}
	for {
		c.SetDeadline(s.now().Add(s.IdleTimeout))
		m, err := Receive(c)
		if err != nil {
			return err
		}
		var reply Message
		switch v := m.(type) {
		case HelpRequest:
			reply = s.Handler.HelpRequest(ctx, key, v)
		case Delivered:
			reply = s.Handler.Delivered(ctx, key, v)
		case Inquire:
			reply = s.Handler.Inquire(ctx, key, v)
		case Tell:
			s.Handler.Tell(ctx, key, v)
		case EverseedRequest:
			reply = answerEverseed(ctx, s.Handler, key, v)
		case Beacon:
			// A count alone needs no answer; the friend inquires if it wants.
		default:
			return fmt.Errorf("unexpected %v: %w", m.Type(), ErrMalformed)
		}
		if reply != nil {
			if err := Send(c, reply); err != nil {
				return err
			}
		}
	}
}

// admit lets a friend in, or a stranger that brings a valid invite we
// issued (which makes it a friend).
func (s *Server) admit(key ed25519.PublicKey, h Hello, remote string) error {
	if s.Book.Known(key) {
		return nil
	}
	if h.Invite == "" {
		return fmt.Errorf("%s without invite: %w", NewID(key).Short(), ErrNotFriend)
	}
	inv, err := ParseInvite(h.Invite, s.now())
	if err != nil {
		return fmt.Errorf("%s: %w", NewID(key).Short(), err)
	}
	if !bytes.Equal(inv.Key, s.ID.Public()) {
		return fmt.Errorf("%s brought an invite of %s, not ours: %w", NewID(key).Short(), inv.ID().Short(), ErrNotFriend)
	}
	_, err = s.Book.Add(key, remote, "invite")
	return err
}

// Conn is a client connection to a friend.
type Conn struct {
	c  *tls.Conn
	mu sync.Mutex
}

// Dial connects to the friend with key at addr and exchanges hellos;
// invite is the friend's code when we are not its friend yet.
func Dial(ctx context.Context, id Identity, addr string, key ed25519.PublicKey, invite string) (*Conn, error) {
	cfg, err := id.ClientConfig(key)
	if err != nil {
		return nil, err
	}
	d := &tls.Dialer{Config: cfg}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("friends: dial %s: %w", addr, err)
	}
	c := &Conn{c: nc.(*tls.Conn)}
	if dl, ok := ctx.Deadline(); ok {
		c.c.SetDeadline(dl)
	}
	if err := Send(c.c, Hello{Version: ProtocolVersion, Invite: invite}); err != nil {
		c.c.Close()
		return nil, err
	}
	m, err := Receive(c.c)
	if err != nil {
		c.c.Close()
		return nil, fmt.Errorf("friends: %s refused us: %w", addr, err)
	}
	if _, ok := m.(Hello); !ok {
		c.c.Close()
		return nil, fmt.Errorf("friends: %s answered %v to hello: %w", addr, m.Type(), ErrMalformed)
	}
	return c, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Call sends m and, unless m needs no answer (tell, beacon), waits for
// the reply.
func (c *Conn) Call(ctx context.Context, m Message) (Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		c.c.SetDeadline(dl)
	} else {
		c.c.SetDeadline(time.Time{})
	}
	if err := Send(c.c, m); err != nil {
		return nil, err
	}
	if m.Type() == TypeTell || m.Type() == TypeBeacon {
		return nil, nil
	}
	return Receive(c.c)
}
