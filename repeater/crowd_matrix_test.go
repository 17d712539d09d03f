package repeater_test

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/internal/lab"
)

// BenchmarkCrowdMatrix is issue #9's matrix: seeds {Transmission,
// qBittorrent on its default slots and choker} x leechers {aria2 +
// libtorrent, Transmission + libtorrent} x piece sizes {256 KiB, 1 MiB};
// in each cell no helper, btslave and libtorrent's share mode with the same
// caps. A 16 MiB torrent keeps the crowd seed-starved (seed 768 KiB/s,
// six leechers at 192 KiB/s, helpers at 1.5 MiB/s with a 10 MiB cache:
// the bound without a helper is 51 s, with one at ratio 4 32 s) and a
// cell near four minutes. It prints a row per helper and cell: the
// crowd's mean and max, the bound, the crowd gain, the helper's ratio,
// its lowest ratio past its first minute, its mean upload as a fraction
// of its cap and its peak RSS. Goal: gain >= 0.6 (moonshot 0.8) at ratio
// >= 4 in every cell, ahead of share mode, never a ratio below 1 past the
// first minute. Run it alone: bench/run.sh matrix.
// CROWD_CELLS=qbittorrent/aria2/256 (a comma list of seed/leechers/KiB,
// any power-of-two piece size, and options such as /seed=2048 that
// setOption reads: a swarm outside the matrix too)
// runs some cells only, CROWD_HELPERS=none,btslave some helpers only
// (none, btslave, share, and fullseed: not a repeater but a ceiling, a
// second seed capped at what a helper at ratio 4 adds, H·(1 − 1/4)).
// CROWD_RUNS=3 plays each cell three times, the helpers interleaved, and
// adds a row per helper with the median and the range of its runs: a
// single run's mean moves by about ±3 s, a ratio by ±0.5.
func BenchmarkCrowdMatrix(b *testing.B) {
	lab.Require(b, "opentracker", "transmission-daemon", "qbittorrent-nox", "aria2c", lab.PythonLibtorrent)
	var cells []string
	for _, seed := range []string{seedTransmission, seedQBittorrent} {
		for _, leechers := range []string{"aria2", "transmission"} {
			for _, kib := range []int64{256, 1024} {
				cells = append(cells, fmt.Sprintf("%s/%s/%d", seed, leechers, kib))
			}
		}
	}
	if env := os.Getenv("CROWD_CELLS"); env != "" {
		cells = strings.Split(env, ",")
	}
	var crowds []*crowd
	for _, cell := range cells {
		c, err := matrixCell(cell)
		if err != nil {
			b.Fatal(err)
		}
		crowds = append(crowds, c)
	}
	helpers := []string{helperNone, helperBtslave, helperShare}
	if h := os.Getenv("CROWD_HELPERS"); h != "" {
		helpers = nil
		for _, name := range strings.Split(h, ",") {
			switch name {
			case "share":
				name = helperShare
			case "fullseed":
				name = helperFullSeed
			}
			helpers = append(helpers, name)
		}
	}
	runs := 1
	if env := os.Getenv("CROWD_RUNS"); env != "" {
		n, err := strconv.Atoi(env)
		if err != nil || n < 1 {
			b.Fatalf("CROWD_RUNS=%q: want a whole number of runs, at least 1", env)
		}
		runs = n
	}
	fmt.Printf("%-34s %-22s %7s %7s %7s %6s %6s %7s %7s %8s\n", "cell", "helper", "mean s", "max s", "bound s", "gain", "ratio", "min>1m", "up/cap", "RSS MiB")
	for i := 0; i < b.N; i++ {
		for j, c := range crowds {
			playCell(b, c, cells[j], helpers, runs)
		}
	}
}

// matrixCell is the crowd of one cell, seed/leechers/KiB: the matrix's
// seeds and leechers, any piece size from 16 KiB to 4 MiB (a power of
// two), so that a swarm outside the matrix can be tried too.
func matrixCell(cell string) (*crowd, error) {
	f := strings.Split(cell, "/")
	if len(f) < 3 {
		return nil, fmt.Errorf("crowd cell %q: want seed/leechers/KiB[/key=value...], as qbittorrent/aria2/256", cell)
	}
	kib, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || kib < 16 || kib > 4096 || kib&(kib-1) != 0 {
		return nil, fmt.Errorf("crowd cell %q: piece size %q KiB is not a power of two from 16 to 4096", cell, f[2])
	}
	c := &crowd{size: 16 << 20, pieceLen: kib << 10, seedUp: 768 << 10, leechUp: 192 << 10,
		lt: 3, helperUp: 3 << 19, helperCache: 10 << 20, shareTarget: 4, timeout: 10 * time.Minute}
	switch f[0] {
	case seedTransmission, seedQBittorrent:
		c.seed = f[0]
	default:
		return nil, fmt.Errorf("crowd cell %q: seed %q is not %s or %s", cell, f[0], seedTransmission, seedQBittorrent)
	}
	switch f[1] {
	case "aria2":
		c.aria = 3
	case "transmission":
		c.tr = 3
	default:
		return nil, fmt.Errorf("crowd cell %q: leechers %q are not aria2 or transmission", cell, f[1])
	}
	for _, kv := range f[3:] {
		if err := c.setOption(kv); err != nil {
			return nil, fmt.Errorf("crowd cell %q: %w", cell, err)
		}
	}
	return c, nil
}

// setOption changes one of a cell's figures from the matrix's, for a
// swarm outside it: mib (the torrent's size), seed, leech and cap (the
// seed's, each leecher's and the helpers' upload, KiB/s), cache (the
// helpers' cache, MiB), lt and others (how many libtorrent leechers and
// how many of the cell's other kind), fullseed (the full-seed ceiling's
// upload, KiB/s) and fullseedafter (seconds it waits past the moment a
// helper joins, once the tracker counts every leecher), as in
// qbittorrent/transmission/512/seed=2048/others=6.
func (c *crowd) setOption(kv string) error {
	key, value, ok := strings.Cut(kv, "=")
	n, err := strconv.ParseInt(value, 10, 64)
	if !ok || err != nil || n < 0 {
		return fmt.Errorf("option %q: want key=whole number", kv)
	}
	switch key {
	case "mib":
		c.size = n << 20
	case "seed":
		c.seedUp = n << 10
	case "leech":
		c.leechUp = n << 10
	case "cap":
		c.helperUp = n << 10
	case "cache":
		c.helperCache = n << 20
	case "fullseed":
		c.fullSeedUp = n << 10
	case "fullseedafter":
		c.fullSeedAfter = time.Duration(n) * time.Second
	case "lt":
		c.lt = int(n)
	case "others":
		if c.aria > 0 {
			c.aria = int(n)
		} else {
			c.tr = int(n)
		}
	default:
		return fmt.Errorf("option %q: key is not mib, seed, leech, cap, cache, fullseed, fullseedafter, lt or others", kv)
	}
	if c.size == 0 || c.seedUp == 0 || c.leechUp == 0 || c.helperUp == 0 || c.aria+c.lt+c.tr == 0 {
		return fmt.Errorf("option %q: a crowd needs a torrent, upload everywhere and a leecher", kv)
	}
	return nil
}

// playCell runs one cell runs times with each helper, interleaved, and
// prints a row per run (the gain only after a no-helper run), then, for
// more than one run, a row per helper with the median and range of its
// runs (the gain against the no-helper runs' median mean).
func playCell(b *testing.B, c *crowd, cell string, helpers []string, runs int) {
	results := map[string][]crowdResult{}
	var none time.Duration
	for range runs {
		none = playRound(b, c, cell, helpers, none, results)
	}
	if runs < 2 {
		return
	}
	var noneMedian time.Duration
	if rs := results[helperNone]; len(rs) > 0 {
		noneMedian = time.Duration(median(collect(rs, func(r crowdResult) float64 { return float64(r.mean()) })))
	}
	bound := c.bound(float64(c.helperUp))
	for _, h := range helpers {
		fmt.Println(summaryRow(cell, h, results[h], noneMedian, bound))
	}
}

// summaryRow is a helper's median row over its runs rs: its crowd mean,
// and for a helper its gain against noneMedian (when known), its ratio
// over the runs that downloaded something, and its lowest ratio past the
// first minute (issue #9: never below 1).
func summaryRow(cell, h string, rs []crowdResult, noneMedian, bound time.Duration) string {
	means := collect(rs, func(r crowdResult) float64 { return r.mean().Seconds() })
	row := fmt.Sprintf("%-34s %-22s median of %d: mean %s s", cell, h, len(rs), spread(means, "%.1f"))
	if h == helperNone {
		return row
	}
	if noneMedian > 0 {
		row += ", gain " + spread(collect(rs, func(r crowdResult) float64 { return gain(noneMedian, r.mean(), bound) }), "%.2f")
	}
	var ratios []float64
	lowest := math.Inf(1)
	for _, r := range rs {
		if r.helperDown > 0 {
			ratios = append(ratios, r.ratio())
		}
		if m := r.minRatioAfter(time.Minute); !math.IsNaN(m) {
			lowest = min(lowest, m)
		}
	}
	row += ", ratio " + spread(ratios, "%.2f")
	if !math.IsInf(lowest, 1) {
		row += fmt.Sprintf(", lowest ratio past 1 min %.2f", lowest)
	}
	return row
}

// collect maps the runs to one figure each.
func collect(rs []crowdResult, f func(crowdResult) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

// median is the middle of xs (the mean of the two middle ones for an even
// count); NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread prints the median of xs and their range, "4.1 (3.6–4.5)";
// "none" without any.
func spread(xs []float64, format string) string {
	if len(xs) == 0 {
		return "none"
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", median(xs), slices.Min(xs), slices.Max(xs))
}

// playRound runs the cell once with each helper, printing a row per run;
// none is the last no-helper mean, for the gain. It returns it updated.
func playRound(b *testing.B, c *crowd, cell string, helpers []string, none time.Duration, results map[string][]crowdResult) time.Duration {
	for _, h := range helpers {
		r := c.run(b, h)
		results[h] = append(results[h], r)
		b.Log(cell, r)
		if len(r.samples) > 0 {
			b.Log(cell, h, "traffic every 10 s (up/down MiB):", r.timeline(10*time.Second))
		}
		mean := r.mean()
		if h == helperNone {
			none = mean
			fmt.Printf("%-34s %-22s %7.1f %7.1f %7.1f %6s %6s %7s %7s %8s\n", cell, h, mean.Seconds(), r.times[len(r.times)-1].Seconds(), c.bound(0).Seconds(), "-", "-", "-", "-", "-")
			continue
		}
		bound := c.bound(float64(c.helperUp))
		g, low := "-", "-"
		if none > 0 {
			g = fmt.Sprintf("%.2f", gain(none, mean, bound))
		}
		// "none": the helper downloaded nothing (share mode, mostly),
		// where a ratio says nothing.
		if m := r.minRatioAfter(time.Minute); math.IsInf(m, 1) {
			low = "none"
		} else if !math.IsNaN(m) {
			low = fmt.Sprintf("%.2f", m)
		}
		ratio := "none"
		if r.helperDown > 0 {
			ratio = fmt.Sprintf("%.2f", r.ratio())
		}
		fmt.Printf("%-34s %-22s %7.1f %7.1f %7.1f %6s %6s %7s %7.2f %8.1f\n", cell, h, mean.Seconds(), r.times[len(r.times)-1].Seconds(),
			bound.Seconds(), g, ratio, low, r.upFraction(), float64(r.helperRSS)/(1<<20))
	}
	return none
}

// TestMedianSpread checks the figures CROWD_RUNS prints.
func TestMedianSpread(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want string
	}{
		{[]float64{3.9, 3.1, 4.4}, "3.90 (3.10–4.40)"},
		{[]float64{2, 1, 4, 3}, "2.50 (1.00–4.00)"},
		{[]float64{5}, "5.00 (5.00–5.00)"},
		{nil, "none"},
	} {
		in := slices.Clone(tc.xs)
		if got := spread(tc.xs, "%.2f"); got != tc.want {
			t.Errorf("spread(%v) = %q, want %q", in, got, tc.want)
		}
		if !slices.Equal(in, tc.xs) {
			t.Errorf("spread reordered its input: %v, was %v", tc.xs, in)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}

// TestSummaryRow checks a helper's median row: the gain against the
// no-helper median, the ratio only over runs that downloaded something,
// and the lowest ratio past the first minute over all runs.
func TestSummaryRow(t *testing.T) {
	run := func(mean time.Duration, up, down int64, lateUp, lateDown int64) crowdResult {
		return crowdResult{times: []time.Duration{mean}, helperUp: up, helperDown: down,
			samples: []trafficSample{{at: 70 * time.Second, up: lateUp, down: lateDown}}}
	}
	rs := []crowdResult{run(40*time.Second, 40, 10, 30, 20), run(44*time.Second, 30, 10, 30, 10), run(42*time.Second, 5, 0, 5, 0)}
	got := summaryRow("c", helperBtslave, rs, 52*time.Second, 32*time.Second)
	want := fmt.Sprintf("%-34s %-22s median of 3: mean 42.0 (40.0–44.0) s, gain 0.50 (0.40–0.60), ratio 3.50 (3.00–4.00), lowest ratio past 1 min 1.50", "c", helperBtslave)
	if got != want {
		t.Errorf("summaryRow:\n got %q\nwant %q", got, want)
	}
	if got := summaryRow("c", helperNone, rs[:1], 0, 0); strings.Contains(got, "gain") || strings.Contains(got, "ratio") {
		t.Errorf("no-helper row %q has a gain or a ratio", got)
	}
}

// TestMatrixCell reads cells as CROWD_CELLS gives them, options too, and
// refuses what is not a crowd.
func TestMatrixCell(t *testing.T) {
	c, err := matrixCell("qbittorrent/transmission/512/seed=2048/others=6/mib=64/cap=1024/cache=32/lt=2/leech=256/fullseed=549/fullseedafter=10")
	if err != nil {
		t.Fatal(err)
	}
	if c.seed != seedQBittorrent || c.pieceLen != 512<<10 || c.seedUp != 2<<20 || c.tr != 6 || c.aria != 0 ||
		c.lt != 2 || c.size != 64<<20 || c.helperUp != 1<<20 || c.helperCache != 32<<20 || c.leechUp != 256<<10 ||
		c.fullSeedUp != 549<<10 || c.fullSeedAfter != 10*time.Second {
		t.Errorf("options not applied: %+v", c)
	}
	c, err = matrixCell("transmission/aria2/256")
	if err != nil {
		t.Fatal(err)
	}
	if c.aria != 3 || c.lt != 3 || c.tr != 0 || c.size != 16<<20 || c.bound(0) != 51200*time.Millisecond {
		t.Errorf("the matrix's cell changed: %+v, bound %v", c, c.bound(0))
	}
	for _, bad := range []string{
		"transmission/aria2", "deluge/aria2/256", "transmission/rtorrent/256", "transmission/aria2/300",
		"transmission/aria2/256/seed", "transmission/aria2/256/seed=-1", "transmission/aria2/256/speed=9",
		"transmission/aria2/256/seed=0", "transmission/aria2/256/lt=0/others=0",
	} {
		if _, err := matrixCell(bad); err == nil {
			t.Errorf("matrixCell(%q) = nil error", bad)
		}
	}
}
