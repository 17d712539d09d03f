package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
)

// procStat reads a process's resident set (VmRSS, bytes) and CPU time.
func procStat(t *testing.T, pid int) (rss int64, cpu time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("the daemon is gone: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command (which may hold spaces): utime is 14th,
	// stime 15th of the whole line; clock ticks are 100 Hz on Linux.
	f := strings.Fields(string(s[strings.LastIndexByte(string(s), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return rss, time.Duration(ut+st) * 10 * time.Millisecond
}

var plain struct {
	once sync.Once
	path string
	err  error
}

// plainBinary is a btslave built without the race detector, whose memory
// is the one users see: under -race the test binary itself would be
// measured with the detector's shadow memory (3-4 times as much).
func plainBinary(t *testing.T) string {
	if !raceBuild {
		return os.Args[0]
	}
	plain.once.Do(func() {
		dir, err := os.MkdirTemp("", "btslave-plain")
		if err != nil {
			plain.err = err
			return
		}
		plain.path = filepath.Join(dir, "btslave")
		cmd := exec.Command("go", "build", "-o", plain.path, ".")
		cmd.Env = append(os.Environ(), "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			plain.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if plain.err != nil {
		t.Fatal(plain.err)
	}
	return plain.path
}

// attack is one hostile sequence of issue #17, played on one connection.
type attack struct {
	name string
	run  func(p *lab.RawPeer) error
	// pre, when set, replaces the handshake: it plays on the bare
	// connection, before any handshake completes.
	pre func(c net.Conn) error
}

func u32be(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func hostileSequences(deepInfo []byte) []attack {
	manyExt := func(i int) []byte {
		m := map[string]any{}
		for j := range 600 {
			m[fmt.Sprintf("x%d_%d", i, j)] = 1 + j%200
		}
		return lab.ExtMsg(0, map[string]any{"m": m})
	}
	return []attack{
		{"have 0xFFFFFFFF", func(p *lab.RawPeer) error { return p.Send(lab.Msg(4, u32be(0xFFFFFFFF)...)) }, nil},
		{"bitfield 1 MiB", func(p *lab.RawPeer) error { return p.Send(lab.Msg(5, make([]byte, 1<<20)...)) }, nil},
		{"300 extended handshakes", func(p *lab.RawPeer) error {
			for i := range 300 {
				if err := p.Send(manyExt(i)); err != nil {
					return err
				}
			}
			return nil
		}, nil},
		{"64 KB nested handshake", func(p *lab.RawPeer) error {
			return p.Send(lab.Msg(20, append([]byte{0}, []byte("d1:v"+strings.Repeat("l", 32<<10)+strings.Repeat("e", 32<<10)+"e")...)...))
		}, nil},
		{"15 KB nested handshake", func(p *lab.RawPeer) error {
			return p.Send(lab.Msg(20, append([]byte{0}, []byte("d1:v"+strings.Repeat("l", 7<<10)+strings.Repeat("e", 7<<10)+"e")...)...))
		}, nil},
		{"4 GiB length", func(p *lab.RawPeer) error { return p.Send([]byte{0xff, 0xff, 0xff, 0xff, 7}) }, nil},
		{"3000 unread requests", func(p *lab.RawPeer) error {
			var b []byte
			for i := range 3000 {
				b = append(b, lab.Msg(6, append(append(u32be(uint32(i%16)), u32be(0)...), u32be(16<<10)...)...)...)
			}
			return p.Send(lab.Msg(2), b)
		}, nil},
		{"quiet", func(p *lab.RawPeer) error { return nil }, nil},
		{"messages before the handshake", nil, func(c net.Conn) error {
			hs := lab.Handshake([20]byte{}, true)
			_, err := c.Write(append(append(hs[:30:30], lab.Msg(4, u32be(0xFFFFFFFF)...)...), lab.Msg(5, make([]byte, 1<<20)...)...))
			return err
		}},
		{"garbage for a handshake", nil, func(c net.Conn) error {
			_, err := c.Write(bytes.Repeat([]byte{0xff, 0, 0x13}, 100_000))
			return err
		}},
		{"hostile metadata", func(p *lab.RawPeer) error {
			// Offer deepInfo (it hashes to the magnet swarm's info hash)
			// and serve whatever is asked.
			if err := p.Send(lab.ExtMsg(0, map[string]any{"m": map[string]any{"ut_metadata": 3}, "metadata_size": len(deepInfo)})); err != nil {
				return err
			}
			their := byte(0)
			for {
				id, body, err := p.ReadMsg(3 * time.Second)
				if err != nil {
					return nil
				}
				if id != 20 || len(body) < 2 {
					continue
				}
				if body[0] == 0 {
					if i := strings.Index(string(body), "11:ut_metadatai"); i >= 0 {
						n, _ := strconv.Atoi(strings.SplitN(string(body[i+15:]), "e", 2)[0])
						their = byte(n)
					}
					continue
				}
				s := string(body[1:])
				i := strings.Index(s, "5:piecei")
				if body[0] != 3 || i < 0 {
					continue
				}
				piece, _ := strconv.Atoi(strings.SplitN(s[i+8:], "e", 2)[0])
				begin := piece * 16 << 10
				if begin >= len(deepInfo) {
					continue
				}
				block := deepInfo[begin:min(begin+16<<10, len(deepInfo))]
				if err := p.Send(lab.ExtMsg(their, map[string]any{"msg_type": 1, "piece": piece, "total_size": len(deepInfo)}, block...)); err != nil {
					return nil
				}
			}
		}, nil},
	}
}

// Ensure a running daemon survives issue #17's hostile peers, 1,000
// connections at once: it stays up, its RSS stays within the cache budget
// + 64 MiB, its CPU is back to idle within 5 s of the attack's end, the
// hostile metadata is refused, and a good peer is still answered. The
// same, with fewer connections, for the other peer.encryption modes:
// "require" with attackers that speak MSE, "off" with plaintext ones.
func TestHostilePeersAgainstDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("plays 1,000 hostile connections")
	}
	for _, tc := range []struct {
		enc   string
		conns int
		mse   bool
	}{
		{"allow", 1000, false},
		{"require", 200, true},
		{"off", 200, false},
	} {
		t.Run(tc.enc, func(t *testing.T) { playHostile(t, tc.enc, tc.conns, tc.mse) })
	}
}

func playHostile(t *testing.T, encryption string, conns int, encrypt bool) {
	dial := lab.DialPeer
	if encrypt {
		dial = lab.DialPeerMSE
	}
	const cacheSize = 16 << 20
	dataDir := filepath.Join(t.TempDir(), "data")
	cfgPath := filepath.Join(t.TempDir(), "btslave.toml")
	os.WriteFile(cfgPath, []byte(`[peer]
listen = "127.0.0.1:0"
encryption = "`+encryption+`"
max_peers_per_torrent = 200
[api]
listen = "127.0.0.1:0"
[cache]
size = "16MiB"
[auto]
enabled = false
`), 0o600)
	env := testEnv(t)
	cli := func(args ...string) (int, string, string) {
		return run(t, env, append(args, "--config", cfgPath, "--data-dir", dataDir)...)
	}
	torrentPath, _, ihHex, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 4 << 20})
	const depth = 1 << 20
	deepInfo := []byte("d3:zzz" + strings.Repeat("l", depth) + strings.Repeat("e", depth) + "e")
	deepIH := sha1.Sum(deepInfo)

	d := startDaemonBinary(t, plainBinary(t), cfgPath, dataDir)
	pid := d.cmd.Process.Pid
	for _, arg := range []string{torrentPath, hex.EncodeToString(deepIH[:])} {
		if code, out, errOut := cli("repeat", arg); code != 0 {
			t.Fatalf("repeat %s: %d %q %q", arg, code, out, errOut)
		}
	}
	status := func() api.Status {
		code, out, errOut := cli("status", "--json")
		var st api.Status
		if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
			t.Fatalf("status: %d %v %q", code, err, errOut)
		}
		return st
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(status().Peer.Port))
	var ih [20]byte
	hex.Decode(ih[:], []byte(ihHex))
	baseRSS, _ := procStat(t, pid)
	budget := int64(cacheSize + 64<<20)

	// The attack: all connections at once, each one sequence.
	seqs := hostileSequences(deepInfo)
	var peak int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if rss, _ := procStat(t, pid); rss > peak {
					peak = rss
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	dialErrs := 0
	for i := range conns {
		a := seqs[i%len(seqs)]
		target := ih
		if a.name == "hostile metadata" {
			target = deepIH
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.pre != nil {
				var d net.Dialer
				c, err := d.DialContext(ctx, "tcp", addr)
				if err == nil {
					a.pre(c)
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					c.Read(make([]byte, 1024))
					c.Close()
				}
				return
			}
			p, err := dial(ctx, addr, target, i%2 == 0)
			if err != nil {
				mu.Lock()
				dialErrs++
				mu.Unlock()
				return
			}
			defer p.Close()
			a.run(p)
			p.Drain(2 * time.Second) // hold the connection a moment
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	ended := time.Now()
	t.Logf("attack (%s): %d connections, %d not accepted; RSS %d MiB before, peak %d MiB (budget %d MiB)", encryption, conns, dialErrs, baseRSS>>20, peak>>20, budget>>20)

	select {
	case err := <-d.done:
		t.Fatalf("the daemon died: %v", err)
	default:
	}
	if peak > budget {
		t.Errorf("peak RSS %d MiB over the budget of %d MiB", peak>>20, budget>>20)
	}
	// CPU back to idle within 5 s: the second after that uses under 10%
	// of a core.
	time.Sleep(time.Until(ended.Add(4 * time.Second)))
	_, c0 := procStat(t, pid)
	time.Sleep(time.Second)
	_, c1 := procStat(t, pid)
	if used := c1 - c0; used > 100*time.Millisecond {
		t.Errorf("the daemon used %v of CPU in the second 4-5 s after the attack", used)
	}

	// A good peer is still answered: its extended handshake and what the
	// daemon holds (HAVE NONE, BITFIELD) come within 3 s.
	p, err := dial(ctx, addr, ih, true)
	if err != nil {
		t.Fatalf("a good peer cannot connect: %v", err)
	}
	defer p.Close()
	p.Send(lab.ExtMsg(0, map[string]any{"m": map[string]any{"ut_metadata": 3}, "v": "good/1.0"}), lab.Msg(15), lab.Msg(2))
	var got []byte
	for len(got) < 2 {
		id, _, err := p.ReadMsg(3 * time.Second)
		if err != nil {
			t.Fatalf("the good peer heard %v, then %v", got, err)
		}
		if id == 20 || id == 15 || id == 5 || id == 14 {
			got = append(got, id)
		}
	}
	st := status()
	found := false
	for _, tt := range st.Torrents {
		if tt.InfoHash == hex.EncodeToString(deepIH[:]) {
			found = true
			if !strings.Contains(tt.Error, "too deep") {
				t.Errorf("the hostile-metadata swarm shows %q, want the refusal", tt.Error)
			}
		}
	}
	if !found {
		t.Errorf("the info-hash swarm is gone from status: %+v", st.Torrents)
	}
}
