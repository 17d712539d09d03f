package friends

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func newID(t testing.TB) Identity {
	t.Helper()
	id, err := LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// handshake runs a TLS handshake over loopback between server a (accepting
// keys for which accept says yes) and client b (pinning want).
func handshake(t *testing.T, a, b Identity, accept func(ed25519.PublicKey) bool, want ed25519.PublicKey) (srvKey, cliKey ed25519.PublicKey, srvErr, cliErr error) {
	t.Helper()
	scfg, err := a.ServerConfig(accept)
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := b.ClientConfig(want)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			srvErr = err
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if srvErr = tc.Handshake(); srvErr == nil {
			cliKey, srvErr = ConnKey(tc.ConnectionState())
			// Read the client's hello so the client's handshake finishes.
			_, srvErr = Receive(tc)
		}
	}()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), ccfg)
	if err != nil {
		cliErr = err
	} else {
		st := c.ConnectionState()
		if st.Version != tls.VersionTLS13 {
			t.Errorf("TLS version %x, want 1.3", st.Version)
		}
		srvKey, cliErr = ConnKey(st)
		if cliErr == nil {
			cliErr = Send(c, Hello{Version: ProtocolVersion})
		}
		c.Close()
	}
	<-done
	return
}

func TestTLSMutualPinning(t *testing.T) {
	a, b, c := newID(t), newID(t), newID(t)
	only := func(k ed25519.PublicKey) func(ed25519.PublicKey) bool {
		return func(x ed25519.PublicKey) bool { return bytes.Equal(x, k) }
	}
	sk, ck, se, ce := handshake(t, a, b, only(b.Public()), a.Public())
	if se != nil || ce != nil {
		t.Fatalf("friends: server %v, client %v", se, ce)
	}
	if !bytes.Equal(sk, a.Public()) || !bytes.Equal(ck, b.Public()) {
		t.Fatal("keys seen in the handshake are not the identities")
	}
	// The client pins a, but c answers: refused by the client.
	_, _, _, ce = handshake(t, c, b, only(b.Public()), a.Public())
	if ce == nil || !strings.Contains(ce.Error(), "not pinned") {
		t.Fatalf("client dialed an impostor: %v", ce)
	}
	// The server accepts only b; c dials it: refused by the server.
	_, _, se, _ = handshake(t, a, c, only(b.Public()), a.Public())
	if se == nil || !errors.Is(se, ErrNotPinned) && !strings.Contains(se.Error(), "not pinned") {
		t.Fatalf("server accepted an unknown key: %v", se)
	}
}

func TestFrameLimits(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, TypeBeacon, make([]byte, MaxFrame)); !errors.Is(err, ErrFrameTooBig) {
		t.Fatalf("oversized write: %v", err)
	}
	// A length prefix above the limit is refused before reading the body.
	r := bytes.NewReader([]byte{0x00, 0x10, 0x00, 0x01, byte(TypeBeacon)})
	if _, _, err := ReadFrame(r); !errors.Is(err, ErrFrameTooBig) {
		t.Fatalf("oversized read: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 0})); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty frame: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 9, 1})); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short frame: %v", err)
	}
}

const ih = "0123456789abcdef0123456789abcdef01234567"

func TestMessagesRoundTrip(t *testing.T) {
	msgs := []Message{
		Hello{Version: 1, Invite: "BTSF1-X"},
		HelpRequest{ID: 7, InfoHash: ih, Magnet: "magnet:?xt=urn:btih:" + ih, Metainfo: []byte("d4:infode"), Master: "127.0.0.5:51413"},
		HelpReply{ID: 7, Accept: false, Reason: "balance below credit limit"},
		Delivered{InfoHash: ih, IOU: []byte{1, 2, 3}},
		IOUMsg{IOU: []byte{4}, Stale: true},
		Beacon{Count: 3},
		Inquire{InfoHashes: []string{ih}},
		Tell{Swarms: []SwarmStat{{InfoHash: ih, Age: 60, Downloaded: 9, Seeders: 1, Leechers: 40}}},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := Send(&buf, m); err != nil {
			t.Fatalf("send %v: %v", m.Type(), err)
		}
	}
	for _, want := range msgs {
		got, err := Receive(&buf)
		if err != nil {
			t.Fatalf("receive %v: %v", want.Type(), err)
		}
		if g, w := mustJSON(t, got), mustJSON(t, want); g != w || got.Type() != want.Type() {
			t.Fatalf("got %s, want %s", g, w)
		}
	}
}

func mustJSON(t *testing.T, m Message) string {
	b, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMalformedMessagesRejected(t *testing.T) {
	for _, c := range []struct {
		t Type
		p string
	}{
		{99, `{}`},
		{TypeHello, `{"version":0}`},
		{TypeHello, `{"version":1} {}`},
		{TypeHello, `not json`},
		{TypeHelpRequest, `{"info_hash":"xyz","master":"127.0.0.1:1"}`},
		{TypeHelpRequest, `{"info_hash":"` + strings.ToUpper(ih) + `","master":"127.0.0.1:1"}`},
		{TypeHelpRequest, `{"info_hash":"` + ih + `","master":"nowhere"}`},
		{TypeHelpRequest, `{"info_hash":"` + ih + `","master":"127.0.0.1:1","magnet":"http://x"}`},
		{TypeHelpReply, `{"reason":"` + strings.Repeat("x", MaxReasonLen+1) + `"}`},
		{TypeDelivered, `{"info_hash":"` + ih + `"}`},
		{TypeIOU, `{"iou":"` + strings.Repeat("A", 400) + `"}`},
		{TypeBeacon, `{"count":-1}`},
		{TypeTell, `{"swarms":[{"info_hash":"` + ih + `","seeders":-1}]}`},
	} {
		if m, err := Decode(c.t, []byte(c.p)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%v %s: got %v, %v; want ErrMalformed", c.t, c.p, m, err)
		}
	}
}

func TestGossipMergeFreshest(t *testing.T) {
	var g Gossip
	now := time.Unix(1_800_000_000, 0)
	a, b := newID(t).ID(), newID(t).ID()
	g.Merge(a, Tell{Swarms: []SwarmStat{{InfoHash: ih, Age: 100, Downloaded: 50, Seeders: 2, Leechers: 10}}}, now)
	// Older figures from b: seeders stay, but the higher downloaded count wins.
	g.Merge(b, Tell{Swarms: []SwarmStat{{InfoHash: ih, Age: 500, Downloaded: 70, Seeders: 9}}}, now)
	s, _ := g.Get(ih)
	if s.From != a || s.Seeders != 2 || s.Downloaded != 70 {
		t.Fatalf("after older tell: %+v", s)
	}
	// Fresher from b replaces the figures, keeps the max downloaded.
	g.Merge(b, Tell{Swarms: []SwarmStat{{InfoHash: ih, Age: 5, Downloaded: 60, Seeders: 1, Leechers: 30}}}, now)
	s, _ = g.Get(ih)
	if s.From != b || s.Leechers != 30 || s.Downloaded != 70 || g.Len() != 1 {
		t.Fatalf("after fresher tell: %+v", s)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(byte(TypeHelpRequest), []byte(`{"id":1,"info_hash":"`+ih+`","master":"127.0.0.1:1"}`))
	f.Add(byte(TypeTell), []byte(`{"swarms":[{"info_hash":"`+ih+`","age":1}]}`))
	f.Add(byte(TypeEverseedRequest), []byte(`{"id":1,"info_hash":"`+ih+`","metainfo":"ZGU=","size":5,"seed":"127.0.0.1:6881"}`))
	f.Add(byte(TypeEverseedReply), []byte(`{"id":1,"accept":true}`))
	f.Add(byte(TypeHello), []byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, typ byte, p []byte) {
		m, err := Decode(Type(typ), p)
		if err != nil {
			return
		}
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded %v does not re-encode: %v", m.Type(), err)
		}
		if _, err := Decode(m.Type(), b); err != nil {
			t.Fatalf("re-encoded %v does not decode: %v", m.Type(), err)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	Send(&buf, Beacon{Count: 1})
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, p, err := ReadFrame(bytes.NewReader(b))
		if err != nil {
			return
		}
		if 1+len(p) > MaxFrame {
			t.Fatalf("frame of %d bytes passed", len(p))
		}
		var out bytes.Buffer
		if err := WriteFrame(&out, typ, p); err != nil || !bytes.HasPrefix(b, out.Bytes()) {
			t.Fatalf("re-encoded frame differs: %v", err)
		}
	})
}
