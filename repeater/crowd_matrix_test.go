package repeater_test

import (
	"fmt"
	"math"
	"os"
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
// CROWD_CELLS=qbittorrent/aria2/256 (a comma list of seed/leechers/KiB)
// runs some cells only, CROWD_HELPERS=none,btslave some helpers only.
func BenchmarkCrowdMatrix(b *testing.B) {
	lab.Require(b, "opentracker", "transmission-daemon", "qbittorrent-nox", "aria2c", lab.PythonLibtorrent)
	only := map[string]bool{}
	for _, c := range strings.Split(os.Getenv("CROWD_CELLS"), ",") {
		if c != "" {
			only[c] = true
		}
	}
	helpers := []string{helperNone, helperBtslave, helperShare}
	if h := os.Getenv("CROWD_HELPERS"); h != "" {
		helpers = nil
		for _, name := range strings.Split(h, ",") {
			if name == "share" {
				name = helperShare
			}
			helpers = append(helpers, name)
		}
	}
	fmt.Printf("%-34s %-22s %7s %7s %7s %6s %6s %7s %7s %8s\n", "cell", "helper", "mean s", "max s", "bound s", "gain", "ratio", "min>1m", "up/cap", "RSS MiB")
	for i := 0; i < b.N; i++ {
		for _, seed := range []string{seedTransmission, seedQBittorrent} {
			for _, leechers := range []string{"aria2", "transmission"} {
				for _, kib := range []int64{256, 1024} {
					cell := fmt.Sprintf("%s/%s/%d", seed, leechers, kib)
					if len(only) > 0 && !only[cell] {
						continue
					}
					c := &crowd{size: 16 << 20, pieceLen: kib << 10, seed: seed, seedUp: 768 << 10, leechUp: 192 << 10,
						lt: 3, helperUp: 3 << 19, helperCache: 10 << 20, shareTarget: 4, timeout: 10 * time.Minute}
					if leechers == "aria2" {
						c.aria = 3
					} else {
						c.tr = 3
					}
					playCell(b, c, cell, helpers)
				}
			}
		}
	}
}

// playCell runs one cell with each helper and prints its rows (the gain
// only after a no-helper run).
func playCell(b *testing.B, c *crowd, cell string, helpers []string) {
	var none time.Duration
	for _, h := range helpers {
		r := c.run(b, h)
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
}
