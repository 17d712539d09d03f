package friendsvc

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/ledger"
)

// fakeHelper stands in for master/helper: it records what it was asked to
// help and reports a settable ToMaster.
type fakeHelper struct {
	mu     sync.Mutex
	helped map[string]netip.AddrPort
	sent   int64
}

func (h *fakeHelper) Help(_ context.Context, r friends.HelpRequest, m netip.AddrPort) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.helped[r.InfoHash] = m
	return nil
}
func (h *fakeHelper) ToMaster(ih string) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.helped[ih]
	return h.sent, ok
}
func (h *fakeHelper) Stop(string, string) {}

// meter allows a settable number of bytes per countersignature.
type meter struct {
	mu    sync.Mutex
	allow uint64
}

func (m *meter) Watch(context.Context, string, ed25519.PublicKey) {}
func (m *meter) Allow(context.Context, ed25519.PublicKey, string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.allow
}
func (m *meter) Credited(ed25519.PublicKey, string, uint64) {}

// node is one daemon's friends side: identity, book, ledger, service and
// a running server on loopback.
type node struct {
	id     friends.Identity
	book   *friends.Book
	ledger *ledger.Store
	svc    *Service
	helper *fakeHelper
	addr   string
	limits ledger.Limits
	meter  Meter
}

func startNode(t *testing.T, saw uint64) *node {
	t.Helper()
	return startNodeMeter(t, &meter{allow: saw})
}

func startNodeMeter(t *testing.T, m Meter) *node {
	t.Helper()
	dir := t.TempDir()
	id, err := friends.LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "btslave.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{id: id, helper: &fakeHelper{helped: map[string]netip.AddrPort{}},
		limits: ledger.Limits{CreditLimit: 1 << 20, StarterCredit: 1 << 16, MaxSwarms: 4, CacheFree: -1}, meter: m}
	if n.book, err = friends.OpenBook(db); err != nil {
		t.Fatal(err)
	}
	if n.ledger, err = ledger.Open(db, ledger.Options{Identity: id, IsFriend: n.book.IsFriend}); err != nil {
		t.Fatal(err)
	}
	n.svc = New(Options{
		Ledger: n.ledger, Gossip: &friends.Gossip{}, Helper: n.helper, Meter: n.meter,
		Limits: func(ledger.Request) ledger.Limits { return n.limits },
		Dial: func(ctx context.Context, key ed25519.PublicKey) (ledger.Caller, error) {
			for _, f := range mustList(t, n.book) {
				if f.Key.Equal(key) {
					return friends.Dial(ctx, id, f.Addr, key, "")
				}
			}
			return nil, errors.New("no address for friend")
		},
	})
	srv := &friends.Server{ID: id, Book: n.book, Handler: n.svc}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		db.Close()
	})
	return n
}

func mustList(t *testing.T, bk *friends.Book) []friends.Friend {
	fs, err := bk.List()
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func befriend(t *testing.T, a, b *node) {
	t.Helper()
	if _, err := a.book.Add(b.id.Public(), b.addr, "invite"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.book.Add(a.id.Public(), a.addr, "invite"); err != nil {
		t.Fatal(err)
	}
}

// Ensure that a cash-in over the real TLS channel makes the friend help
// our master, and that its delivered report ends as the same countersigned
// IOU in both ledgers.
func TestCashinHelpReport(t *testing.T) {
	helper, asker := startNode(t, 0), startNode(t, 1<<20)
	befriend(t, helper, asker)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ih := strings.Repeat("ab", 20)
	got, err := asker.svc.Cashin(ctx, friends.HelpRequest{InfoHash: ih, Magnet: "magnet:?xt=urn:btih:" + ih, Master: "127.0.0.9:51413"}, mustList(t, asker.book), 1)
	if err != nil || len(got) != 1 || !got[0].Accept || got[0].Friend != helper.id.ID() {
		t.Fatalf("cashin: %+v %v", got, err)
	}
	if m := helper.helper.helped[ih]; m.String() != "127.0.0.9:51413" {
		t.Fatalf("helper helps %v", m)
	}
	helper.helper.sent = 30000
	if err := helper.svc.ReportDelivered(ctx); err != nil {
		t.Fatal(err)
	}
	helper.helper.sent = 50000
	if err := helper.svc.ReportDelivered(ctx); err != nil {
		t.Fatal(err)
	}
	hb, _ := helper.ledger.BalanceOf(asker.id.Public())
	ab, _ := asker.ledger.BalanceOf(helper.id.Public())
	if hb.Given != 50000 || ab.Taken != 50000 {
		t.Fatalf("helper gave %d, asker took %d; want 50000", hb.Given, ab.Taken)
	}
	h1, _ := helper.ledger.History(asker.id.Public(), helper.id.Public())
	h2, _ := asker.ledger.History(asker.id.Public(), helper.id.Public())
	if len(h1) != 2 || len(h2) != 2 {
		t.Fatalf("histories %d and %d entries, want 2", len(h1), len(h2))
	}
	for i := range h1 {
		x, _ := h1[i].IOU.MarshalBinary()
		y, _ := h2[i].IOU.MarshalBinary()
		if string(x) != string(y) {
			t.Fatalf("IOU %d differs", i)
		}
	}
}

// Ensure that a request beyond the caps, or from a friend over its
// credit, is refused with the reason, and nothing is helped.
func TestHelpRequestRefused(t *testing.T) {
	helper, asker := startNode(t, 1<<20), startNode(t, 1<<20)
	befriend(t, helper, asker)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ih := strings.Repeat("cd", 20)
	r := friends.HelpRequest{InfoHash: ih, Magnet: "magnet:?xt=urn:btih:" + ih, Master: "127.0.0.9:51413"}

	helper.limits.Swarms = 4 // max_swarms reached, none free
	if _, err := asker.svc.Cashin(ctx, r, mustList(t, asker.book), 1); !errors.Is(err, ErrNoHelp) || !strings.Contains(err.Error(), "max_swarms") {
		t.Fatalf("full: %v", err)
	}
	helper.limits.Swarms = 0
	helper.limits.StarterCredit = 0 // a new friend gets no credit
	if _, err := asker.svc.Cashin(ctx, r, mustList(t, asker.book), 1); !errors.Is(err, ErrNoHelp) || !strings.Contains(err.Error(), "starter_credit") {
		t.Fatalf("no credit: %v", err)
	}
	if len(helper.helper.helped) != 0 {
		t.Fatal("helped despite refusing")
	}
	if _, err := asker.svc.MasterStarved(ctx, false, r, mustList(t, asker.book), 1); err == nil {
		t.Fatal("auto_cashin off still cashed in")
	}
}

// Ensure that a ToMaster counter that goes back (a redone connection)
// counts what it shows afterwards as new, and nothing twice.
func TestReportCounterReset(t *testing.T) {
	helper, asker := startNode(t, 1<<20), startNode(t, 1<<20)
	befriend(t, helper, asker)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ih := strings.Repeat("ef", 20)
	if _, err := asker.svc.Cashin(ctx, friends.HelpRequest{InfoHash: ih, Master: "127.0.0.9:1"}, mustList(t, asker.book), 1); err != nil {
		t.Fatal(err)
	}
	for _, sent := range []int64{1000, 1000, 300, 700} {
		helper.helper.mu.Lock()
		helper.helper.sent = sent
		helper.helper.mu.Unlock()
		if err := helper.svc.ReportDelivered(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := asker.ledger.BalanceOf(helper.id.Public()); b.Taken != 1700 {
		t.Fatalf("taken %d, want 1000 + 300 + 400", b.Taken)
	}
}

// Ensure that figures a friend tells over the channel reach the ranking as
// gossip, the freshest kept.
func TestGossipToRanking(t *testing.T) {
	a, b := startNode(t, 0), startNode(t, 0)
	befriend(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := friends.Dial(ctx, b.id, a.addr, a.id.Public(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ih := strings.Repeat("12", 20)
	if _, err := c.Call(ctx, friends.Tell{Swarms: []friends.SwarmStat{{InfoHash: ih, Age: 60, Seeders: 2, Leechers: 9, Downloaded: 40}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctx, friends.Tell{Swarms: []friends.SwarmStat{{InfoHash: ih, Age: 600, Seeders: 7, Leechers: 1, Downloaded: 30}}}); err != nil {
		t.Fatal(err)
	}
	// Tell has no answer; a third one, handled after the two, says when
	// they are merged.
	last := strings.Repeat("34", 20)
	if _, err := c.Call(ctx, friends.Tell{Swarms: []friends.SwarmStat{{InfoHash: last}}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := a.svc.Figures(last); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tells not merged in 5s")
		}
	}
	if f, ok := a.svc.Figures(ih); !ok || !f.Gossip || f.Seeders != 2 || f.Incomplete != 9 {
		t.Fatalf("figures %+v %v; want the fresher seeders 2, leechers 9", f, ok)
	}
}

// Ensure that a cash-in asks friends best balance first and keeps asking
// past a refusal until want of them accepted, listing every answer with
// its reason, and asks no more once enough accepted.
func TestCashinSeveralHelpers(t *testing.T) {
	asker := startNode(t, 1<<20)
	owes, broke, fresh, last := startNode(t, 1<<20), startNode(t, 0), startNode(t, 0), startNode(t, 0)
	for _, n := range []*node{owes, broke, fresh, last} {
		befriend(t, n, asker)
	}
	broke.limits.StarterCredit = 0 // refuses a friend with no IOU yet
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// We helped owes once: it owes us and ranks first; the others tie at 0.
	warm := strings.Repeat("a1", 20)
	if _, err := owes.svc.Cashin(ctx, friends.HelpRequest{InfoHash: warm, Master: "127.0.0.9:1"}, []friends.Friend{friendOf(t, owes, asker)}, 1); err != nil {
		t.Fatal(err)
	}
	asker.helper.mu.Lock()
	asker.helper.sent = 4000
	asker.helper.mu.Unlock()
	if err := asker.svc.ReportDelivered(ctx); err != nil {
		t.Fatal(err)
	}
	ih := strings.Repeat("a2", 20)
	cands := []friends.Friend{friendOf(t, asker, broke), friendOf(t, asker, fresh), friendOf(t, asker, last), friendOf(t, asker, owes)}
	// owes is asked first (balance 4000: it owes us), then broke
	// refuses, then fresh accepts: two helpers, last never asked.
	got, err := asker.svc.Cashin(ctx, friends.HelpRequest{InfoHash: ih, Master: "127.0.0.9:1"}, cands, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		n      *node
		accept bool
		reason string
	}{{owes, true, "credit_limit"}, {broke, false, "starter_credit"}, {fresh, true, "starter_credit"}}
	if len(got) != len(want) {
		t.Fatalf("answers %+v, want %d", got, len(want))
	}
	for i, w := range want {
		if got[i].Friend != w.n.id.ID() || got[i].Accept != w.accept || !strings.Contains(got[i].Reason, w.reason) {
			t.Errorf("answer %d: %+v, want %v accept=%v for %q", i, got[i], w.n.id.ID().Short(), w.accept, w.reason)
		}
	}
	if got[0].Balance != 4000 {
		t.Errorf("owes's balance %d, want 4000", got[0].Balance)
	}
	if _, ok := last.helper.helped[ih]; ok {
		t.Error("a third friend was asked after two accepted")
	}
	// All refuse: the error joins every reason.
	_, err = asker.svc.Cashin(ctx, friends.HelpRequest{InfoHash: strings.Repeat("a3", 20), Master: "not-an-addr"}, cands, 2)
	if !errors.Is(err, ErrNoHelp) || strings.Count(err.Error(), "refused") != 4 {
		t.Errorf("all refuse: %v", err)
	}
}

// friendOf is b as a's book holds it.
func friendOf(t *testing.T, a, b *node) friends.Friend {
	t.Helper()
	for _, f := range mustList(t, a.book) {
		if f.Key.Equal(b.id.Public()) {
			return f
		}
	}
	t.Fatalf("%s is not a friend", b.id.ID().Short())
	return friends.Friend{}
}
