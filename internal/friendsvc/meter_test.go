package friendsvc

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/ledger"
)

// counter is a master's downloaded counter the test sets.
type counter struct {
	mu   sync.Mutex
	n    int64
	fail bool
}

func (c *counter) set(n int64) {
	c.mu.Lock()
	c.n = n
	c.mu.Unlock()
}

func (c *counter) read(context.Context, string) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return 0, errors.New("master down")
	}
	return c.n, nil
}

// Ensure that a helper claiming more than our master received gets its
// IOU capped to what arrived since the cash-in, is refused when nothing
// new arrived (ledgers unchanged), and is credited the rest once our
// master's counter shows it.
func TestOverclaimCapped(t *testing.T) {
	cnt := &counter{n: 5000} // downloaded before the cash-in: never creditable
	helper, asker := startNode(t, 0), startNodeMeter(t, NewMasterMeter(cnt.read, nil))
	befriend(t, helper, asker)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ih := strings.Repeat("ac", 20)
	if _, err := asker.svc.Cashin(ctx, friends.HelpRequest{InfoHash: ih, Master: "127.0.0.9:1"}, mustList(t, asker.book), 1); err != nil {
		t.Fatal(err)
	}
	send := func(n int64) {
		helper.helper.mu.Lock()
		helper.helper.sent = n
		helper.helper.mu.Unlock()
	}
	taken := func() (uint64, uint64) {
		hb, _ := helper.ledger.BalanceOf(asker.id.Public())
		ab, _ := asker.ledger.BalanceOf(helper.id.Public())
		return hb.Given, ab.Taken
	}
	cnt.set(5000 + 40000)
	send(100000) // claims 100000, our master got 40000
	if err := helper.svc.ReportDelivered(ctx); err != nil {
		t.Fatal(err)
	}
	if g, tk := taken(); g != 40000 || tk != 40000 {
		t.Fatalf("capped claim: helper gave %d, asker took %d; want 40000", g, tk)
	}
	send(150000) // nothing new arrived
	if err := helper.svc.ReportDelivered(ctx); !errors.Is(err, ledger.ErrRefused) {
		t.Fatalf("claim with nothing arrived: %v, want refused", err)
	}
	if g, tk := taken(); g != 40000 || tk != 40000 {
		t.Fatalf("refused claim changed the ledgers: %d, %d", g, tk)
	}
	cnt.set(5000 + 40000 + 70000)
	if err := helper.svc.ReportDelivered(ctx); err != nil {
		t.Fatal(err)
	}
	if g, tk := taken(); g != 110000 || tk != 110000 {
		t.Fatalf("after the counter caught up: %d, %d; want 110000", g, tk)
	}
	h := helper.svc.Helping()
	if len(h) != 1 || h[0].Sent != 150000 || h[0].Credited != 110000 {
		t.Fatalf("helping %+v", h)
	}
}

// Ensure that friends helping the same torrent share one pool: what one
// was credited is not creditable to the other; a counter that cannot be
// read allows nothing new; one that went back starts again from there.
func TestMasterMeterPool(t *testing.T) {
	cnt := &counter{n: 100}
	m := NewMasterMeter(cnt.read, nil)
	ctx := context.Background()
	b, c := newKey(t), newKey(t)
	ih := strings.Repeat("0f", 20)
	if got := m.Allow(ctx, b, ih); got != 0 {
		t.Fatalf("unwatched: %d", got)
	}
	m.Watch(ctx, ih, c)
	cnt.set(1100)
	if got := m.Allow(ctx, b, ih); got != 1000 {
		t.Fatalf("allow %d, want 1000", got)
	}
	m.Credited(b, ih, 700)
	if got := m.Allow(ctx, c, ih); got != 300 {
		t.Fatalf("c may take %d, want 300 left", got)
	}
	cnt.fail = true
	m.Credited(c, ih, 300)
	if got := m.Allow(ctx, c, ih); got != 0 {
		t.Fatalf("counter down: %d", got)
	}
	cnt.fail = false
	cnt.set(50) // removed and added again
	if got := m.Allow(ctx, c, ih); got != 0 {
		t.Fatalf("after a reset: %d", got)
	}
	cnt.set(80)
	if got := m.Allow(ctx, c, ih); got != 30 {
		t.Fatalf("after a reset and 30 more: %d", got)
	}
	a := m.Arrivals()
	if len(a) != 1 || a[0].Arrived != 30 || len(a[0].Friends) != 2 || a[0].Friends[0].Credited != 700 {
		t.Fatalf("arrivals %+v", a)
	}
}

func newKey(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}
