// Package demo is `btslave demo`: a seed-starved swarm on loopback, run
// twice — once without help and once with btslave's repeater (the same
// repeater package the daemon runs) — so that a new user sees in about a
// minute and a half what the repeater does, with measured figures.
//
// Everything is in-process: the embedded tracker, an anacrolix seed and a
// handful of anacrolix leechers, each with an upload cap that keeps the
// crowd short of upload. DHT, PEX, LSD, uTP and UPnP are off; every socket
// is on 127.0.0.1.
package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/repeater"
	"github.com/btslave/btslave/tracker"
)

// Options sizes the demo swarm. The zero value of a field takes its
// default from Default.
type Options struct {
	Size     int64 // torrent size, bytes
	PieceLen int64
	Leechers int
	// SeedUp, LeechUp and HelperUp are upload caps in bytes/s.
	SeedUp, LeechUp, HelperUp int64
	// TrackerAddr is the embedded tracker's HTTP listen address; a taken
	// port fails the demo at once.
	TrackerAddr string
	// Timeout bounds each round.
	Timeout time.Duration
	// Dir holds the torrent's data and the leechers' downloads; empty is a
	// fresh temporary directory, removed at the end.
	Dir    string
	Logger *slog.Logger
	// Progress is called about four times a second while a round runs.
	Progress func(Progress)
	// Helper, when set, is told of the repeater of the second round once it
	// runs, and of nil before it closes (the dashboard of `btslave demo
	// --web` reads it).
	Helper func(*repeater.Repeater, *tracker.Tracker)
}

// Default is the full demo: 3 MiB, five leechers at 24 KiB/s each and a
// seed at 384 KiB/s; the helper may upload 1 MiB/s.
func Default() Options {
	return Options{Size: 3 << 20, PieceLen: 256 << 10, Leechers: 5, SeedUp: 384 << 10, LeechUp: 24 << 10,
		HelperUp: 1 << 20, TrackerAddr: "127.0.0.1:6970", Timeout: 3 * time.Minute}
}

func (o *Options) fill() {
	d := Default()
	set := func(v *int64, dv int64) {
		if *v <= 0 {
			*v = dv
		}
	}
	set(&o.Size, d.Size)
	set(&o.PieceLen, d.PieceLen)
	set(&o.SeedUp, d.SeedUp)
	set(&o.LeechUp, d.LeechUp)
	set(&o.HelperUp, d.HelperUp)
	if o.Leechers <= 0 {
		o.Leechers = d.Leechers
	}
	if o.TrackerAddr == "" {
		o.TrackerAddr = d.TrackerAddr
	}
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Progress is a round's state.
type Progress struct {
	Round   int    // 1: without help, 2: with the repeater
	Label   string // "without help" or "with btslave"
	Elapsed time.Duration
	// Leechers are the leechers' completed fractions, 0..1.
	Leechers []float64
	// HelperUp and HelperDown are the repeater's payload bytes (round 2).
	HelperUp, HelperDown int64
}

// Round is one round's outcome.
type Round struct {
	Label string
	// Times are each leecher's time to complete (Timeout if it did not).
	Times     []time.Duration
	Mean, Max time.Duration
	Completed int
	// HelperUp and HelperDown are the repeater's payload bytes; Ratio is
	// up/down (0 without the repeater).
	HelperUp, HelperDown int64
	Ratio                float64
}

// Result is the demo's outcome.
type Result struct {
	Without, With Round
}

// Gain is how much sooner the crowd completed, on average, with the helper:
// 1 - with/without (0.5: in half the time).
func (r Result) Gain() float64 {
	if r.Without.Mean <= 0 {
		return 0
	}
	return 1 - float64(r.With.Mean)/float64(r.Without.Mean)
}

// ErrPortTaken is wrapped by Run's error when the tracker's port is in use.
var ErrPortTaken = errors.New("port already in use")

// Run plays both rounds and returns their figures.
func Run(ctx context.Context, o Options) (Result, error) {
	o.fill()
	// Fail on a taken port before doing anything else.
	ln, err := net.Listen("tcp", o.TrackerAddr)
	if err != nil {
		return Result{}, fmt.Errorf("demo tracker on %s: %w (%w); pick another with --tracker", o.TrackerAddr, ErrPortTaken, err)
	}
	ln.Close()
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "btslave-demo-"); err != nil {
			return Result{}, fmt.Errorf("demo dir: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	mi, err := makeTorrent(filepath.Join(dir, "seed"), o.Size, o.PieceLen)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if res.Without, err = playRound(ctx, o, dir, mi, 1); err != nil {
		return res, err
	}
	if res.With, err = playRound(ctx, o, dir, mi, 2); err != nil {
		return res, err
	}
	return res, nil
}

// makeTorrent writes size random bytes into dir/demo.bin and returns their
// metainfo.
func makeTorrent(dir string, size, pieceLen int64) (*metainfo.MetaInfo, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("demo data: %w", err)
	}
	data := make([]byte, size)
	_, _ = rand.Read(data)
	path := filepath.Join(dir, "demo.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("demo data: %w", err)
	}
	info := metainfo.Info{PieceLength: pieceLen}
	if err := info.BuildFromFilePath(path); err != nil {
		return nil, fmt.Errorf("demo torrent: %w", err)
	}
	mi := &metainfo.MetaInfo{}
	var err error
	if mi.InfoBytes, err = bencode.Marshal(info); err != nil {
		return nil, fmt.Errorf("demo torrent: %w", err)
	}
	return mi, nil
}

// peer is the [peer] configuration of one in-process client: loopback,
// IPv4, every discovery off, upload capped at up bytes/s.
func peer(up int64) config.Peer {
	p := config.Default().Peer
	p.Listen = "127.0.0.1:0"
	p.IPv6, p.DHT, p.PEX, p.UTP, p.PortForwarding = false, false, false, false, false
	p.UploadLimit = config.Rate(up)
	return p
}

// closers closes what a round started, last first.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }
func (c closers) close() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

func playRound(ctx context.Context, o Options, dir string, mi *metainfo.MetaInfo, n int) (Round, error) {
	label := "without help"
	if n == 2 {
		label = "with btslave"
	}
	rd := Round{Label: label}
	var cl closers
	defer cl.close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// A fresh tracker each round, so that no peer of the last round is
	// listed.
	tr, err := tracker.New(tracker.Options{HTTPListen: o.TrackerAddr, Interval: time.Minute, Logger: o.Logger})
	// The last round's tracker has just closed this port; the kernel may
	// refuse it again for a moment (seen now and then after round 1), so a
	// later round retries for a few seconds. Run checked that nobody else
	// holds it.
	for try := 0; err != nil && isAddrInUse(err) && n > 1 && try < 50; try++ {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return rd, ctx.Err()
		}
		tr, err = tracker.New(tracker.Options{HTTPListen: o.TrackerAddr, Interval: time.Minute, Logger: o.Logger})
	}
	if err != nil {
		if isAddrInUse(err) {
			return rd, fmt.Errorf("demo tracker on %s: %w (%w)", o.TrackerAddr, ErrPortTaken, err)
		}
		return rd, fmt.Errorf("demo tracker: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = tr.Run(rctx) }()
	cl.add(func() { cancel(); wg.Wait(); tr.Close() })
	spec := func() *torrent.TorrentSpec {
		s := torrent.TorrentSpecFromMetaInfo(mi)
		s.Trackers = [][]string{{tr.AnnounceURL()}}
		return s
	}

	seed, err := repeater.NewClient(repeater.ClientOptions{Peer: peer(o.SeedUp), Storage: storage.NewFile(filepath.Join(dir, "seed")),
		Logger: o.Logger, Trackers: true})
	if err != nil {
		return rd, fmt.Errorf("demo seed: %w", err)
	}
	cl.add(seed.Close)
	st, _, err := seed.AddTorrentSpec(spec())
	if err != nil {
		return rd, fmt.Errorf("demo seed: %w", err)
	}
	st.VerifyData()
	select {
	case <-st.Complete().On():
	case <-time.After(time.Minute):
		return rd, errors.New("demo seed: its data did not verify in a minute")
	case <-ctx.Done():
		return rd, ctx.Err()
	}

	// Every client is also told the seed's address, as a peer from the
	// tracker would be: one announce lost on a loaded machine (anacrolix
	// retries a failed one only after minutes) left the seed unknown to the
	// leechers for the whole round.
	seedPeer := []torrent.PeerInfo{{Addr: seed.ListenAddrs()[0], Source: "tracker"}}

	var rep *repeater.Repeater
	var sw *repeater.Swarm
	if n == 2 {
		cfg := config.Default()
		cfg.Cache.Size = config.Size(o.Size)
		cfg.Repeater.SwarmCache = config.Size(o.Size)
		rep, err = repeater.New(repeater.Options{Peer: peer(o.HelperUp), Cache: cfg.Cache, Repeater: cfg.Repeater,
			Logger: o.Logger, Announce: true, Tick: 100 * time.Millisecond,
			Leave: repeater.LeavePolicy{Grace: time.Hour, IdleFor: time.Hour}})
		if err != nil {
			return rd, fmt.Errorf("demo repeater: %w", err)
		}
		cl.add(rep.Close)
		if sw, err = rep.JoinWith(spec(), repeater.JoinOptions{Keep: true}); err != nil {
			return rd, fmt.Errorf("demo repeater: %w", err)
		}
		sw.AddPeers(seedPeer)
		if o.Helper != nil {
			o.Helper(rep, tr)
			cl.add(func() { o.Helper(nil, nil) }) // before the repeater closes
		}
	}

	leechers := make([]*torrent.Torrent, o.Leechers)
	for i := range leechers {
		c, err := repeater.NewClient(repeater.ClientOptions{Peer: peer(o.LeechUp),
			Storage: storage.NewFile(filepath.Join(dir, fmt.Sprintf("round%d-leecher%d", n, i))), Logger: o.Logger, Trackers: true})
		if err != nil {
			return rd, fmt.Errorf("demo leecher: %w", err)
		}
		cl.add(c.Close)
		t, _, err := c.AddTorrentSpec(spec())
		if err != nil {
			return rd, fmt.Errorf("demo leecher: %w", err)
		}
		t.AddPeers(seedPeer)
		t.DownloadAll()
		leechers[i] = t
	}

	start := time.Now()
	rd.Times = make([]time.Duration, len(leechers))
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(o.Timeout)
	for {
		p := Progress{Round: n, Label: label, Elapsed: time.Since(start), Leechers: make([]float64, len(leechers))}
		done := 0
		for i, t := range leechers {
			p.Leechers[i] = float64(t.BytesCompleted()) / float64(max(t.Length(), 1))
			if rd.Times[i] == 0 && t.Complete().Bool() {
				rd.Times[i] = p.Elapsed
			}
			if rd.Times[i] != 0 {
				done++
			}
			rd.Completed = done
		}
		if rep != nil {
			tot := rep.Client().Wire.Totals(sw.InfoHash())
			p.HelperUp, p.HelperDown = tot.BytesUp, tot.BytesDown
			rd.HelperUp, rd.HelperDown = tot.BytesUp, tot.BytesDown
		}
		if o.Progress != nil {
			o.Progress(p)
		}
		if done == len(leechers) {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			for i := range rd.Times {
				if rd.Times[i] == 0 {
					rd.Times[i] = o.Timeout
				}
			}
			rd.summarize()
			return rd, fmt.Errorf("demo round %d (%s): %d of %d leechers incomplete after %s", n, label, len(leechers)-done, len(leechers), o.Timeout)
		case <-ctx.Done():
			return rd, ctx.Err()
		}
	}
	rd.summarize()
	return rd, nil
}

func (rd *Round) summarize() {
	var sum time.Duration
	for _, t := range rd.Times {
		sum += t
		rd.Max = max(rd.Max, t)
	}
	if len(rd.Times) > 0 {
		rd.Mean = sum / time.Duration(len(rd.Times))
	}
	if rd.HelperDown > 0 {
		rd.Ratio = float64(rd.HelperUp) / float64(rd.HelperDown)
	}
}

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// randomToken is a throw-away API token: the demo's dashboard is logged
// into with one-time codes only.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
