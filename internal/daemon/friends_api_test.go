package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/api"
)

// Ensure that the friends backend says friends are off when they are and
// refuses changes then; that with them on it adds a friend by code with
// a name, refuses its own code and a bad one, maps an unknown ID
// to ErrNotFound, and that deny leaves a friend alone.
func TestFriendsBackend(t *testing.T) {
	ctx := context.Background()
	off, _ := testAppWith(t, nil)
	fo := friendsAPI{off}
	if l, err := fo.Friends(ctx); err != nil || l.Enabled || l.Friends == nil || l.Pending == nil {
		t.Fatalf("friends off: %+v %v", l, err)
	}
	if lg, err := fo.Ledger(ctx); err != nil || lg.Enabled || lg.Accounts == nil {
		t.Fatalf("ledger off: %+v %v", lg, err)
	}
	if _, err := fo.Invite(ctx, api.InviteRequest{}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("invite with friends off: %v", err)
	}

	a, _ := testAppWith(t, func(c *config.Config) {
		c.Friends.Enabled = true
		c.Friends.Listen = config.Addr(freeAddr(t))
	})
	f := friendsAPI{a}
	own, err := f.Invite(ctx, api.InviteRequest{TTL: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if exp := time.Until(own.Expires); exp < 59*time.Minute || exp > time.Hour {
		t.Errorf("a one-hour invite expires in %v", exp)
	}
	if _, err := f.AddFriend(ctx, api.AddFriendRequest{Code: own.Code}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("adding our own code: %v", err)
	}
	if _, err := f.AddFriend(ctx, api.AddFriendRequest{Code: "BTSF1-AAAA"}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("adding a bad code: %v", err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	other := friends.Identity{Private: priv}
	inv, err := friends.NewInvite(other, "127.0.0.9:7980", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.AddFriend(ctx, api.AddFriendRequest{Code: inv.String(), Name: "bob"})
	if err != nil || fi.ID != other.ID().String() || fi.Name != "bob" || fi.Addr != "127.0.0.9:7980" || !fi.InviteUnused {
		t.Fatalf("add: %+v %v", fi, err)
	}
	if err := f.DenyFriend(ctx, other.ID()); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("deny of a friend: %v, want not found", err)
	}
	if _, err := f.AcceptFriend(ctx, other.ID()); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("accept of a friend that is not pending: %v", err)
	}
	l, err := f.Friends(ctx)
	if err != nil || !l.Enabled || len(l.Friends) != 1 || l.Friends[0].Name != "bob" || l.ID != a.friends.id.ID().String() {
		t.Fatalf("friends: %+v %v", l, err)
	}
	if err := f.RemoveFriend(ctx, other.ID()); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveFriend(ctx, other.ID()); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
}
