package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/friends"
)

// TestFriendsBench (FRIENDS_BENCH=1, bench/run.sh friends) prints how much
// sooner A's master finishes the seed-starved torrent with B's help, and
// with B's and C's (cashin_helpers 2), than with A's own capped helper
// alone, and each side's ledger afterwards, the IOUs of each pair
// compared between its two ledgers.
func TestFriendsBench(t *testing.T) {
	if os.Getenv("FRIENDS_BENCH") == "" {
		t.Skip("FRIENDS_BENCH=1 runs it (bench/run.sh friends)")
	}
	// The seed is the bottleneck of the swarm, B's and C's upload each
	// of the path to A's master: one helper forwards at most upHelper of
	// the seed's seedUp, two up to the seed's rate.
	o := friendsLabOptions{size: 8 << 20, upA: 128 << 10, upHelper: 256 << 10, seedUp: 640 << 10}
	if mib, err := strconv.Atoi(os.Getenv("FRIENDS_SIZE_MIB")); err == nil && mib > 0 {
		o.size = int64(mib) << 20
	}
	type result struct {
		took    time.Duration
		ledgers string
		trace   string
	}
	// run plays one download of x by A's master with helpers (by invite,
	// both ways) cashed in; its programs end with the subtest.
	run := func(t *testing.T, helpers ...string) result {
		l := startFriendsLab(t, o, map[string][]string{"b": {`starter_credit = "32MiB"`}, "c": {`starter_credit = "32MiB"`}})
		for _, h := range helpers {
			l.invite("a", h)
			l.invite(h, "a")
		}
		for _, n := range append([]string{"a"}, helpers...) {
			l.nodes[n].proc = startDaemon(t, l.nodes[n].cfg, l.nodes[n].data)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
		defer cancel()
		names := map[netip.Addr]string{l.seed.Addr: "seed"}
		for n, node := range l.nodes {
			names[node.peerIP] = strings.ToUpper(n)
		}
		var trace, seedTrace *masterTrace
		took := l.download(ctx, "a", "x", func() {
			trace = traceMaster(l.nodes["a"].master, l.downloading, names, false)
			seedTrace = traceMaster(l.seed, l.seedID["x"], names, true)
			if len(helpers) == 0 {
				return
			}
			code, out, errOut := l.cli("a", "cashin", l.hash["x"], "--master", l.nodes["a"].masterAddr(), "--torrent", l.torrent["x"])
			if code != 0 {
				t.Fatalf("cashin: %s", errOut)
			}
			for _, h := range helpers {
				if !strings.Contains(out, "friend "+friends.NewID(l.key(h)).String()+" helps") {
					t.Fatalf("%s does not help: %q", strings.ToUpper(h), out)
				}
			}
		})
		tr := "     what A's master got, by source:\n" + trace.String() + "     what the seed sent, by peer:\n" + seedTrace.String()
		time.Sleep(3 * time.Second) // three report intervals: the last IOUs
		procs := map[string]*daemonProc{}
		for n, node := range l.nodes {
			procs[n] = node.proc
		}
		l.stop()
		if dir := os.Getenv("FRIENDS_LOGS"); dir != "" {
			for _, n := range append([]string{"a"}, helpers...) {
				os.WriteFile(filepath.Join(dir, t.Name()[len("TestFriendsBench/"):]+"-"+n+".log"), procs[n].log.Bytes(), 0o644)
			}
		}
		var b strings.Builder
		for _, h := range helpers {
			hd, hc := l.history("a", "a", h), l.history(h, "a", h)
			same := len(hd) == len(hc)
			for i := 0; same && i < len(hd); i++ {
				same = bytes.Equal(hd[i], hc[i])
			}
			if !same {
				t.Errorf("A→%s: A holds %d IOUs, %s %d, not the same", strings.ToUpper(h), len(hd), strings.ToUpper(h), len(hc))
			}
			fmt.Fprintf(&b, "  A→%s: %d countersigned IOUs, identical in both ledgers: %v\n", strings.ToUpper(h), len(hd), same)
		}
		for _, n := range append([]string{"a"}, helpers...) {
			_, out, _ := l.cli(n, "ledger")
			fmt.Fprintf(&b, "  %s's ledger:\n", strings.ToUpper(n))
			for line := range strings.Lines(out) {
				b.WriteString("    " + line)
			}
		}
		return result{took, b.String(), tr}
	}
	runs := []struct {
		name    string
		helpers []string
	}{{"alone", nil}, {"with B", []string{"b"}}, {"with B and C", []string{"b", "c"}}}
	res := make([]result, len(runs))
	for i, r := range runs {
		if !t.Run(strings.ReplaceAll(r.name, " ", "_"), func(t *testing.T) { res[i] = run(t, r.helpers...) }) {
			t.FailNow()
		}
	}
	fmt.Printf("  A's master, %d MiB seed-starved (seed %d KiB/s, A's upload %d KiB/s, B's and C's %d KiB/s; cashin_helpers 2):\n",
		o.size>>20, o.seedUp>>10, o.upA>>10, o.upHelper>>10)
	alone := res[0].took
	for i, r := range runs {
		fmt.Printf("    %-13s %6.1f s", r.name, res[i].took.Seconds())
		if i > 0 {
			fmt.Printf("  %5.1f s sooner than alone (%.0f%% of the time)", (alone - res[i].took).Seconds(), 100*res[i].took.Seconds()/alone.Seconds())
		}
		fmt.Println()
		fmt.Print(res[i].trace)
	}
	for i, r := range runs[1:] {
		fmt.Printf("  ledgers after the run %s:\n%s", r.name, res[i+1].ledgers)
	}
}
