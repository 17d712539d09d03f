package ledger

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/store"
)

// countersignChild is the debtor process of TestKill9WhileCountersigning:
// it reads "hex(IOU) maxDelta" lines, countersigns each in the daemon's
// real store and answers "ok hex(IOU)" or "stale hex(IOU)" only after the
// commit.
func countersignChild(dir, seed string) {
	s, _ := hex.DecodeString(seed)
	db, err := store.Open(dir, store.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	l, err := Open(db.DB, Options{Identity: friends.Identity{Private: ed25519.NewKeyFromSeed(s)}})
	if err != nil {
		os.Exit(3)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		b, _ := hex.DecodeString(f[0])
		max, _ := strconv.ParseUint(f[1], 10, 64)
		var u IOU
		if err := u.UnmarshalBinary(b); err != nil {
			os.Exit(4)
		}
		out, err := l.Countersign(u, max, "kill9 delivery")
		word := "ok"
		if errors.Is(err, ErrStale) {
			word = "stale"
		} else if err != nil {
			os.Exit(5)
		}
		enc, _ := out.MarshalBinary()
		fmt.Printf("%s %x\n", word, enc)
	}
	os.Exit(0)
}

// Ensure that killing the countersigning daemon with SIGKILL at random
// moments, 50 times, while IOUs arrive, loses no countersigned IOU and
// counts none twice: afterwards the creditor's copy, replayed against the
// debtor's ledger, matches it entry for entry.
func TestKill9WhileCountersigning(t *testing.T) {
	if dir := os.Getenv("BTSLAVE_LEDGER_CHILD"); dir != "" {
		countersignChild(dir, os.Getenv("BTSLAVE_LEDGER_SEED"))
		return
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	ai, bi := newIdentity(t), newIdentity(t)
	a := openT(t, ai, Options{})
	dir := t.TempDir()

	var acked int
	for round := 0; round < 50; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9WhileCountersigning$")
		cmd.Env = append(os.Environ(), "BTSLAVE_LEDGER_CHILD="+dir,
			"BTSLAVE_LEDGER_SEED="+hex.EncodeToString(bi.Private.Seed()))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killer := time.AfterFunc(time.Duration(20+rng.IntN(200))*time.Millisecond, func() { cmd.Process.Kill() })
		replies := bufio.NewReader(stdout)
		for {
			delta := uint64(1 + rng.IntN(1<<20))
			p, err := a.Propose(bi.Public(), delta)
			if err != nil {
				t.Fatal(err)
			}
			enc, _ := p.MarshalBinary()
			if _, err := fmt.Fprintf(stdin, "%x %d\n", enc, delta); err != nil {
				break
			}
			line, err := replies.ReadString('\n')
			if err != nil {
				break
			}
			word, u := parseReply(t, line)
			stored, _, err := a.Accept(u, "kill9 delivery")
			if err != nil {
				t.Fatalf("round %d: accept %s reply: %v", round, word, err)
			}
			if word == "ok" {
				if !stored {
					t.Fatalf("round %d: countersigned IOU seq %d not new to the creditor", round, u.Seq)
				}
				acked++
			}
		}
		killer.Stop()
		cmd.Process.Kill()
		cmd.Wait()
	}

	// The debtor's ledger, reopened as the daemon would after the crash.
	db, err := store.Open(dir, store.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer db.Close()
	b, err := Open(db.DB, Options{Identity: bi})
	if err != nil {
		t.Fatal(err)
	}
	// One last exchange resyncs an IOU the debtor committed just before
	// it was killed, and proves the pair still works.
	p, _ := a.Propose(bi.Public(), 1)
	u, err := b.Countersign(p, 1, "final")
	if errors.Is(err, ErrStale) {
		if _, _, err := a.Accept(u, "resync"); err != nil {
			t.Fatal(err)
		}
		p, _ = a.Propose(bi.Public(), 1)
		u, err = b.Countersign(p, 1, "final")
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Accept(u, "final"); err != nil {
		t.Fatal(err)
	}
	if err := check(b); err != nil {
		t.Fatalf("debtor's ledger after 50 kills: %v", err)
	}
	// Replay the creditor's copy against the debtor's.
	ha, _ := a.History(bi.Public(), ai.Public())
	hb, _ := b.History(bi.Public(), ai.Public())
	if len(ha) != len(hb) {
		t.Fatalf("creditor holds %d IOUs, debtor %d", len(ha), len(hb))
	}
	var total uint64
	for i := range ha {
		x, _ := ha[i].IOU.MarshalBinary()
		y, _ := hb[i].IOU.MarshalBinary()
		if !bytes.Equal(x, y) {
			t.Fatalf("IOU seq %d differs between creditor and debtor", i+1)
		}
		total += hb[i].Delta
	}
	bal, _ := b.BalanceOf(ai.Public())
	if bal.Taken != total {
		t.Fatalf("debtor owes %d, its history adds up to %d", bal.Taken, total)
	}
	if acked < 50 {
		t.Fatalf("only %d IOUs countersigned in 50 rounds; the test did not exercise much", acked)
	}
	t.Logf("%d IOUs countersigned across 50 kills, %d in the ledger", acked, len(hb))
}

func parseReply(t *testing.T, line string) (string, IOU) {
	t.Helper()
	word, h, ok := strings.Cut(strings.TrimSpace(line), " ")
	b, err := hex.DecodeString(h)
	var u IOU
	if !ok || err != nil || u.UnmarshalBinary(b) != nil {
		t.Fatalf("bad reply %q", line)
	}
	return word, u
}
