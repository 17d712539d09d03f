package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
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
	type result struct {
		took    time.Duration
		ledgers string
	}
	// run plays one download of x by A's master with helpers (by invite,
	// both ways) cashed in; its programs end with the subtest.
	run := func(t *testing.T, helpers ...string) result {
		l := startFriendsLab(t, friendsOwnUp, map[string][]string{"b": {`starter_credit = "32MiB"`}, "c": {`starter_credit = "32MiB"`}})
		for _, h := range helpers {
			l.invite("a", h)
			l.invite(h, "a")
		}
		for _, n := range append([]string{"a"}, helpers...) {
			l.nodes[n].proc = startDaemon(t, l.nodes[n].cfg, l.nodes[n].data)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		took := l.download(ctx, "a", "x", func() {
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
		time.Sleep(3 * time.Second) // three report intervals: the last IOUs
		l.stop()
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
		return result{took, b.String()}
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
		friendsSize>>20, friendsSeedUp>>10, friendsOwnUp>>10, friendsHelperUp>>10)
	alone := res[0].took
	for i, r := range runs {
		fmt.Printf("    %-13s %6.1f s", r.name, res[i].took.Seconds())
		if i > 0 {
			fmt.Printf("  %5.1f s sooner than alone (%.0f%% of the time)", (alone - res[i].took).Seconds(), 100*res[i].took.Seconds()/alone.Seconds())
		}
		fmt.Println()
	}
	for i, r := range runs[1:] {
		fmt.Printf("  ledgers after the run %s:\n%s", r.name, res[i+1].ledgers)
	}
}
