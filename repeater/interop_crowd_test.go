package repeater_test

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater"
)

// crowd describes one swarm-help scenario: a capped seed (Transmission
// or qBittorrent on its default slots and choker), capped leechers
// (aria2, libtorrent, Transmission), and maybe a helper.
type crowd struct {
	size           int64
	pieceLen       int64  // default 256 KiB
	seed           string // seedTransmission (default) or seedQBittorrent
	seedUp         int64  // bytes/s
	leechUp        int64  // bytes/s, each leecher
	aria, lt, tr   int    // leechers of each kind
	helper         string
	helperUp       int64 // bytes/s
	helperCache    int64
	shareTarget    int
	fullSeedUp     int64         // helperFullSeed's cap, bytes/s; 0 for H(1 − 1/r)
	fullSeedAfter  time.Duration // how long after a helper's join (every leecher counted) helperFullSeed starts
	timeout        time.Duration
	torrentPath    string
	dataPath, hash string
	ot             *lab.Opentracker
}

const (
	seedTransmission = "transmission"
	seedQBittorrent  = "qbittorrent"
)

const (
	helperNone    = "none"
	helperBtslave = "btslave"
	helperShare   = "libtorrent share mode"
	// helperFullSeed is no repeater but a ceiling for one: a second seed
	// (libtorrent), holding every piece from the start, capped by default
	// at what a helper at the bound's ratio adds to the swarm, H·(1 − 1/r).
	// A repeater at ratio r adds no more than that on average and holds
	// less, so what this seed gains is about the most one could: a
	// measured ceiling, not a proof (docs/design.md, "Intake"). A cell's
	// fullseed option sets another cap, fullseedafter a late start.
	helperFullSeed = "full seed"
)

// boundRatio is the helper's ratio in the crowd bound.
const boundRatio = 4

// crowdResult is what one run measured.
type crowdResult struct {
	helper               string
	helperCap            int64           // the helper's upload cap, bytes/s
	times                []time.Duration // per leecher, sorted
	helperUp, helperDown int64
	helperRSS            int64 // peak, bytes
	missing              int64 // requests the helper's library saw for pieces it lacked
	// samples are the helper's cumulative payload traffic, about one a
	// second from its start.
	samples []trafficSample
}

// timeline is the helper's traffic per interval of d, "up/down" in MiB.
func (r crowdResult) timeline(d time.Duration) string {
	var out []string
	var last trafficSample
	next := d
	for _, s := range r.samples {
		if s.at < next {
			continue
		}
		out = append(out, fmt.Sprintf("%.1f/%.1f", float64(s.up-last.up)/(1<<20), float64(s.down-last.down)/(1<<20)))
		last, next = s, next+d
	}
	return strings.Join(out, " ")
}

// trafficSample is a helper's cumulative payload traffic at a time since
// it started.
type trafficSample struct {
	at       time.Duration
	up, down int64
}

// minRatioAfter is the helper's lowest cumulative upload:download ratio
// over the samples taken after d (issue #9: never below 1 past the first
// minute); +Inf while it downloaded nothing, NaN without such samples.
func (r crowdResult) minRatioAfter(d time.Duration) float64 {
	low, any := math.Inf(1), false
	for _, s := range r.samples {
		if s.at < d {
			continue
		}
		any = true
		if s.down > 0 {
			low = min(low, float64(s.up)/float64(s.down))
		}
	}
	if !any {
		return math.NaN()
	}
	return low
}

func (r crowdResult) mean() time.Duration {
	var sum time.Duration
	for _, d := range r.times {
		sum += d
	}
	return sum / time.Duration(max(len(r.times), 1))
}

func (r crowdResult) ratio() float64 { return float64(r.helperUp) / float64(max(r.helperDown, 1)) }

// upFraction is the helper's mean upload over the run as a fraction of its
// cap.
func (r crowdResult) upFraction() float64 {
	if len(r.times) == 0 || r.helperCap <= 0 {
		return 0
	}
	return float64(r.helperUp) / r.times[len(r.times)-1].Seconds() / float64(r.helperCap)
}

// bound is the least time any schedule needs to finish the crowd (issue
// #9's physics): the seed must send the file once, and all leechers'
// copies need the seed's, the leechers' and the helper's net upload, the
// helper at ratio 4 (up to 0: no helper).
func (c *crowd) bound(helperUp float64) time.Duration {
	n := float64(c.aria + c.lt + c.tr)
	f, s, l := float64(c.size), float64(c.seedUp), float64(c.leechUp)
	supply := s + n*l + helperUp*(1-1.0/boundRatio)
	return time.Duration(max(f/s, n*f/supply) * float64(time.Second))
}

// gain is a helper's crowd gain: (T_none - T_helper) / (T_none - T_bound),
// 1 at the bound, 0 for no help.
func gain(none, with, bound time.Duration) float64 {
	if none <= bound {
		return 0
	}
	return (none - with).Seconds() / (none - bound).Seconds()
}

func (r crowdResult) String() string {
	if len(r.times) == 0 {
		return r.helper + ": not run"
	}
	s := fmt.Sprintf("%-22s leechers mean %6.1fs max %6.1fs", r.helper, r.mean().Seconds(), r.times[len(r.times)-1].Seconds())
	if r.helper != helperNone {
		s += fmt.Sprintf("; helper up %.1f MiB down %.1f MiB ratio %.2f, peak RSS %.1f MiB",
			float64(r.helperUp)/(1<<20), float64(r.helperDown)/(1<<20), r.ratio(), float64(r.helperRSS)/(1<<20))
	}
	return s
}

// setup makes a fresh torrent (and, once, the tracker).
func (c *crowd) setup(t testing.TB) {
	if c.ot == nil {
		c.ot = lab.StartOpentracker(t)
	}
	c.torrentPath, c.dataPath, c.hash, _ = lab.MakeTorrent(t, lab.TorrentOptions{
		Size: c.size, PieceLength: cmp.Or(c.pieceLen, 256<<10), Announce: []string{c.ot.HTTPAnnounce},
	})
	if err := c.ot.Whitelist(c.hash); err != nil {
		t.Fatal(err)
	}
}

// run plays the scenario once with the given helper, on a fresh torrent so
// that no peer of an earlier run is in the swarm.
func (c *crowd) run(t testing.TB, helper string) crowdResult {
	c.setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	res := crowdResult{helper: helper, helperCap: c.helperUp}
	var procs []*lab.Process
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()

	seedProc, seedAddr := c.startSeed(t, ctx)
	procs = append(procs, seedProc)
	// Leechers that announce before the seed never hear of it (the next
	// announce is half an hour away).
	if _, err := c.ot.WaitScrape(ctx, c.hash, func(s lab.ScrapeResult) bool { return s.Complete >= 1 }); err != nil {
		t.Fatalf("the seed never announced: %v", err)
	}

	// Start every leecher at once, then time each.
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	record := func(wait func(context.Context) error, file string) {
		defer wg.Done()
		if err := wait(ctx); err != nil {
			t.Errorf("%s: leecher did not finish: %v", helper, err)
			return
		}
		mu.Lock()
		res.times = append(res.times, time.Since(start))
		mu.Unlock()
		if !lab.VerifyFile(t, file, c.dataPath) {
			t.Errorf("%s: a leecher's copy differs", helper)
		}
	}
	name := filepath.Base(c.dataPath)
	for i := 0; i < c.aria; i++ {
		a := lab.StartAria2(t, lab.Aria2Options{Torrent: c.torrentPath, UploadLimit: c.leechUp, SeedTime: lab.SeedForever})
		procs = append(procs, a.Process)
		wg.Add(1)
		go record(a.WaitDone, filepath.Join(a.Dir, name))
	}
	for i := 0; i < c.lt; i++ {
		l := lab.StartLibtorrent(t, lab.LibtorrentOptions{Torrent: c.torrentPath, UploadLimit: c.leechUp})
		procs = append(procs, l.Process)
		wg.Add(1)
		go record(l.WaitDone, filepath.Join(l.SavePath, name))
	}
	for i := 0; i < c.tr; i++ {
		tr := lab.StartTransmission(t, lab.TransmissionOptions{UploadLimit: c.leechUp})
		procs = append(procs, tr.Process)
		id, err := tr.AddTorrent(c.torrentPath, tr.DownloadDir)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go record(func(ctx context.Context) error { _, err := tr.WaitComplete(ctx, id); return err }, filepath.Join(tr.DownloadDir, name))
	}
	// The helper joins a swarm that exists, as the autopilot does: once the
	// tracker counts every leecher, so that its first announce lists them
	// (Transmission never dials loopback peers: it must be dialled).
	n := c.aria + c.lt + c.tr
	if _, err := c.ot.WaitScrape(ctx, c.hash, func(s lab.ScrapeResult) bool { return s.Incomplete >= n }); err != nil {
		t.Fatalf("the leechers never announced: %v", err)
	}
	var finish func()
	switch helper {
	case helperBtslave:
		finish = c.startBtslave(t, &res, seedAddr)
	case helperShare, helperFullSeed:
		opts := c.libtorrentHelper(helper, seedAddr)
		if helper == helperFullSeed {
			select {
			case <-ctx.Done():
			case <-time.After(c.fullSeedAfter):
			}
			res.helperCap = opts.UploadLimit
		}
		h := lab.StartLibtorrent(t, opts)
		procs = append(procs, h.Process)
		stop, polled := make(chan struct{}), make(chan struct{})
		go func() { // the helper's traffic over time, as the btslave child prints its own
			defer close(polled)
			began := time.Now()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if st, ok := h.Status(); ok {
					res.samples = append(res.samples, trafficSample{time.Since(began), st.TotalPayloadUpload, st.TotalPayloadDownload})
				}
			}
		}()
		finish = func() {
			close(stop)
			<-polled
			if st, ok := h.Status(); ok {
				res.helperUp, res.helperDown = st.TotalPayloadUpload, st.TotalPayloadDownload
			}
			res.helperRSS = repeater.PeakRSS(h.PID())
		}
	}

	wg.Wait()
	if finish != nil {
		finish()
	}
	sort.Slice(res.times, func(i, j int) bool { return res.times[i] < res.times[j] })
	if len(res.times) != c.aria+c.lt+c.tr {
		t.Fatalf("%s: only %d of %d leechers finished", helper, len(res.times), c.aria+c.lt+c.tr)
	}
	return res
}

// libtorrentHelper is how libtorrent plays helper: share mode, dialling
// the seed, or helperFullSeed, a second seed at its cap.
func (c *crowd) libtorrentHelper(helper string, seed netip.AddrPort) lab.LibtorrentOptions {
	if helper != helperFullSeed {
		return lab.LibtorrentOptions{Torrent: c.torrentPath, UploadLimit: c.helperUp,
			ShareMode: true, ShareModeTarget: c.shareTarget, Peers: []netip.AddrPort{seed}}
	}
	up := c.fullSeedUp
	if up == 0 {
		up = c.helperUp - c.helperUp/boundRatio
	}
	return lab.LibtorrentOptions{Torrent: c.torrentPath, SavePath: filepath.Dir(c.dataPath), SeedMode: true, UploadLimit: up}
}

// startSeed starts the seed and waits until it has the data and the
// tracker counts it.
func (c *crowd) startSeed(t testing.TB, ctx context.Context) (*lab.Process, netip.AddrPort) {
	dir := filepath.Dir(c.dataPath)
	var p *lab.Process
	var addr netip.AddrPort
	switch c.seed {
	case seedQBittorrent:
		q := lab.StartQBittorrent(t, lab.QBittorrentOptions{UploadLimit: c.seedUp, SavePath: dir})
		if err := q.AddTorrent(c.torrentPath, dir); err != nil {
			t.Fatal(err)
		}
		if _, err := q.WaitComplete(ctx, c.hash); err != nil {
			t.Fatal(err)
		}
		p, addr = q.Process, netip.AddrPortFrom(q.Addr, uint16(q.Port))
	default:
		seed := lab.StartTransmission(t, lab.TransmissionOptions{UploadLimit: c.seedUp, DownloadDir: dir})
		id, err := seed.AddTorrent(c.torrentPath, dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seed.WaitComplete(ctx, id); err != nil {
			t.Fatal(err)
		}
		p, addr = seed.Process, netip.AddrPortFrom(seed.Addr, uint16(seed.PeerPort))
	}
	return p, addr
}

// startBtslave runs the repeater as a child process (so that its peak RSS
// is its own) that announces to the tracker; finish collects its figures.
func (c *crowd) startBtslave(t testing.TB, res *crowdResult, seed netip.AddrPort) (finish func()) {
	addr := lab.NextAddr()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %s %d", repeater.RSSChildEnv, c.torrentPath, seed, c.helperCache, addr, c.helperUp))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	out := bufio.NewScanner(stdout)
	if !out.Scan() || !strings.HasPrefix(out.Text(), "port ") {
		t.Fatalf("btslave child: %q", out.Text())
	}
	// Read as it goes: the child prints a traffic sample every second.
	read := make(chan struct{})
	go func() {
		defer close(read)
		for out.Scan() {
			f := strings.Fields(out.Text())
			switch {
			case len(f) == 2 && f[0] == "hwm":
				res.helperRSS, _ = strconv.ParseInt(f[1], 10, 64)
			case len(f) == 4 && f[0] == "traffic":
				res.helperUp, _ = strconv.ParseInt(f[1], 10, 64)
				res.helperDown, _ = strconv.ParseInt(f[2], 10, 64)
				res.missing, _ = strconv.ParseInt(f[3], 10, 64)
			case len(f) == 4 && f[0] == "sample":
				ms, _ := strconv.ParseInt(f[1], 10, 64)
				up, _ := strconv.ParseInt(f[2], 10, 64)
				down, _ := strconv.ParseInt(f[3], 10, 64)
				res.samples = append(res.samples, trafficSample{time.Duration(ms) * time.Millisecond, up, down})
			}
		}
	}()
	return func() {
		stdin.Close()
		<-read
		cmd.Wait()
	}
}

// Ensure the direction of the repeater's help with real clients: with
// btslave helping a crowd starved by a qBittorrent seed (its default
// 4 slots and fastest-upload choker), the crowd finishes sooner than
// without, btslave uploads more than it downloads, every copy verifies,
// and btslave's library never saw a request for a piece it lacked (each
// would have closed a connection).
func TestInteropHelperSpeedsCrowd(t *testing.T) {
	lab.Require(t, "opentracker", "transmission-daemon", "aria2c", lab.PythonLibtorrent)
	lab.Require(t, "qbittorrent-nox")
	c := &crowd{size: 8 << 20, seed: seedQBittorrent, seedUp: 256 << 10, leechUp: 16 << 10, aria: 1, lt: 2,
		helperUp: 768 << 10, helperCache: 8 << 20, timeout: 4 * time.Minute}
	without := c.run(t, helperNone)
	with := c.run(t, helperBtslave)
	t.Log(without)
	t.Log(with)
	if with.mean() >= without.mean() {
		t.Errorf("the crowd was not faster with btslave: mean %v with, %v without", with.mean(), without.mean())
	}
	if with.ratio() <= 1 {
		t.Errorf("btslave's ratio %.2f, want > 1", with.ratio())
	}
	if with.missing != 0 {
		t.Errorf("btslave's library saw %d requests for pieces it lacked", with.missing)
	}
}

// BenchmarkCrowd is issue #4's scenario: a 128 MiB torrent, a Transmission
// seed at 1 MiB/s, six leechers (aria2 and libtorrent) at 256 KiB/s each,
// and no helper, btslave (2 MiB/s, 32 MiB cache) or libtorrent share mode
// (target 3, 2 MiB/s). Goal: btslave ratio >= 4 with the crowd's mean
// completion >= 30% faster than without, and ahead of share mode on ratio
// at equal or better crowd speed. About 12 minutes: run it alone, with
// -benchtime 1x (bench/run.sh crowd).
func BenchmarkCrowd(b *testing.B) {
	lab.Require(b, "opentracker", "transmission-daemon", "aria2c", lab.PythonLibtorrent)
	c := &crowd{size: 128 << 20, seedUp: 1 << 20, leechUp: 256 << 10, aria: 3, lt: 3,
		helperUp: 2 << 20, helperCache: 32 << 20, shareTarget: 3, timeout: 15 * time.Minute}
	helpers := []string{helperNone, helperBtslave, helperShare}
	if only := os.Getenv("CROWD_HELPERS"); only != "" { // e.g. "btslave", while tuning
		helpers = strings.Split(only, ",")
	}
	for i := 0; i < b.N; i++ {
		var base time.Duration
		for _, h := range helpers {
			r := c.run(b, h)
			b.Log(r)
			if h == helperNone {
				base = r.mean()
				continue
			}
			key := strings.ReplaceAll(strings.SplitN(h, " ", 2)[0], " ", "-")
			b.ReportMetric(r.ratio(), key+"-ratio")
			if base > 0 {
				b.ReportMetric(100*(1-r.mean().Seconds()/base.Seconds()), key+"-crowd-faster-%")
			}
			b.ReportMetric(float64(r.helperRSS)/(1<<20), key+"-peak-RSS-MiB")
		}
	}
}
