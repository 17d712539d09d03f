package repeater

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/cache"
	"github.com/btslave/btslave/config"
)

func peerAddr(c *Client) torrent.PeerInfo {
	return torrent.PeerInfo{Addr: c.ListenAddrs()[0], Trusted: true}
}

// BenchmarkTransfer measures one 64 MiB download over loopback, uncapped,
// with the wire layer on both ends against anacrolix's own TCP (bare). The
// leecher keeps pieces in a memory cache large enough for all of them, so
// the figure is the peer path, not the disk. Goal: wire >= 95% of bare.
func BenchmarkTransfer(b *testing.B) {
	const size = 64 << 20
	for _, mode := range []struct {
		name string
		bare bool
	}{{"bare", true}, {"wire", false}} {
		b.Run(mode.name, func(b *testing.B) {
			seeder, mi, _ := seeding(b, size, mode.bare)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c, err := cache.New(cache.Options{Budget: size + 8<<20})
				if err != nil {
					b.Fatal(err)
				}
				leech, err := NewClient(ClientOptions{Peer: testPeer(b, "127.0.0.1"), Storage: c, BareTCP: mode.bare})
				if err != nil {
					b.Fatal(err)
				}
				t, _ := leech.AddTorrent(mi)
				t.DownloadAll()
				t.AddPeers([]torrent.PeerInfo{peerAddr(seeder)})
				select {
				case <-t.Complete().On():
				case <-time.After(2 * time.Minute):
					b.Fatalf("download stuck at %d/%d", t.BytesCompleted(), t.Length())
				}
				b.StopTimer()
				leech.Close()
				c.Close()
				b.StartTimer()
			}
		})
	}
}

// RSSChildEnv is exported for the external interop tests.
const RSSChildEnv = rssChildEnv

// rssChildEnv makes the test binary run as a repeater child process for
// BenchmarkPartialSeedRSS.
const rssChildEnv = "BTSLAVE_RSS_CHILD"

// TestMain lets the test binary double as the repeater child of the RSS
// benchmark, so that its peak RSS is the repeater's alone.
func TestMain(m *testing.M) {
	if spec := os.Getenv(rssChildEnv); spec != "" {
		os.Exit(rssChild(spec))
	}
	if spec := os.Getenv(bep56ChildEnv); spec != "" {
		os.Exit(bep56Child(spec))
	}
	os.Exit(m.Run())
}

// rssChild serves a torrent (spec "TORRENT SEED_ADDR BUDGET [LISTEN_IP
// UPLOAD_CAP]") from a cache of BUDGET bytes, prints its port, and on stdin
// EOF prints its traffic and peak RSS. With LISTEN_IP it also announces to
// the torrent's trackers (the daemon's own announcer), capped at UPLOAD_CAP
// bytes/s (0: none).
func rssChild(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 3 && len(f) != 5 {
		fmt.Fprintln(os.Stderr, "bad spec", spec)
		return 2
	}
	mi, err := metainfo.LoadFromFile(f[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	budget, _ := strconv.ParseInt(f[2], 10, 64)
	cfg := config.Default()
	cfg.Cache.Size, cfg.Repeater.SwarmCache = config.Size(budget), config.Size(budget)
	peer := cfg.Peer
	peer.Listen, peer.IPv6 = "127.0.0.1:0", false
	announce := len(f) == 5
	if enc := os.Getenv("BTSLAVE_CHILD_ENC"); enc != "" {
		peer.Encryption = enc
	}
	if announce {
		peer.Listen = config.Addr(f[3] + ":0")
		up, _ := strconv.ParseInt(f[4], 10, 64)
		peer.UploadLimit = config.Rate(up)
	}
	SetMemoryLimit(budget) // as the daemon does
	noHoldInterest = os.Getenv("BTSLAVE_CHILD_NOHOLD") != ""
	noOffer = os.Getenv("BTSLAVE_CHILD_NOOFFER") != ""
	noIntakeCeiling = os.Getenv("BTSLAVE_CHILD_NOINTAKECAP") != ""
	if v, err := strconv.ParseFloat(os.Getenv("BTSLAVE_CHILD_INTAKESLACK"), 64); err == nil && v > 0 {
		intakeSlack = v
	}
	noTimeWant = os.Getenv("BTSLAVE_CHILD_NOTIMEWANT") != ""
	var logger *slog.Logger
	if os.Getenv("BTSLAVE_CHILD_DEBUG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	r, err := New(Options{Peer: peer, Cache: cfg.Cache, Repeater: cfg.Repeater, Tick: 100 * time.Millisecond, Announce: announce, Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r.Client().Wire.SetHoldLastBlock(os.Getenv("BTSLAVE_CHILD_NOHOLDLAST") == "")
	sw, err := r.Join(torrent.TorrentSpecFromMetaInfo(mi))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if f[1] != "-" {
		host, port, _ := strings.Cut(f[1], ":")
		p, _ := strconv.Atoi(port)
		sw.AddPeers([]torrent.PeerInfo{{Addr: tcpAddr(host, p), Trusted: true}})
	}
	startHWM := peakRSS()
	if os.Getenv("BTSLAVE_CHILD_TRACE") != "" {
		go func() {
			for range time.Tick(5 * time.Second) {
				fmt.Fprintf(os.Stderr, "TRACE swarm %+v cache held %d pieces %d wire %+v\n", sw.Stats(), r.Cache().Stats().Held, r.Cache().Stats().Pieces, r.Client().Wire.Stats())
				held := r.Cache().Held(sw.InfoHash())
				for _, p := range r.Client().Wire.Peers(sw.InfoHash()) {
					// Of the pieces we hold that the peer lacks, how many it was told of.
					lacked, told := 0, 0
					for _, i := range held {
						if !p.HasPiece(i) {
							lacked++
							if p.Advertised.Has(i) {
								told++
							}
						}
					}
					fmt.Fprintf(os.Stderr, "TRACE   %v %-22s up %8d down %8d has %3d all %v peerInt %v amChoke %v peerChoke %v amInt %v told %v rejected %d timedOut %d late %d cancels %d after %d dropped %d withheld %d heldLast %d; held it lacks %d, told of %d\n",
						p.Remote, p.ClientName, p.BytesUp, p.BytesDown, p.Have.Count(), p.HaveAll, p.PeerInterested, p.AmChoking, p.PeerChoking, p.AmInterested, p.Interested, p.Rejected, p.TimedOut, p.LateDropped, p.CancelsOut, p.AfterCancel, p.Dropped, p.HavesWithheld, p.HeldLast, lacked, told)
				}
			}
		}()
	}
	fmt.Printf("port %d\n", r.Client().LocalPort())
	if announce { // a crowd's helper: its traffic over time
		began := time.Now()
		go func() {
			for range time.Tick(time.Second) {
				tot := r.Client().Wire.Totals(sw.InfoHash())
				fmt.Printf("sample %d %d %d\n", time.Since(began).Milliseconds(), tot.BytesUp, tot.BytesDown)
			}
		}()
	}
	yield := os.Getenv("BTSLAVE_CHILD_YIELD") != ""
	if yield { // count what each connection sent per piece (a diagnosis)
		go func() {
			for range time.Tick(200 * time.Millisecond) {
				for _, c := range r.Client().Wire.Conns(sw.InfoHash()) {
					c.TrackSent(true)
				}
			}
		}()
	}
	io.Copy(io.Discard, os.Stdin)
	if yield {
		sent := map[int]int64{}
		for _, c := range r.Client().Wire.Conns(sw.InfoHash()) {
			for p, n := range c.SentPieces() {
				sent[p] += n
			}
		}
		plen := sw.Torrent().Info().PieceLength
		hist := map[int64]int{}
		for _, n := range sent {
			hist[(n+plen/2)/plen]++
		}
		fmt.Fprintf(os.Stderr, "YIELD pieces sent: %d; copies -> pieces %v; fetched %d\n", len(sent), hist, sw.Stats().Fetched)
	}
	tot := r.Client().Wire.Totals(sw.InfoHash())
	if announce { // where a crowd helper's download went
		lib := sw.Torrent().Stats()
		fmt.Fprintf(os.Stderr, "INTAKE chunks useful %d wasted %d; pieces good %d bad %d; fetched %d; evicted %d; last blocks held %d\n",
			lib.ChunksReadUseful.Int64(), lib.ChunksReadWasted.Int64(), lib.PiecesDirtiedGood.Int64(), lib.PiecesDirtiedBad.Int64(), sw.Stats().Fetched, r.Cache().Stats().Evictions, r.Client().Wire.Stats().HeldLast)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("up %d down %d evictions %d; RSS at start %d MiB; Go heap in use %d MiB, sys %d MiB\n", tot.BytesUp, tot.BytesDown,
		r.Cache().Stats().Evictions, startHWM>>20, ms.HeapInuse>>20, ms.Sys>>20)
	fmt.Printf("traffic %d %d %d\n", tot.BytesUp, tot.BytesDown, missingPieceRequests())
	fmt.Printf("hwm %d\n", peakRSS())
	r.Close()
	return 0
}

// peakRSS is this process's peak RSS (bytes).
func peakRSS() int64 { return PeakRSS(os.Getpid()) }

// PeakRSS reads a process's peak RSS (VmHWM, bytes) from /proc; 0 when it
// cannot. Exported for the external crowd test.
func PeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkPartialSeedRSS serves a 64 MiB torrent through a 16 MiB cache
// to two leechers, with the repeater in a process of its own, and reports
// that process's peak RSS. Goal: <= budget + 48 MiB.
func BenchmarkPartialSeedRSS(b *testing.B) {
	const size, budget = 64 << 20, 16 << 20
	seeder, mi, _ := seeding(b, size, false)
	tfile := filepath.Join(b.TempDir(), "t.torrent")
	f, _ := os.Create(tfile)
	mi.Write(f)
	f.Close()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", rssChildEnv, tfile, seeder.ListenAddrs()[0], budget))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		out := bufio.NewScanner(stdout)
		var port int
		if !out.Scan() || func() bool { _, err := fmt.Sscanf(out.Text(), "port %d", &port); return err != nil }() {
			b.Fatalf("child: %q", out.Text())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		var leechers []*torrent.Torrent
		for j := 0; j < 2; j++ {
			leech, err := NewClient(ClientOptions{Peer: testPeer(b, "127.0.0.1"), Storage: storage.NewFile(b.TempDir())})
			if err != nil {
				b.Fatal(err)
			}
			defer leech.Close()
			t, _ := leech.AddTorrent(mi)
			t.DownloadAll()
			t.AddPeers([]torrent.PeerInfo{{Addr: tcpAddr("127.0.0.1", port), Trusted: true}})
			leechers = append(leechers, t)
		}
		for _, t := range leechers {
			select {
			case <-t.Complete().On():
			case <-ctx.Done():
				b.Fatalf("leecher stuck at %d/%d", t.BytesCompleted(), t.Length())
			}
		}
		cancel()
		stdin.Close()
		var hwm int64
		var traffic string
		for out.Scan() {
			if v, ok := strings.CutPrefix(out.Text(), "hwm "); ok {
				hwm, _ = strconv.ParseInt(v, 10, 64)
			} else {
				traffic = out.Text()
			}
		}
		cmd.Wait()
		b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(budget+48<<20)/(1<<20), "goal-MiB")
		b.Logf("repeater child: %s, peak RSS %.1f MiB (budget %d MiB)", traffic, float64(hwm)/(1<<20), budget>>20)
		if hwm == 0 {
			b.Fatal("no peak RSS from the child")
		}
	}
}

func tcpAddr(host string, port int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.ParseIP(host), Port: port}
}
