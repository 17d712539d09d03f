package tracker_test

import (
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
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
	"github.com/anacrolix/torrent/tracker/udp"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/tracker"
)

// Benchmark sizes: 10,000 torrents of 100 peers, a million peers.
const (
	benchTorrents = 10_000
	benchPeersPer = 100
	benchPhase    = 5 * time.Second
	benchUDPConns = 16 // sockets of the load generator, spread over the SO_REUSEPORT sockets by address hash
	benchWindow   = 16 // UDP requests in flight per socket
	benchHTTPConn = 16 // HTTP connections, one request in flight each
	benchScrapeN  = 10 // info-hashes per scrape
)

// benchTarget is one tracker under test, run as its own process.
type benchTarget struct {
	name      string
	udp, http netip.AddrPort
	pid       int
}

// benchFigures are one tracker's results.
type benchFigures struct {
	peers                      int64
	bytesPerPeer               float64
	udpAnn, httpAnn            float64
	udpScrape, httpScrape      float64
	httpDials, httpAnnRequests int64
}

// BenchmarkVsOpentracker loads btslave's tracker ("btslave tracker", a
// process of its own) and a loopback opentracker, one after the other,
// with the same load generator: 10,000 whitelisted torrents, a million
// peers announced over UDP (half seeds), then for 5 s each UDP announces,
// HTTP announces on keep-alive connections, UDP scrapes and HTTP scrapes
// of 10 random torrents; memory per peer is the growth of the resident
// set while the peers were loaded, over the peers the tracker then
// counts. Goal: at least opentracker's UDP announces/s, at most twice its
// bytes per peer. bench/run.sh tracker prints the table.
//
// BTSLAVE_BIN names a btslave binary to use; else one is built.
func BenchmarkVsOpentracker(b *testing.B) {
	lab.Require(b, "opentracker")
	torrents := benchTorrents
	if v, err := strconv.Atoi(os.Getenv("BTSLAVE_BENCH_TORRENTS")); err == nil && v > 0 {
		torrents = v // a smaller run while working on the benchmark
	}
	w := &workload{hashes: make([]metainfo.Hash, torrents), peersPer: benchPeersPer}
	var list strings.Builder
	for i := range w.hashes {
		rand.Read(w.hashes[i][:])
		list.WriteString(w.hashes[i].HexString() + "\n")
	}
	ours := startBtslaveTracker(b, list.String())
	ot := lab.StartOpentracker(b)
	otWhitelist(b, ot, list.String())
	otTarget := benchTarget{name: "opentracker", pid: ot.PID(),
		udp:  netip.MustParseAddrPort(strings.TrimSuffix(strings.TrimPrefix(ot.UDPAnnounce, "udp://"), "/announce")),
		http: netip.MustParseAddrPort(strings.TrimSuffix(strings.TrimPrefix(ot.HTTPAnnounce, "http://"), "/announce")),
	}
	var figs [2]benchFigures
	for range b.N {
		for i, tgt := range []benchTarget{ours, otTarget} {
			figs[i] = runBench(b, w, tgt)
		}
	}
	b.StopTimer()
	o, t := figs[0], figs[1]
	row := func(what string, a, b float64, unit string) {
		fmt.Printf("  %-34s %12.0f %12.0f   %5.2f×  %s\n", what, a, b, a/b, unit)
	}
	fmt.Printf("== tracker: btslave vs opentracker, %d torrents, %d peers loaded (btslave) / %d (opentracker) ==\n",
		len(w.hashes), o.peers, t.peers)
	fmt.Printf("  %-34s %12s %12s   %6s\n", "", "btslave", "opentracker", "ratio")
	row("UDP announces/s", o.udpAnn, t.udpAnn, "(goal >= 1×)")
	row("HTTP announces/s (keep-alive)", o.httpAnn, t.httpAnn, "")
	row(fmt.Sprintf("UDP scrapes/s (%d hashes)", benchScrapeN), o.udpScrape, t.udpScrape, "")
	row(fmt.Sprintf("HTTP scrapes/s (%d hashes)", benchScrapeN), o.httpScrape, t.httpScrape, "")
	row("bytes of memory per peer (RSS)", o.bytesPerPeer, t.bytesPerPeer, "(goal <= 2×)")
	fmt.Printf("  HTTP connections opened for %d / %d announces: btslave %d, opentracker %d\n",
		o.httpAnnRequests, t.httpAnnRequests, o.httpDials, t.httpDials)
	b.ReportMetric(o.udpAnn, "udp_announces/s")
	b.ReportMetric(o.udpAnn/t.udpAnn, "udp_vs_opentracker")
	b.ReportMetric(o.bytesPerPeer, "bytes/peer")
	b.ReportMetric(o.bytesPerPeer/t.bytesPerPeer, "mem_vs_opentracker")
}

// runBench loads one tracker and measures it.
func runBench(b *testing.B, w *workload, tgt benchTarget) benchFigures {
	var f benchFigures
	rss0 := rss(b, tgt.pid)
	start := time.Now()
	for pass := 0; pass < 3 && f.peers < int64(w.peers()); pass++ {
		udpLoad(b, tgt.udp, benchUDPConns, 16, 10*time.Minute, uint64(w.peers()), udp.ActionAnnounce,
			func(dst []byte, connID uint64, tid uint32, seq uint64) []byte {
				return w.appendAnnounce(dst, connID, tid, int(seq)/w.peersPer, int(seq)%w.peersPer, 2)
			})
		f.peers = udpCount(b, tgt.udp, w)
	}
	time.Sleep(2 * time.Second) // let a Go heap settle after the loading
	f.bytesPerPeer = float64(rss(b, tgt.pid)-rss0) / float64(max(f.peers, 1))
	b.Logf("%s: %d peers loaded in %v, RSS %d → %d MiB", tgt.name, f.peers, time.Since(start).Round(time.Millisecond),
		rss0>>20, rss(b, tgt.pid)>>20)

	f.udpAnn = udpLoad(b, tgt.udp, benchUDPConns, benchWindow, benchPhase, 0, udp.ActionAnnounce,
		func(dst []byte, connID uint64, tid uint32, seq uint64) []byte {
			r := mrand.Uint64()
			return w.appendAnnounce(dst, connID, tid, int(r%uint64(len(w.hashes))), int(r>>32)%w.peersPer, 0)
		})
	var n float64
	n, f.httpDials = httpLoad(b, tgt.http, benchHTTPConn, benchPhase, func(r *mrand.Rand) string {
		return w.announcePath(r.IntN(len(w.hashes)), r.IntN(w.peersPer))
	})
	f.httpAnn, f.httpAnnRequests = n, int64(n*benchPhase.Seconds())
	f.udpScrape = udpLoad(b, tgt.udp, benchUDPConns, benchWindow, benchPhase, 0, udp.ActionScrape,
		func(dst []byte, connID uint64, tid uint32, seq uint64) []byte {
			var ts [benchScrapeN]int
			for i := range ts {
				ts[i] = mrand.IntN(len(w.hashes))
			}
			return w.appendScrape(dst, connID, tid, ts[:])
		})
	f.httpScrape, _ = httpLoad(b, tgt.http, benchHTTPConn, benchPhase, func(r *mrand.Rand) string {
		var ts [benchScrapeN]int
		for i := range ts {
			ts[i] = r.IntN(len(w.hashes))
		}
		return w.scrapePath(ts[:])
	})
	b.Logf("%s: %+v", tgt.name, f)
	return f
}

// startBtslaveTracker runs "btslave tracker" on 127.0.0.1 with the
// whitelist, without a rate limit, and stops it (by its pid) at cleanup.
func startBtslaveTracker(b *testing.B, whitelist string) benchTarget {
	b.Helper()
	dir := b.TempDir()
	bin := os.Getenv("BTSLAVE_BIN")
	if bin == "" {
		bin = filepath.Join(dir, "btslave")
		out, err := exec.Command("go", "build", "-o", bin, "../cmd/btslave").CombinedOutput()
		if err != nil {
			b.Fatalf("build btslave: %v\n%s", err, out)
		}
	}
	wl := filepath.Join(dir, "whitelist.txt")
	writeFile(b, wl, whitelist)
	httpPort, udpPort := lab.FreePort(b, lab.Loopback), lab.FreeUDPPort(b, lab.Loopback)
	cfg := filepath.Join(dir, "btslave.toml")
	writeFile(b, cfg, fmt.Sprintf("[log]\nlevel = \"warn\"\n[tracker]\nwhitelist = %q\nhttp_listen = \"127.0.0.1:%d\"\nudp_listen = \"127.0.0.1:%d\"\nrate_per_ip = 0.0\n",
		wl, httpPort, udpPort))
	cmd := exec.Command(bin, "tracker", "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	logf, err := os.Create(filepath.Join(dir, "tracker.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	tgt := benchTarget{name: "btslave", pid: cmd.Process.Pid,
		udp:  netip.AddrPortFrom(lab.Loopback, uint16(udpPort)),
		http: netip.AddrPortFrom(lab.Loopback, uint16(httpPort))}
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.Dial("tcp", tgt.http.String())
		if err == nil {
			c.Close()
			return tgt
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			b.Fatalf("btslave tracker did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// otWhitelist appends the hashes to opentracker's whitelist and makes it
// reload: Whitelist probes every hash it is given (50 ms each), so the
// list goes into the file directly and one last hash through Whitelist.
func otWhitelist(b *testing.B, ot *lab.Opentracker, list string) {
	b.Helper()
	f, err := os.OpenFile(filepath.Join(ot.Dir(), "root", "whitelist.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.WriteString(list); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	var last metainfo.Hash
	rand.Read(last[:])
	if err := ot.Whitelist(last.HexString()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkUDPAnnounceInProcess runs the UDP announce phase of
// BenchmarkVsOpentracker against a tracker in the test process (1,000
// torrents), for profiling with -cpuprofile.
func BenchmarkUDPAnnounceInProcess(b *testing.B) {
	w := &workload{hashes: make([]metainfo.Hash, 1000), peersPer: benchPeersPer}
	for i := range w.hashes {
		rand.Read(w.hashes[i][:])
	}
	tr := startTracker(b, tracker.Options{UDPListen: "127.0.0.1:0"})
	udpLoad(b, tr.UDPAddr(), benchUDPConns, 16, time.Minute, uint64(w.peers()), udp.ActionAnnounce,
		func(dst []byte, connID uint64, tid uint32, seq uint64) []byte {
			return w.appendAnnounce(dst, connID, tid, int(seq)/w.peersPer, int(seq)%w.peersPer, 2)
		})
	b.ResetTimer()
	for range b.N {
		rate := udpLoad(b, tr.UDPAddr(), benchUDPConns, benchWindow, benchPhase, 0, udp.ActionAnnounce,
			func(dst []byte, connID uint64, tid uint32, seq uint64) []byte {
				r := mrand.Uint64()
				return w.appendAnnounce(dst, connID, tid, int(r%uint64(len(w.hashes))), int(r>>32)%w.peersPer, 0)
			})
		b.ReportMetric(rate, "announces/s")
	}
}
