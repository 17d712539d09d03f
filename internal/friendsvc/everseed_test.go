package friendsvc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/ledger"
)

type fakeKeeper struct {
	total int64
	has   map[string]bool
	err   error
}

func (k *fakeKeeper) Keep(_ context.Context, r friends.EverseedRequest) (string, error) {
	if k.err != nil {
		return "", k.err
	}
	k.total += r.Size
	k.has[r.InfoHash] = true
	return "name", nil
}

func (k *fakeKeeper) Kept(ih string) (int64, bool) { return k.total, k.has[ih] }

// Ensure that the everseeder accepts within the budget only, says why it
// refuses, accepts again what it keeps, and records every answer.
func TestEverseederBudget(t *testing.T) {
	a, b := startNode(t, 0), startNode(t, 0)
	k := &fakeKeeper{has: map[string]bool{}}
	e := &Everseeder{Ledger: b.ledger, Keeper: k, Budget: 1000}
	ih := strings.Repeat("ab", 20)
	req := func(size int64, ih string) friends.EverseedReply {
		return e.EverseedRequest(context.Background(), a.id.Public(), friends.EverseedRequest{ID: 7, InfoHash: ih, Metainfo: []byte("d"), Size: size})
	}
	if r := req(600, ih); !r.Accept || r.ID != 7 {
		t.Fatalf("within the budget: %+v", r)
	}
	if r := req(600, ih); !r.Accept || r.Reason != "already kept" {
		t.Errorf("kept already: %+v", r)
	}
	if r := req(600, strings.Repeat("cd", 20)); r.Accept || !strings.Contains(r.Reason, "budget") {
		t.Errorf("over the budget: %+v", r)
	}
	k.err = errors.New("disk full")
	if r := req(10, strings.Repeat("ef", 20)); r.Accept || !strings.Contains(r.Reason, "disk full") {
		t.Errorf("keep fails: %+v", r)
	}
	e.Budget = 0
	if r := req(1, strings.Repeat("01", 20)); r.Accept || !strings.Contains(r.Reason, "everseed_budget 0") {
		t.Errorf("no budget: %+v", r)
	}
	es, err := b.ledger.Everseeds()
	if err != nil || len(es) != 4 {
		t.Fatalf("ledger: %v %+v, want 4 entries (one per infohash)", err, es)
	}
	for _, en := range es {
		if en.Role != ledger.EverseedKeeps || en.Friend != a.id.ID() || en.Accepted != (en.InfoHash == ih) {
			t.Errorf("entry %+v", en)
		}
	}
}

// Ensure that a friend whose daemon answers no everseed requests refuses
// over the direct channel, and the asker records the refusal.
func TestAskEverseedRefusedByPlainHandler(t *testing.T) {
	a, b := startNode(t, 0), startNode(t, 0)
	befriend(t, a, b)
	c, err := a.svc.Dial(context.Background(), b.id.Public())
	if err != nil {
		t.Fatal(err)
	}
	defer c.(interface{ Close() error }).Close()
	ih := strings.Repeat("ab", 20)
	rep, err := AskEverseed(context.Background(), a.ledger, c, b.id.Public(), friends.EverseedRequest{ID: 3, InfoHash: ih, Metainfo: []byte("d"), Size: 5}, "x")
	if err != nil || rep.Accept || rep.ID != 3 || !strings.Contains(rep.Reason, "no everseed") {
		t.Fatalf("reply %+v %v", rep, err)
	}
	es, _ := a.ledger.Everseeds()
	if len(es) != 1 || es[0].Role != ledger.EverseedAsked || es[0].Accepted || es[0].Friend != b.id.ID() {
		t.Errorf("asker's ledger: %+v", es)
	}
}
