package repeater

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/time/rate"

	"github.com/btslave/btslave/config"
)

// bep56ChildEnv makes the test binary run as one side of BenchmarkBEP56.
const bep56ChildEnv = "BTSLAVE_BEP56_CHILD"

// bep56Size is the benchmark torrent's size: 128 MiB, or
// BTSLAVE_BEP56_MIB for a quick run.
func bep56Size() int64 {
	if v, err := strconv.Atoi(os.Getenv("BTSLAVE_BEP56_MIB")); err == nil && v > 0 {
		return int64(v) << 20
	}
	return 128 << 20
}

// BenchmarkBEP56 moves a 128 MiB torrent between two btslave clients, each
// a process of its own, through a loopback TCP proxy that counts the bytes
// on the wire (and caps each direction for the "capped" runs). Data: (a)
// text, the Go source tree's files concatenated; (b) random; (c) half and
// half (a text file and a random file). Each with compression off
// ("plain": priorities 0) and on (the defaults, zstd). Metrics: wire bytes
// (both directions), wire/plain against the plain run's wire, wall time of
// the download, CPU seconds of each side during it. Goals (issue #12):
// text wire <= 1/3 of raw; random within 0.5% and 5% more CPU; text on a
// 1 MiB/s link at least 2.5x sooner.
func BenchmarkBEP56(b *testing.B) {
	size := bep56Size()
	dir := b.TempDir()
	text := bep56Torrent(b, filepath.Join(dir, "text"), []bep56File{{"go-source.txt", size, true}})
	random := bep56Torrent(b, filepath.Join(dir, "random"), []bep56File{{"random.bin", size, false}})
	half := bep56Torrent(b, filepath.Join(dir, "half"), []bep56File{{"a-text.txt", size / 2, true}, {"b-random.bin", size / 2, false}})
	type run struct {
		name string
		tor  bep56Data
		comp bool
		cap  int // bytes/s each way, 0 = none
	}
	runs := []run{
		{"text/plain", text, false, 0}, {"text/zstd", text, true, 0},
		{"random/plain", random, false, 0}, {"random/zstd", random, true, 0},
		{"half/plain", half, false, 0}, {"half/zstd", half, true, 0},
		{"text-1MiBps/plain", text, false, 1 << 20}, {"text-1MiBps/zstd", text, true, 1 << 20},
	}
	for _, r := range runs {
		b.Run(r.name, func(b *testing.B) {
			var res bep56Result
			for range b.N {
				res = bep56Transfer(b, r.tor, r.comp, r.cap)
			}
			b.ReportMetric(float64(res.wire)/(1<<20), "wire-MiB")
			b.ReportMetric(float64(res.wire)/float64(size), "wire/size")
			b.ReportMetric(res.wall.Seconds(), "wall-s")
			b.ReportMetric(res.seedCPU, "seed-cpu-s")
			b.ReportMetric(res.leechCPU, "leech-cpu-s")
			b.Logf("%s: %s", r.name, res.note)
		})
	}
}

type bep56File struct {
	name string
	size int64
	text bool
}

type bep56Data struct {
	torrent, dir string
}

// bep56Torrent writes files (text from the Go source tree, or random)
// under dir and a .torrent for them.
func bep56Torrent(b *testing.B, dir string, files []bep56File) bep56Data {
	b.Helper()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		b.Fatal(err)
	}
	src := goSourceText(b)
	for _, f := range files {
		out, err := os.Create(filepath.Join(data, f.name))
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(out, 1<<20)
		for n := int64(0); n < f.size; {
			var chunk []byte
			if f.text {
				chunk = src[:min(int64(len(src)), f.size-n)]
			} else {
				chunk = make([]byte, min(1<<20, f.size-n))
				rand.Read(chunk)
			}
			w.Write(chunk)
			n += int64(len(chunk))
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		out.Close()
	}
	info := metainfo.Info{PieceLength: 256 << 10}
	if err := info.BuildFromFilePath(data); err != nil {
		b.Fatal(err)
	}
	mi := metainfo.MetaInfo{}
	var err error
	if mi.InfoBytes, err = bencode.Marshal(info); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "t.torrent")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := mi.Write(f); err != nil {
		b.Fatal(err)
	}
	return bep56Data{torrent: path, dir: dir}
}

var goSrc []byte

// goSourceText is the Go source tree's .go files concatenated.
func goSourceText(b *testing.B) []byte {
	if goSrc != nil {
		return goSrc
	}
	filepath.WalkDir(filepath.Join(runtime.GOROOT(), "src"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") {
			if data, err := os.ReadFile(path); err == nil {
				goSrc = append(goSrc, data...)
			}
		}
		return nil
	})
	if len(goSrc) < 1<<20 {
		b.Skip("the Go source tree is not there")
	}
	return goSrc
}

type bep56Result struct {
	wire              int64
	wall              time.Duration
	seedCPU, leechCPU float64
	note              string
}

// bep56Transfer runs one download: a seeding child, a proxy, a leeching
// child dialling the proxy.
func bep56Transfer(b *testing.B, d bep56Data, comp bool, capBps int) bep56Result {
	b.Helper()
	prio := "0 0"
	if comp {
		def := config.Default().Peer
		prio = fmt.Sprintf("%d %d", def.CompressZstd, def.CompressLZ4)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	seed := startBEP56Child(b, ctx, fmt.Sprintf("seed %s %s %s -", d.torrent, d.dir, prio))
	port, seedCPU0 := seed.ready(b)
	px := startProxy(b, fmt.Sprintf("127.0.0.1:%d", port), capBps)
	leechDir := b.TempDir()
	leech := startBEP56Child(b, ctx, fmt.Sprintf("leech %s %s %s %s", d.torrent, leechDir, prio, px.addr()))
	_, leechCPU0 := leech.ready(b)
	doneLine := leech.line(b, "done")
	f := strings.Fields(doneLine)
	wall, _ := strconv.ParseFloat(f[1], 64)
	leechCPU1, _ := strconv.ParseFloat(f[3], 64)
	leechNote := strings.Join(f[4:], " ")
	seed.stdin.Close()
	endLine := seed.line(b, "end")
	g := strings.Fields(endLine)
	seedCPU1, _ := strconv.ParseFloat(g[2], 64)
	leech.stdin.Close()
	seed.wait(b)
	leech.wait(b)
	px.close()
	return bep56Result{
		wire: px.up.Load() + px.down.Load(), wall: time.Duration(wall * float64(time.Second)),
		seedCPU: seedCPU1 - seedCPU0, leechCPU: leechCPU1 - leechCPU0,
		note: fmt.Sprintf("wire %d seed→leech, %d leech→seed; seed %s; leech %s", px.down.Load(), px.up.Load(), strings.Join(g[3:], " "), leechNote),
	}
}

type bep56Proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
}

func startBEP56Child(b *testing.B, ctx context.Context, spec string) *bep56Proc {
	b.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), bep56ChildEnv+"="+spec)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &bep56Proc{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	b.Cleanup(func() {
		stdin.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// line waits for the child's next line starting with prefix.
func (p *bep56Proc) line(b *testing.B, prefix string) string {
	b.Helper()
	for p.out.Scan() {
		if l := p.out.Text(); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	b.Fatalf("child ended before %q: %v", prefix, p.out.Err())
	return ""
}

// ready reads "ready PORT CPU".
func (p *bep56Proc) ready(b *testing.B) (port int, cpu float64) {
	f := strings.Fields(p.line(b, "ready"))
	port, _ = strconv.Atoi(f[1])
	cpu, _ = strconv.ParseFloat(f[2], 64)
	return port, cpu
}

func (p *bep56Proc) wait(b *testing.B) {
	for p.out.Scan() {
	}
	if err := p.cmd.Wait(); err != nil {
		b.Errorf("child: %v", err)
	}
}

// proxy forwards one TCP connection to target, counting bytes each way and
// capping each way at capBps (0: no cap).
type proxy struct {
	ln       net.Listener
	up, down atomic.Int64 // client→target, target→client
	done     chan struct{}
}

func startProxy(b *testing.B, target string, capBps int) *proxy {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	px := &proxy{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(px.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go px.pipe(t, c, &px.up, capBps)
			go px.pipe(c, t, &px.down, capBps)
		}
	}()
	return px
}

func (px *proxy) addr() string { return px.ln.Addr().String() }

func (px *proxy) pipe(dst, src net.Conn, n *atomic.Int64, capBps int) {
	defer dst.Close()
	defer src.Close()
	var lim *rate.Limiter
	if capBps > 0 {
		lim = rate.NewLimiter(rate.Limit(capBps), 64<<10)
	}
	buf := make([]byte, 64<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if lim != nil {
				lim.WaitN(context.Background(), k)
			}
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
			n.Add(int64(k))
		}
		if err != nil {
			return
		}
	}
}

func (px *proxy) close() {
	px.ln.Close()
	<-px.done
}

// cpuSeconds is this process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// bep56Child is one side of BenchmarkBEP56: spec is "seed|leech TORRENT
// DIR ZSTD LZ4 PEER". The seed verifies DIR, prints "ready PORT CPU" and
// serves until stdin closes, then prints "end CPU ..."; the leech prints
// "ready 0 CPU", downloads from PEER into DIR and prints "done WALL cpu CPU
// ...".
func bep56Child(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 6 {
		fmt.Fprintln(os.Stderr, "bad spec", spec)
		return 2
	}
	mi, err := metainfo.LoadFromFile(f[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p := config.Default().Peer
	p.Listen, p.IPv6 = "127.0.0.1:0", false
	p.CompressZstd, _ = strconv.Atoi(f[3])
	p.CompressLZ4, _ = strconv.Atoi(f[4])
	cl, err := NewClient(ClientOptions{Peer: p, Storage: storage.NewFile(f[2])})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cl.Close()
	t, err := cl.AddTorrent(mi)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stats := func() string {
		s := cl.Wire.Stats()
		return fmt.Sprintf("compressed %d saved %d up %d down", s.Compressed, s.SavedUp, s.SavedDown)
	}
	// BTSLAVE_BEP56_PROFILE=DIR writes each side's CPU profile of the
	// transfer to DIR/seed.pprof and DIR/leech.pprof.
	profile := func() func() {
		dir := os.Getenv("BTSLAVE_BEP56_PROFILE")
		if dir == "" {
			return func() {}
		}
		pf, err := os.Create(filepath.Join(dir, f[0]+".pprof"))
		if err != nil {
			return func() {}
		}
		pprof.StartCPUProfile(pf)
		return func() { pprof.StopCPUProfile(); pf.Close() }
	}
	if f[0] == "seed" {
		t.VerifyData()
		<-t.Complete().On()
		defer profile()()
		fmt.Printf("ready %d %f\n", cl.LocalPort(), cpuSeconds())
		io.Copy(io.Discard, os.Stdin)
		fmt.Printf("end cpu %f %s\n", cpuSeconds(), stats())
		return 0
	}
	stop := profile()
	fmt.Printf("ready 0 %f\n", cpuSeconds())
	start := time.Now()
	t.DownloadAll()
	host, port, _ := net.SplitHostPort(f[5])
	pn, _ := strconv.Atoi(port)
	t.AddPeers([]torrent.PeerInfo{{Addr: &net.TCPAddr{IP: net.ParseIP(host), Port: pn}, Trusted: true}})
	<-t.Complete().On()
	stop()
	fmt.Printf("done %f cpu %f %s\n", time.Since(start).Seconds(), cpuSeconds(), stats())
	io.Copy(io.Discard, os.Stdin)
	return 0
}
