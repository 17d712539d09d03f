package daemon

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/api"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Ensure that with [friends] on the daemon listens on friends.listen, and
// a friend's cash-in makes it join the swarm for the friend's master.
func TestFriendsCashinJoins(t *testing.T) {
	on := func(c *config.Config) {
		c.Friends.Enabled = true
		c.Friends.Listen = config.Addr(freeAddr(t))
	}
	a, _ := testAppWith(t, on)
	b, _ := testAppWith(t, on)
	if a.friends == nil || b.friends == nil {
		t.Fatal("friends part not started")
	}
	// a invites b; b adds the code; a learns b's key from b's first dial.
	inv, err := friends.NewInvite(a.friends.id, a.friends.ln.Addr().String(), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.friends.book.AddInvite(inv); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ih := strings.Repeat("5a", 20)
	for _, bad := range []api.CashinRequest{{InfoHash: "xyz", Master: "127.0.0.1:9"}, {InfoHash: ih}} {
		if _, err := b.Cashin(ctx, bad); !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("%+v: %v, want a bad request", bad, err)
		}
	}
	rep, err := b.Cashin(ctx, api.CashinRequest{InfoHash: ih, Master: "127.0.0.1:9"})
	if err != nil || rep.Friend != a.friends.id.ID().String() || len(rep.Helpers) != 1 || rep.Helpers[0].Friend != rep.Friend || len(rep.Refused) != 0 {
		t.Fatalf("cashin: %+v %v", rep, err)
	}
	if !a.friends.book.IsFriend(b.friends.id.ID()) {
		t.Error("the inviter did not make the invitee a friend on its first dial")
	}
	if fs, _ := b.friends.book.List(); len(fs) != 1 || fs[0].Invite != "" {
		t.Errorf("the used invite is still kept: %+v", fs)
	}
	if _, err := testApp(t).Cashin(ctx, api.CashinRequest{InfoHash: ih, Master: "127.0.0.1:9"}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("cashin with [friends] off: %v, want a bad request", err)
	}
	joined := false
	for _, s := range a.rep.Swarms() {
		joined = joined || s.InfoHash().HexString() == ih
	}
	if !joined {
		t.Fatal("the helper did not join the friend's swarm")
	}
}

// Ensure that the auto_cashin hook does nothing while auto_cashin is off,
// and cashes in at the master's address when it is on.
func TestMasterStarvedAutoCashin(t *testing.T) {
	var addrA string
	a, _ := testAppWith(t, func(c *config.Config) {
		addrA = freeAddr(t)
		c.Friends.Enabled, c.Friends.Listen = true, config.Addr(addrA)
	})
	b, _ := testAppWith(t, func(c *config.Config) {
		c.Friends.Enabled, c.Friends.Listen = true, config.Addr(freeAddr(t))
		c.Master.PeerAddress = "127.0.0.1:9"
	})
	inv, _ := friends.NewInvite(a.friends.id, addrA, time.Hour, time.Now())
	if _, err := b.friends.book.AddInvite(inv); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ih := strings.Repeat("6b", 20)
	if _, err := b.MasterStarved(ctx, ih, "", nil); err == nil || !strings.Contains(err.Error(), "auto_cashin is off") {
		t.Fatalf("auto_cashin off: %v", err)
	}
	b.cfg.Friends.AutoCashin = true
	if got, err := b.MasterStarved(ctx, ih, "", nil); err != nil || got != a.friends.id.ID().String() {
		t.Fatalf("auto_cashin on: %q %v", got, err)
	}
}
