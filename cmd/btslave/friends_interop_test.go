package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/internal/store"
	"github.com/btslave/btslave/ledger"
)

// The friends acceptance swarm: a small torrent, one Transmission seed
// capped at friendsSeedUp, and daemons whose own upload is capped: A's at
// friendsOwnUp (why it cashes in), B's at friendsHelperUp.
const (
	friendsSize     = 2 << 20
	friendsSeedUp   = 640 << 10
	friendsOwnUp    = 64 << 10
	friendsHelperUp = 1 << 20
)

// friendsLab is the acceptance test's programs: opentracker, the seed,
// and three daemons A, B, C, each with its own transmission-daemon
// master.
type friendsLab struct {
	t       *testing.T
	env     map[string]string
	ot      *lab.Opentracker
	seed    *lab.Transmission
	nodes   map[string]*friendsNode
	torrent map[string]string // name → .torrent path
	data    map[string]string // name → the seed's copy
	hash    map[string]string // name → info hash
}

type friendsNode struct {
	cfg, data string
	master    *lab.Transmission
	proc      *daemonProc
}

func (n *friendsNode) masterAddr() string {
	return netip.AddrPortFrom(n.master.Addr, uint16(n.master.PeerPort)).String()
}

// startFriendsLab starts the tracker and the seed of torrents "x" and
// "y", the masters and the daemons' configurations (not the daemons).
func startFriendsLab(t *testing.T, upA int64) *friendsLab {
	t.Helper()
	lab.Require(t, "transmission-daemon", "opentracker")
	l := &friendsLab{t: t, env: testEnv(t), nodes: map[string]*friendsNode{}, torrent: map[string]string{}, data: map[string]string{}, hash: map[string]string{}}
	l.ot = lab.StartOpentracker(t)
	l.seed = lab.StartTransmission(t, lab.TransmissionOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{"x", "y"} {
		tp, dp, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: friendsSize, Name: name + ".bin", Announce: []string{l.ot.HTTPAnnounce}})
		if err := l.ot.Whitelist(ih); err != nil {
			t.Fatal(err)
		}
		id, err := l.seed.AddTorrent(tp, filepath.Dir(dp))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.seed.WaitComplete(ctx, id); err != nil {
			t.Fatal(err)
		}
		l.torrent[name], l.data[name], l.hash[name] = tp, dp, ih
	}
	if err := l.seed.SetLimits(friendsSeedUp, 0); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		up := int64(friendsHelperUp)
		if n == "a" {
			up = upA
		}
		dir := t.TempDir()
		m := lab.StartTransmission(t, lab.TransmissionOptions{})
		body := fmt.Sprintf(`[peer]
listen = "%s:0"
ipv6 = false
upload_limit = "%d"
[api]
listen = "127.0.0.1:0"
[cache]
size = "32MiB"
[repeater]
swarm_cache = "32MiB"
[master]
kind = "transmission"
url = %q
peer_address = %q
linger = "1m"
[friends]
enabled = true
listen = %q
accept = "auto"
starter_credit = "0"
credit_limit = "64MiB"
report_interval = "2s"
`, lab.NextAddr(), up, m.RPCURL, netip.AddrPortFrom(m.Addr, uint16(m.PeerPort)).String(), freePort(t))
		node := &friendsNode{cfg: filepath.Join(dir, "btslave.toml"), data: filepath.Join(dir, "data"), master: m}
		if n == "b" {
			// B gives new friends credit: A's first cash-in is helped.
			body = strings.Replace(body, `starter_credit = "0"`, `starter_credit = "32MiB"`, 1)
		}
		if err := os.WriteFile(node.cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		l.nodes[n] = node
	}
	return l
}

func (l *friendsLab) cli(n string, args ...string) (int, string, string) {
	return run(l.t, l.env, append(args, "--config", l.nodes[n].cfg, "--data-dir", l.nodes[n].data)...)
}

// invite has from invite and to add the code, daemons stopped.
func (l *friendsLab) invite(from, to string) {
	l.t.Helper()
	code, out, errOut := l.cli(from, "friends", "invite")
	if code != 0 {
		l.t.Fatalf("%s: invite: %d %s", from, code, errOut)
	}
	inv := regexp.MustCompile(`BTSF1-[A-Z2-7]+`).FindString(out)
	if code, _, errOut := l.cli(to, "friends", "add", inv); code != 0 {
		l.t.Fatalf("%s: add %s's invite: %d %s", to, from, code, errOut)
	}
}

// meet has daemons ns repeat the torrent tp (announced to the lab's
// opentracker) and waits until each lists every other as a friend: they
// met in its swarm and said bts_friends hellos (accept = "auto").
func (l *friendsLab) meet(tp string, ns ...string) {
	l.t.Helper()
	for _, n := range ns {
		if code, out, errOut := l.cli(n, "repeat", tp); code != 0 {
			l.t.Fatalf("%s: repeat the meeting torrent: %d %q %s", n, code, out, errOut)
		}
	}
	for _, n := range ns {
		for _, m := range ns {
			if m != n {
				waitCLIDir(l.t, l.env, l.nodes[n].cfg, l.nodes[n].data, friends.NewID(l.key(m)).String(), 20*time.Second, "friends", "list")
			}
		}
	}
}

// download adds torrent name to n's master and waits until it is done.
func (l *friendsLab) download(ctx context.Context, n, name string, during func()) time.Duration {
	l.t.Helper()
	m := l.nodes[n].master
	id, err := m.AddTorrent(l.torrent[name], "")
	if err != nil {
		l.t.Fatal(err)
	}
	start := time.Now()
	if during != nil {
		during()
	}
	st, err := m.WaitComplete(ctx, id)
	if err != nil {
		l.t.Fatalf("%s's master did not finish %s: %v (%+v)", n, name, err, st)
	}
	took := time.Since(start)
	lab.VerifyFile(l.t, filepath.Join(m.DownloadDir, name+".bin"), l.data[name])
	return took
}

// stop ends the daemons (SIGTERM) so that their data dirs can be read.
func (l *friendsLab) stop() {
	for _, n := range l.nodes {
		if n.proc == nil {
			continue
		}
		n.proc.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.proc.exited:
		case <-time.After(10 * time.Second):
			l.t.Errorf("a daemon did not stop in 10s")
		}
		n.proc = nil
	}
}

// history reads n's ledger: every IOU it stores for the pair
// debtor→creditor, encoded.
func (l *friendsLab) history(n, debtor, creditor string) [][]byte {
	l.t.Helper()
	db, err := store.Open(l.nodes[n].data, store.Options{})
	if err != nil {
		l.t.Fatal(err)
	}
	defer db.Close()
	id, err := friends.LoadIdentity(l.nodes[n].data)
	if err != nil {
		l.t.Fatal(err)
	}
	lg, err := ledger.Open(db.DB, ledger.Options{Identity: id})
	if err != nil {
		l.t.Fatal(err)
	}
	es, err := lg.History(l.key(debtor), l.key(creditor))
	if err != nil {
		l.t.Fatal(err)
	}
	var out [][]byte
	for _, e := range es {
		b, _ := e.IOU.MarshalBinary()
		out = append(out, b)
	}
	return out
}

func (l *friendsLab) key(n string) []byte {
	id, err := friends.LoadIdentity(l.nodes[n].data)
	if err != nil {
		l.t.Fatal(err)
	}
	return id.Public()
}

// Ensure the friends acceptance scenario with real programs: three
// daemons A, B, C, each with its own transmission-daemon master. A and B
// become friends by invite (each adds the other's code); C meets A, then
// B, in the swarm of a torrent they repeat (bts_friends hellos, accept =
// "auto"). A's
// master downloads a seed-starved torrent while A's own upload is capped;
// A cashes in; B helps; both ledgers hold the same countersigned IOUs,
// each no larger than what A's master received. Then B's master
// downloads: A helps B (which it owes), a stranger's key is refused, and
// C, a friend with no credit at A (starter_credit 0), is refused (asked
// first, while A's upload is idle: caps are weighed before balances).
func TestInteropFriendsCashin(t *testing.T) {
	l := startFriendsLab(t, friendsOwnUp)
	l.invite("a", "b")
	l.invite("b", "a")
	for _, n := range []string{"a", "b", "c"} {
		l.nodes[n].proc = startDaemon(t, l.nodes[n].cfg, l.nodes[n].data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	ihX, ihY := l.hash["x"], l.hash["y"]
	idA := friends.NewID(l.key("a")).String()
	meetT, _, meetIH, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 256 << 10, Name: "meet.bin", Announce: []string{l.ot.HTTPAnnounce}})
	if err := l.ot.Whitelist(meetIH); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l.meet(meetT, "a", "c")
	t.Logf("A and C met in a swarm in %v", time.Since(start).Round(100*time.Millisecond))

	// C, with no credit at A (A idle: no cap is in the way), is refused
	// (asked while A is its only friend: B would take it on credit).
	if code, out, errOut := l.cli("c", "cashin", ihY, "--master", l.nodes["c"].masterAddr()); code == 0 || !strings.Contains(out+errOut, "starter_credit") {
		t.Errorf("C's cashin: %d %q %q, want refused for starter_credit", code, out, errOut)
	}
	start = time.Now()
	l.meet(meetT, "b", "c")
	t.Logf("B and C met in a swarm in %v", time.Since(start).Round(100*time.Millisecond))
	tookX := l.download(ctx, "a", "x", func() {
		code, out, errOut := l.cli("a", "cashin", ihX, "--master", l.nodes["a"].masterAddr(), "--torrent", l.torrent["x"])
		if code != 0 || !strings.Contains(out, friends.NewID(l.key("b")).String()) {
			t.Fatalf("A's cashin: %d %q %s", code, out, errOut)
		}
	})
	t.Logf("A's master finished x in %v with B's help", tookX.Round(100*time.Millisecond))
	// A's status: who helps and how much arrived.
	code, out, _ := l.cli("a", "status")
	if code != 0 || !strings.Contains(out, "helped by") || !strings.Contains(out, ihX[:8]) {
		t.Errorf("A's status does not show B's help: %q", out)
	}
	time.Sleep(5 * time.Second) // two report intervals: B's IOUs for x

	// B's master downloads y; B cashes in with A, which owes it.
	tookY := l.download(ctx, "b", "y", func() {
		// A refuses while its capped upload is still full from x (its
		// own helper seeds for a while): ask again, as an owner would.
		for {
			code, out, errOut := l.cli("b", "cashin", ihY, "--master", l.nodes["b"].masterAddr(), "--torrent", l.torrent["y"])
			if code == 0 && strings.Contains(out, idA) {
				break
			}
			if !strings.Contains(errOut, "upload limit reached") || ctx.Err() != nil {
				t.Fatalf("B's cashin with A: %d %q %s", code, out, errOut)
			}
			time.Sleep(2 * time.Second)
		}
	})
	t.Logf("B's master finished y in %v with A's help", tookY.Round(100*time.Millisecond))
	// A stranger (a key A never met) cannot even ask.
	stranger, err := friends.LoadIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := friends.Dial(ctx, stranger, friendsAddr(t, l, "a"), l.key("a"), ""); err == nil {
		c.Close()
		t.Error("A let a stranger's key in")
	}
	time.Sleep(5 * time.Second) // two report intervals: A's IOU for y
	l.stop()

	for _, pair := range [][2]string{{"a", "b"}, {"b", "a"}} {
		debtor, creditor := pair[0], pair[1]
		hd, hc := l.history(debtor, debtor, creditor), l.history(creditor, debtor, creditor)
		if len(hd) == 0 {
			t.Errorf("%s→%s: no IOU", debtor, creditor)
			continue
		}
		if len(hd) != len(hc) {
			t.Errorf("%s→%s: debtor holds %d IOUs, creditor %d", debtor, creditor, len(hd), len(hc))
			continue
		}
		var u ledger.IOU
		for i := range hd {
			if !bytes.Equal(hd[i], hc[i]) {
				t.Errorf("%s→%s: IOU %d differs", debtor, creditor, i)
			}
		}
		if err := u.UnmarshalBinary(hd[len(hd)-1]); err != nil || u.Verify() != nil {
			t.Fatalf("%s→%s: last IOU: %v", debtor, creditor, err)
		}
		if u.Total > friendsSize {
			t.Errorf("%s→%s: %d bytes credited for a %d-byte torrent", debtor, creditor, u.Total, friendsSize)
		}
		t.Logf("%s owes %s %d bytes in %d IOUs", debtor, creditor, u.Total, len(hd))
	}
	for _, n := range []string{"a", "b"} {
		_, out, _ := l.cli(n, "ledger")
		t.Logf("%s's ledger:\n%s", n, out)
	}
}

func friendsAddr(t *testing.T, l *friendsLab, n string) string {
	t.Helper()
	b, err := os.ReadFile(l.nodes[n].cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^listen = "(127\.0\.0\.1:\d+)"$`).FindAllStringSubmatch(string(b), -1)
	for _, x := range m {
		if !strings.HasSuffix(x[1], ":0") {
			return x[1]
		}
	}
	t.Fatal("no friends.listen")
	return ""
}

// TestFriendsBench (FRIENDS_BENCH=1, bench/run.sh friends) prints how much
// sooner A's master finishes the seed-starved torrent with B's help than
// with A's own capped helper alone, and each side's ledger afterwards.
func TestFriendsBench(t *testing.T) {
	if os.Getenv("FRIENDS_BENCH") == "" {
		t.Skip("FRIENDS_BENCH=1 runs it (bench/run.sh friends)")
	}
	run := func(cashin bool) (time.Duration, string) {
		l := startFriendsLab(t, friendsOwnUp)
		l.invite("a", "b")
		l.invite("b", "a")
		for _, n := range []string{"a", "b"} {
			l.nodes[n].proc = startDaemon(t, l.nodes[n].cfg, l.nodes[n].data)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		took := l.download(ctx, "a", "x", func() {
			if !cashin {
				return
			}
			if code, _, errOut := l.cli("a", "cashin", l.hash["x"], "--master", l.nodes["a"].masterAddr(), "--torrent", l.torrent["x"]); code != 0 {
				t.Fatalf("cashin: %s", errOut)
			}
		})
		time.Sleep(5 * time.Second)
		l.stop()
		var b strings.Builder
		for _, n := range []string{"a", "b"} {
			_, out, _ := l.cli(n, "ledger")
			fmt.Fprintf(&b, "  %s's ledger:\n", strings.ToUpper(n))
			for line := range strings.Lines(out) {
				b.WriteString("    " + line)
			}
		}
		return took, b.String()
	}
	alone, _ := run(false)
	helped, ledgers := run(true)
	fmt.Printf("  A's master, %d MiB seed-starved (seed %d KiB/s, A's upload %d KiB/s, B's %d KiB/s): %.1f s alone, %.1f s with B's help: %.1f s sooner (%.0f%% of the time)\n",
		friendsSize>>20, friendsSeedUp>>10, friendsOwnUp>>10, friendsHelperUp>>10, alone.Seconds(), helped.Seconds(),
		(alone - helped).Seconds(), 100*helped.Seconds()/alone.Seconds())
	fmt.Print(ledgers)
}
