package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/btslave/btslave/internal/api"
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
	seedID  map[string]int    // name → the seed's torrent id
	// downloading is the master's id of the torrent download is waiting
	// for, set before it calls during.
	downloading int
}

type friendsNode struct {
	cfg, data string
	peerIP    netip.Addr // the daemon's peer listen address
	master    *lab.Transmission
	proc      *daemonProc
}

func (n *friendsNode) masterAddr() string {
	return netip.AddrPortFrom(n.master.Addr, uint16(n.master.PeerPort)).String()
}

// friendsLabOptions sizes a friends lab; zero fields take the
// acceptance's constants.
type friendsLabOptions struct {
	size     int64 // of each torrent; friendsSize
	upA      int64 // A's peer upload_limit; friendsOwnUp
	upHelper int64 // B's and C's; friendsHelperUp
	seedUp   int64 // the seed's; friendsSeedUp
}

// startFriendsLab starts the tracker and the seed of torrents "x", "y"
// and "z", the masters and the daemons' configurations (not the daemons).
// [friends] has starter_credit "0" and credit_limit "64MiB"; friendsConf
// (node → [friends] lines "key = value") replaces or adds keys.
func startFriendsLab(t *testing.T, o friendsLabOptions, friendsConf map[string][]string) *friendsLab {
	t.Helper()
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.size, friendsSize)
	def(&o.upA, friendsOwnUp)
	def(&o.upHelper, friendsHelperUp)
	def(&o.seedUp, friendsSeedUp)
	lab.Require(t, "transmission-daemon", "opentracker")
	l := &friendsLab{t: t, env: testEnv(t), nodes: map[string]*friendsNode{}, torrent: map[string]string{}, data: map[string]string{}, hash: map[string]string{}, seedID: map[string]int{}}
	l.ot = lab.StartOpentracker(t)
	l.seed = lab.StartTransmission(t, lab.TransmissionOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{"x", "y", "z"} {
		tp, dp, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: o.size, Name: name + ".bin", Announce: []string{l.ot.HTTPAnnounce}})
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
		l.torrent[name], l.data[name], l.hash[name], l.seedID[name] = tp, dp, ih, id
	}
	if err := l.seed.SetLimits(o.seedUp, 0); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		up := o.upHelper
		if n == "a" {
			up = o.upA
		}
		dir := t.TempDir()
		m := lab.StartTransmission(t, lab.TransmissionOptions{})
		ip := lab.NextAddr()
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
max_swarms = 6
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
report_interval = "1s"
`, ip, up, m.RPCURL, netip.AddrPortFrom(m.Addr, uint16(m.PeerPort)).String(), freePort(t))
		node := &friendsNode{cfg: filepath.Join(dir, "btslave.toml"), data: filepath.Join(dir, "data"), master: m, peerIP: ip}
		for _, kv := range friendsConf[n] { // [friends] is the last table
			key, _, _ := strings.Cut(kv, " =")
			if re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` = .*$`); re.MatchString(body) {
				body = re.ReplaceAllLiteralString(body, kv)
			} else {
				body += kv + "\n"
			}
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
	l.downloading = id
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
// "auto"). C's master downloads z and C cashes in with A, which helps:
// the countersigned IOUs put C's balance at A below A's small
// credit_limit, and C's next request is refused by A for it (logged, the
// ledger unchanged). A's master downloads a seed-starved torrent while
// A's own upload is capped; A's daemon cashes in by itself (auto_cashin,
// on the swarm figures its master got from the tracker); C (which owes A
// most, so asked first) and B help (cashin_helpers 2); both ledgers of each pair hold the
// same countersigned IOUs, each no larger than what the master received.
// Then B's master downloads: A helps B (which it owes), and a stranger's
// key cannot even ask. (A friend before free repeating at max_swarms is
// internal/daemon TestFriendHelpBeforeFreeRepeating.)
func TestInteropFriendsCashin(t *testing.T) {
	// A gives anyone 32 KiB of credit: its help with z puts C below it.
	const creditA = 32 << 10
	// A cashes in by itself (auto_cashin) when its master's swarm, as
	// the master's tracker says, has a downloader per seed.
	l := startFriendsLab(t, friendsLabOptions{}, map[string][]string{
		"a": {`starter_credit = "32KiB"`, `credit_limit = "32KiB"`, `auto_cashin = true`, `starved_ratio = 1.0`},
		"b": {`starter_credit = "32MiB"`},
	})
	l.invite("a", "b")
	l.invite("b", "a")
	for _, n := range []string{"a", "b", "c"} {
		l.nodes[n].proc = startDaemon(t, l.nodes[n].cfg, l.nodes[n].data)
	}
	procA := l.nodes["a"].proc
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	ihX, ihY, ihZ := l.hash["x"], l.hash["y"], l.hash["z"]
	idA, idB, idC := friends.NewID(l.key("a")).String(), friends.NewID(l.key("b")).String(), friends.NewID(l.key("c")).String()
	meetT, _, meetIH, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 256 << 10, Name: "meet.bin", Announce: []string{l.ot.HTTPAnnounce}})
	if err := l.ot.Whitelist(meetIH); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l.meet(meetT, "a", "c")
	t.Logf("A and C met in a swarm in %v", time.Since(start).Round(100*time.Millisecond))

	// C's master downloads z with A's help (A is C's only friend yet),
	// until A's IOUs, countersigned by C, put C below A's credit_limit;
	// then C's master drops z, so that A delivers no more.
	mc := l.nodes["c"].master
	zid, err := mc.AddTorrent(l.torrent["z"], "")
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if code, out, errOut := l.cli("c", "cashin", ihZ, "--master", l.nodes["c"].masterAddr(), "--torrent", l.torrent["z"]); code != 0 || !strings.Contains(out, "friend "+idA+" helps") {
		t.Fatalf("C's cashin: %d %q %s", code, out, errOut)
	}
	for deadline := time.Now().Add(30 * time.Second); l.friend("a", "c").Balance <= creditA; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("C owes A %d bytes %v after A began to help with z; want more than A's credit_limit %d", l.friend("a", "c").Balance, time.Since(start), creditA)
		}
	}
	tookZ := time.Since(start)
	if err := mc.Remove(zid, true); err != nil {
		t.Fatal(err)
	}
	// One more report interval: the last of A's IOUs for z.
	time.Sleep(1500 * time.Millisecond)
	before := l.friend("a", "c")
	t.Logf("C's master was in debt to A beyond the credit limit %v after its cashin; C owes A %d bytes", tookZ.Round(100*time.Millisecond), before.Balance)
	if c := l.friend("c", "a"); c.Balance != -before.Balance {
		t.Errorf("C's ledger: balance with A %d, A's with C %d; want opposite", c.Balance, before.Balance)
	}
	// C's next request is refused by A for its balance (asked again while
	// A's upload meter still counts z: caps are weighed first).
	start = time.Now()
	for {
		code, out, errOut := l.cli("c", "cashin", ihY, "--master", l.nodes["c"].masterAddr(), "--torrent", l.torrent["y"])
		if code == 0 {
			t.Fatalf("C below its credit limit was helped: %q", out)
		}
		if strings.Contains(errOut, "not above -credit_limit") {
			break
		}
		if !strings.Contains(errOut, "upload limit reached") || ctx.Err() != nil {
			t.Fatalf("C's second cashin: %d %q %s, want refused for credit_limit", code, out, errOut)
		}
		time.Sleep(time.Second)
	}
	t.Logf("A refused C for credit_limit %v after z's last IOU", time.Since(start).Round(100*time.Millisecond))
	if after := l.friend("a", "c"); after.Given != before.Given || after.Taken != before.Taken {
		t.Errorf("A's ledger with C changed on a refusal: %+v, was %+v", after, before)
	}
	start = time.Now()
	l.meet(meetT, "b", "c")
	t.Logf("B and C met in a swarm in %v", time.Since(start).Round(100*time.Millisecond))

	// A's master downloads x, its swarm starved (one seed, A's master
	// downloading): A's daemon cashes in by itself, auto_cashin, without
	// any `btslave cashin`; C, which owes A, and B help.
	shortA := idA[:strings.IndexByte(idA, '-')]
	tookX := l.download(ctx, "a", "x", func() {
		for _, n := range []string{"c", "b"} {
			waitCLIDir(t, l.env, l.nodes[n].cfg, l.nodes[n].data, shortA+"'s master with "+ihX[:8], 20*time.Second, "status")
		}
	})
	t.Logf("A's master finished x in %v with B's and C's help", tookX.Round(100*time.Millisecond))
	// A's status: who helps and how much arrived.
	code, out, _ := l.cli("a", "status")
	if code != 0 || !strings.Contains(out, "helped by") || !strings.Contains(out, ihX[:8]) {
		t.Errorf("A's status does not show B's help: %q", out)
	}
	time.Sleep(3 * time.Second) // three report intervals: B's and C's IOUs for x

	// B's master downloads y; B cashes in with A, which owes it.
	tookY := l.download(ctx, "b", "y", func() {
		// A refuses while its capped upload is still full from x (its
		// own helper seeds for a while): ask again, as an owner would.
		for {
			code, out, errOut := l.cli("b", "cashin", ihY, "--master", l.nodes["b"].masterAddr(), "--torrent", l.torrent["y"])
			if code == 0 && strings.Contains(out, "friend "+idA+" helps") {
				break
			}
			if !strings.Contains(errOut+out, "upload limit reached") || ctx.Err() != nil {
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
	time.Sleep(3 * time.Second) // three report intervals: A's IOU for y
	l.stop()
	logA := procA.log.String()
	if !regexp.MustCompile(`help request refused.*friend=` + idC[:7] + `.*not above -credit_limit`).MatchString(logA) {
		t.Error("A's log does not give the credit reason for refusing C")
	}
	// auto_cashin asked C (which owed A) before B, both helped, on the
	// figures A's master had from the tracker.
	if m := regexp.MustCompile(`auto_cashin: friends help our master with a starved swarm.* info_hash=` + ihX + `.* seeders=(\d+) leechers=(\d+) friends="?\[` + idC + ` ` + idB + `\]`).FindStringSubmatch(logA); m == nil {
		t.Errorf("A's log does not show auto_cashin helped by C then B for x:\n%s", grepLines(logA, "auto_cashin"))
	} else {
		t.Logf("A's auto_cashin for x: the tracker counted %s seeders, %s leechers", m[1], m[2])
	}

	for _, pair := range [][2]string{{"a", "b"}, {"b", "a"}, {"c", "a"}, {"a", "c"}} {
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
	for _, n := range []string{"a", "b", "c"} {
		_, out, _ := l.cli(n, "ledger")
		t.Logf("%s's ledger:\n%s", n, out)
	}
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// friend is n's entry for friend m, as `btslave friends list --json`
// gives it: Balance is what m owes n.
func (l *friendsLab) friend(n, m string) api.FriendInfo {
	l.t.Helper()
	code, out, errOut := l.cli(n, "friends", "list", "--json")
	var fs []api.FriendInfo
	if err := json.Unmarshal([]byte(out), &fs); code != 0 || err != nil {
		l.t.Fatalf("%s: friends list: %d %v %s", n, code, err, errOut)
	}
	id := friends.NewID(l.key(m)).String()
	for _, f := range fs {
		if f.ID == id {
			return f
		}
	}
	l.t.Fatalf("%s does not list %s as a friend: %q", n, m, out)
	return api.FriendInfo{}
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
