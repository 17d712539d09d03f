package lab_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/lab"
)

// guardProbe tries each kind of call the guard wraps and prints, as JSON,
// the errno each one got (0 for success).
const guardProbe = `
import json, socket, sys
tcp_port, udp_port = int(sys.argv[1]), int(sys.argv[2])
res = {}
def attempt(name, fam, kind, how, addr):
    s = socket.socket(fam, kind)
    s.settimeout(2)
    try:
        if how == "connect":
            s.connect(addr)
        elif how == "sendto":
            s.sendto(b"x", addr)
        else:
            s.sendmsg([b"x"], [], 0, addr)
        res[name] = 0
    except OSError as e:
        res[name] = e.errno
    finally:
        s.close()
I4, I6, T, U = socket.AF_INET, socket.AF_INET6, socket.SOCK_STREAM, socket.SOCK_DGRAM
# 0.0.0.0 and :: reach this host itself and never leave it, even without
# the guard; they are outside 127.0.0.0/8, so the guard must refuse them.
attempt("connect 0.0.0.0", I4, T, "connect", ("0.0.0.0", tcp_port))
attempt("sendto 0.0.0.0", I4, U, "sendto", ("0.0.0.0", udp_port))
attempt("sendmsg 0.0.0.0", I4, U, "sendmsg", ("0.0.0.0", udp_port))
attempt("connect ::", I6, T, "connect", ("::", tcp_port))
attempt("connect ::ffff:0.0.0.0", I6, T, "connect", ("::ffff:0.0.0.0", tcp_port))
attempt("connect 127.0.0.1", I4, T, "connect", ("127.0.0.1", tcp_port))
attempt("sendto 127.0.0.1", I4, U, "sendto", ("127.0.0.1", udp_port))
attempt("sendmsg 127.0.0.1", I4, U, "sendmsg", ("127.0.0.1", udp_port))
attempt("connect ::ffff:127.0.0.1", I6, T, "connect", ("::ffff:127.0.0.1", tcp_port))
print(json.dumps(res))
`

// Ensure that the guard refuses non-loopback destinations with ENETUNREACH
// and logs them, and lets loopback ones through; and that with a network
// namespace's prefix named (lab.NetnsEnv), it lets that prefix through too
// (0.0.0.0/8 here: it reaches this host only, and is refused without it).
func TestGuard(t *testing.T) {
	lab.Require(t, "gcc")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	// Connecting to 0.0.0.0 reaches these listeners too, so without the
	// guard the refused calls below would succeed.
	tcpPort := ln.Addr().(*net.TCPAddr).Port
	udpPort := pc.LocalAddr().(*net.UDPAddr).Port
	zero := []string{"connect 0.0.0.0", "sendto 0.0.0.0", "sendmsg 0.0.0.0"}
	six := []string{"connect ::", "connect ::ffff:0.0.0.0"}
	sixLog := []string{"connect [::]:" + itoa(tcpPort), "connect [::ffff:0.0.0.0]:" + itoa(tcpPort)}
	for _, c := range []struct {
		netns                 string
		refused, allowed, log []string
	}{
		{"", append(zero, six...), nil,
			append([]string{"connect 0.0.0.0:" + itoa(tcpPort), "sendto 0.0.0.0:" + itoa(udpPort), "sendmsg 0.0.0.0:" + itoa(udpPort)}, sixLog...)},
		{"0.0.0.0/8", six, zero, sixLog},
	} {
		t.Run("netns="+c.netns, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "guard.log")
			cmd := exec.Command("/usr/bin/python3", "-c", guardProbe,
				itoa(tcpPort), itoa(udpPort))
			cmd.Env = append(os.Environ(), lab.NetnsEnv+"="+c.netns)
			cmd = lab.GuardCommand(t, cmd, logPath)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("probe: %v\n%s", err, out)
			}
			var got map[string]int
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("probe output %q: %v", out, err)
			}
			enetunreach := int(syscall.ENETUNREACH)
			allowed := append([]string{"connect 127.0.0.1", "sendto 127.0.0.1", "sendmsg 127.0.0.1", "connect ::ffff:127.0.0.1"}, c.allowed...)
			for _, name := range c.refused {
				if errno, ok := got[name]; !ok || errno != enetunreach {
					t.Errorf("%s: errno %d (present %v), want ENETUNREACH", name, errno, ok)
				}
			}
			for _, name := range allowed {
				if errno, ok := got[name]; !ok || errno != 0 {
					t.Errorf("%s: errno %d (present %v), want success", name, errno, ok)
				}
			}

			refusals, err := lab.GuardRefusals(logPath)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, r := range refusals {
				lines = append(lines, r.Func+" "+r.Addr)
			}
			if strings.Join(lines, "\n") != strings.Join(c.log, "\n") {
				t.Errorf("guard log:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(c.log, "\n"))
			}
			for _, r := range refusals {
				if r.PID != cmd.Process.Pid {
					t.Errorf("refusal %q: pid %d, want %d", r.Line, r.PID, cmd.Process.Pid)
				}
			}
		})
	}
}

// Ensure that opentracker starts, listens on loopback only and, once a hash
// is whitelisted, accepts announces for it and scrapes it.
func TestOpentracker(t *testing.T) {
	tr := lab.StartOpentracker(t)
	_, _, hash, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 64 << 10, Announce: []string{tr.HTTPAnnounce}})
	if err := tr.Whitelist(hash); err != nil {
		t.Fatal(err)
	}
	r, err := tr.Scrape(hash)
	if err != nil {
		t.Fatal(err)
	}
	if r != (lab.ScrapeResult{}) {
		t.Errorf("scrape after the probe: %+v, want all zero", r)
	}
	ls, err := lab.Listeners(tr.PID())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Errorf("listeners %v, want one TCP and one UDP", ls)
	}

	// A seed announces; the scrape must count it, and a hash that is not
	// whitelisted must be refused.
	seed := lab.Announce{InfoHash: hash, PeerID: "-BL0000-labtest00000", Port: 6881}
	reply, err := tr.Announce(seed)
	if err != nil {
		t.Fatal(err)
	}
	// opentracker lists the caller in its own peer list.
	if len(reply.Peers) != 1 || reply.Peers[0].String() != "127.0.0.1:6881" || reply.Complete != 1 {
		t.Errorf("announce reply %+v, want 1 complete and the caller 127.0.0.1:6881", reply)
	}
	seed.InfoHash = strings.Repeat("ab", 20)
	if _, err := tr.Announce(seed); err == nil || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("announce of a hash not whitelisted: error %v, want a refusal", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err = tr.WaitScrape(ctx, hash, func(r lab.ScrapeResult) bool { return r.Complete == 1 })
	if err != nil {
		t.Fatal(err)
	}
	if r.Incomplete != 0 {
		t.Errorf("scrape %+v, want 1 complete, 0 incomplete", r)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// swarm starts a tracker and makes a whitelisted torrent of size bytes
// that announces to it over HTTP.
func swarm(t *testing.T, size int64) (tracker *lab.Opentracker, torrent, data, hash string) {
	t.Helper()
	tracker = lab.StartOpentracker(t)
	torrent, data, hash, _ = lab.MakeTorrent(t, lab.TorrentOptions{Size: size, Announce: []string{tracker.HTTPAnnounce}})
	if err := tracker.Whitelist(hash); err != nil {
		t.Fatal(err)
	}
	return tracker, torrent, data, hash
}

// Ensure that Transmission seeds to aria2 and to a libtorrent session
// through opentracker, and that libtorrent sees Transmission's extended
// handshake with upload_only.
func TestTransmissionSeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: Transmission waits ~10 s before its first unchoke")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const size = 4 << 20
	tracker, torrent, data, hash := swarm(t, size)

	tr := lab.StartTransmission(t, lab.TransmissionOptions{})
	id, err := tr.AddTorrent(torrent, filepath.Dir(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.WaitComplete(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Transmission never dials 127.x peers: the leechers must find it
	// through the tracker, so wait until the seed is listed.
	if _, err := tracker.WaitScrape(ctx, hash, func(r lab.ScrapeResult) bool { return r.Complete >= 1 }); err != nil {
		t.Fatal(err)
	}

	a := lab.StartAria2(t, lab.Aria2Options{Torrent: torrent})
	leech := lab.StartLibtorrent(t, lab.LibtorrentOptions{Torrent: torrent})
	if err := a.WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	if err := leech.WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	lab.VerifyFile(t, filepath.Join(a.Dir, filepath.Base(data)), data)
	lab.VerifyFile(t, filepath.Join(leech.SavePath, filepath.Base(data)), data)

	st, err := tr.Torrent(id)
	if err != nil {
		t.Fatal(err)
	}
	// Every piece left Transmission at least once; the leechers may have
	// traded the rest between them.
	if st.UploadedEver < size {
		t.Errorf("Transmission uploaded %d bytes, want at least %d", st.UploadedEver, size)
	}
	var fromTransmission []string
	for _, hs := range leech.ExtendedHandshakes() {
		if strings.HasPrefix(hs.Peer, tr.Addr.String()+":") && strings.Contains(hs.Message, "<==") {
			fromTransmission = append(fromTransmission, hs.Message)
		}
	}
	if len(fromTransmission) == 0 || !strings.Contains(fromTransmission[0], "'upload_only': 1") {
		t.Errorf("Transmission's extended handshake with upload_only 1 not seen: %q", fromTransmission)
	}
}

// Ensure that a libtorrent session announcing over UDP seeds to aria2
// (announcing over HTTP) through opentracker, that its upload limit applies on loopback, and that it logs aria2's
// extended handshake.
func TestLibtorrentSeedsAria2(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const size = 4 << 20
	const limit = 1 << 20 // bytes/s: the transfer must take about 4 s
	tracker, torrent, data, hash := swarm(t, size)
	// The seed announces over UDP. (aria2 cannot: it speaks UDP tracker
	// only with DHT on.)
	mi, err := metainfo.LoadFromFile(torrent)
	if err != nil {
		t.Fatal(err)
	}
	mi.Announce = tracker.UDPAnnounce
	udpTorrent := filepath.Join(t.TempDir(), "udp.torrent")
	f, err := os.Create(udpTorrent)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(mi.Write(f), f.Close()); err != nil {
		t.Fatal(err)
	}

	seed := lab.StartLibtorrent(t, lab.LibtorrentOptions{
		Torrent: udpTorrent, SavePath: filepath.Dir(data), UploadLimit: limit,
	})
	if err := seed.WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tracker.WaitScrape(ctx, hash, func(r lab.ScrapeResult) bool { return r.Complete >= 1 }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a := lab.StartAria2(t, lab.Aria2Options{Torrent: torrent})
	if err := a.WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	lab.VerifyFile(t, filepath.Join(a.Dir, filepath.Base(data)), data)
	// Without the peer-class filter loopback is not limited and 4 MiB take
	// well under a second.
	if minTook := time.Duration(float64(size) / limit * 0.6 * float64(time.Second)); took < minTook {
		t.Errorf("download took %v, want at least %v at %d B/s: the upload limit does not apply", took, minTook, limit)
	}
	var fromAria2 []string
	for _, hs := range seed.ExtendedHandshakes() {
		if strings.HasPrefix(hs.Peer, a.Addr.String()+":") && strings.Contains(hs.Message, "<==") {
			fromAria2 = append(fromAria2, hs.Message)
		}
	}
	if len(fromAria2) == 0 || !strings.Contains(fromAria2[0], "ut_metadata") {
		t.Errorf("aria2's extended handshake not seen in the peer log: %q (all: %+v)", fromAria2, seed.ExtendedHandshakes())
	}
	t.Logf("download took %v; aria2's handshake: %s", took, fromAria2)
}

// Ensure that qBittorrent starts on the config written for it, logs in,
// adds a torrent whose data it has, and seeds it to aria2.
func TestQBittorrentSeedsAria2(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tracker, torrent, data, hash := swarm(t, 4<<20)

	q := lab.StartQBittorrent(t, lab.QBittorrentOptions{})
	if err := q.AddTorrent(torrent, filepath.Dir(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := q.WaitComplete(ctx, hash); err != nil {
		t.Fatal(err)
	}
	if err := q.SetUploadLimit(4 << 20); err != nil {
		t.Fatal(err)
	}
	ls, err := lab.Listeners(q.PID())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("qBittorrent listens on %v", ls)
	if _, err := tracker.WaitScrape(ctx, hash, func(r lab.ScrapeResult) bool { return r.Complete >= 1 }); err != nil {
		t.Fatal(err)
	}
	a := lab.StartAria2(t, lab.Aria2Options{Torrent: torrent})
	if err := a.WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	lab.VerifyFile(t, filepath.Join(a.Dir, filepath.Base(data)), data)
}

// Ensure that MakeTorrent builds multi-file torrents whose pieces cover
// the files, and that text-like data compresses.
func TestMakeTorrent(t *testing.T) {
	sizes := []int64{100_000, 300_001, 7}
	torrent, data, hash, mi := lab.MakeTorrent(t, lab.TorrentOptions{
		Name: "dir", Files: sizes, Text: true, PieceLength: 32 << 10,
		Announce: []string{"http://127.0.0.1:1/announce", "udp://127.0.0.1:2/announce"},
	})
	info, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range sizes {
		total += s
	}
	if len(info.Files) != len(sizes) || info.TotalLength() != total || info.NumPieces() != int((total+32<<10-1)/(32<<10)) {
		t.Errorf("info: %d files, %d bytes, %d pieces", len(info.Files), info.TotalLength(), info.NumPieces())
	}
	if mi.Announce != "http://127.0.0.1:1/announce" || len(mi.AnnounceList) != 2 {
		t.Errorf("announce %q, list %v", mi.Announce, mi.AnnounceList)
	}
	if len(hash) != 40 || !strings.HasSuffix(torrent, "dir.torrent") || filepath.Base(data) != "dir" {
		t.Errorf("hash %q, torrent %q, data %q", hash, torrent, data)
	}
	raw, err := os.ReadFile(filepath.Join(data, "f001.bin"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	if len(raw) != 300_001 || buf.Len() > len(raw)/2 {
		t.Errorf("text data: %d bytes, %d gzipped; want 300001, under half", len(raw), buf.Len())
	}
	if !lab.VerifyFile(t, filepath.Join(data, "f001.bin"), filepath.Join(data, "f001.bin")) {
		t.Error("a file differs from itself")
	}
}

// Ensure that a libtorrent session can be told to dial a peer, here a
// seed-mode session, without a tracker.
func TestLibtorrentConnectPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	torrent, data, _, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 1 << 20})
	seed := lab.StartLibtorrent(t, lab.LibtorrentOptions{Torrent: torrent, SavePath: filepath.Dir(data), SeedMode: true})
	leech := lab.StartLibtorrent(t, lab.LibtorrentOptions{Torrent: torrent})
	if err := leech.ConnectPeer(netip.AddrPortFrom(seed.Addr, uint16(seed.Port))); err != nil {
		t.Fatal(err)
	}
	if err := leech.WaitDone(ctx); err != nil {
		t.Fatal(err)
	}
	lab.VerifyFile(t, filepath.Join(leech.SavePath, filepath.Base(data)), data)
	// The seed said upload_only in its extended handshake.
	found := false
	for _, hs := range leech.ExtendedHandshakes() {
		if strings.HasPrefix(hs.Peer, seed.Addr.String()+":") && strings.Contains(hs.Message, "<==") &&
			strings.Contains(hs.Message, "'upload_only': 1") {
			found = true
		}
	}
	if !found {
		t.Errorf("seed's extended handshake with upload_only 1 not seen: %+v", leech.ExtendedHandshakes())
	}
}
