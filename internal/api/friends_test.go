package api

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/btslave/btslave/friends"
)

// fakeFriends is a FriendsBackend over two maps, recording the calls that
// change them.
type fakeFriends struct {
	mu      sync.Mutex
	friends map[friends.ID]bool
	pending map[friends.ID]bool
	calls   []string
}

func newID(t *testing.T) friends.ID {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return friends.NewID(pub)
}

func (f *fakeFriends) note(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeFriends) Friends(context.Context) (FriendList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := FriendList{Enabled: true, Friends: []FriendInfo{}, Pending: []FriendInfo{}}
	for id := range f.friends {
		l.Friends = append(l.Friends, FriendInfo{ID: id.String(), Balance: 7})
	}
	for id := range f.pending {
		l.Pending = append(l.Pending, FriendInfo{ID: id.String()})
	}
	return l, nil
}

func (f *fakeFriends) Invite(_ context.Context, r InviteRequest) (InviteCode, error) {
	f.note("invite")
	return InviteCode{Code: fmt.Sprintf("BTSF1-TTL%v", r.TTL)}, nil
}

func (f *fakeFriends) AddFriend(_ context.Context, r AddFriendRequest) (FriendInfo, error) {
	f.note("add")
	if !strings.HasPrefix(r.Code, "BTSF1-") {
		return FriendInfo{}, fmt.Errorf("%w: not a code", ErrBadRequest)
	}
	return FriendInfo{Name: r.Name}, nil
}

func (f *fakeFriends) AcceptFriend(_ context.Context, id friends.ID) (FriendInfo, error) {
	f.note("accept")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.pending[id] {
		return FriendInfo{}, fmt.Errorf("%w: pending %s: no such friend", ErrNotFound, id.Short())
	}
	delete(f.pending, id)
	f.friends[id] = true
	return FriendInfo{ID: id.String()}, nil
}

func (f *fakeFriends) DenyFriend(_ context.Context, id friends.ID) error {
	f.note("deny")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.pending[id] {
		return fmt.Errorf("%w: pending %s", ErrNotFound, id.Short())
	}
	delete(f.pending, id)
	return nil
}

func (f *fakeFriends) RemoveFriend(_ context.Context, id friends.ID) error {
	f.note("remove")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.friends[id] && !f.pending[id] {
		return fmt.Errorf("%w: %s", ErrNotFound, id.Short())
	}
	delete(f.friends, id)
	delete(f.pending, id)
	return nil
}

func (f *fakeFriends) Ledger(context.Context) (Ledger, error) {
	return Ledger{Enabled: true, Accounts: []LedgerAccount{{Short: "ABCDEFG", Balance: -5,
		Entries: []LedgerLine{{Dir: "taken", Delta: 5, Reason: "helped our master"}}}}}, nil
}

func startFriends(t *testing.T, fb *fakeFriends) string {
	t.Helper()
	s, err := Listen(ServerOptions{
		Listen:  "127.0.0.1:0",
		Token:   sessToken,
		Status:  func(context.Context) Status { return Status{} },
		Friends: fb,
		UI:      http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "dashboard") }),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + s.Addr().String()
}

// Ensure that the friends endpoints need the token, refuse a malformed ID
// with 400 before the daemon sees it, answer 404 for an unknown one, and
// that the client maps both to ErrBadRequest and ErrNotFound.
func TestFriendsEndpoints(t *testing.T) {
	a, b, stranger := newID(t), newID(t), newID(t)
	fb := &fakeFriends{friends: map[friends.ID]bool{}, pending: map[friends.ID]bool{a: true, b: true}}
	base := startFriends(t, fb)
	bearer := map[string]string{"Authorization": "Bearer " + sessToken}

	routes := []struct{ method, path string }{
		{"GET", "/api/v1/friends"}, {"GET", "/api/v1/ledger"}, {"POST", "/api/v1/friends/invite"},
		{"POST", "/api/v1/friends"}, {"POST", "/api/v1/friends/" + a.String() + "/accept"},
		{"POST", "/api/v1/friends/" + a.String() + "/deny"}, {"DELETE", "/api/v1/friends/" + a.String()},
	}
	for _, r := range routes {
		for _, auth := range []string{"", "Bearer wrong", sessToken} {
			if resp := send(t, r.method, base+r.path, map[string]string{"Authorization": auth}, "{}"); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: %s, want 401", r.method, r.path, auth, resp.Status)
			}
		}
	}
	if len(fb.calls) != 0 {
		t.Fatalf("calls without the token reached the daemon: %v", fb.calls)
	}
	for _, bad := range []string{"nope", "AAAA", strings.Repeat("A", 63), a.String()[:20]} {
		for _, verb := range []string{"/accept", "/deny", ""} {
			method := "POST"
			if verb == "" {
				method = "DELETE"
			}
			if resp := send(t, method, base+"/api/v1/friends/"+bad+verb, bearer, "{}"); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s %q%s: %s, want 400", method, bad, verb, resp.Status)
			}
		}
	}
	if len(fb.calls) != 0 {
		t.Fatalf("malformed IDs reached the daemon: %v", fb.calls)
	}
	for _, verb := range []string{"/accept", "/deny", ""} {
		method := "POST"
		if verb == "" {
			method = "DELETE"
		}
		if resp := send(t, method, base+"/api/v1/friends/"+stranger.String()+verb, bearer, "{}"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s unknown%s: %s, want 404", method, verb, resp.Status)
		}
	}
	if resp := send(t, "POST", base+"/api/v1/friends", bearer, "{not json"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad JSON: %s, want 400", resp.Status)
	}

	c := NewClient(strings.TrimPrefix(base, "http://"), sessToken)
	ctx := context.Background()
	if _, err := c.AcceptFriend(ctx, stranger.String()); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), stranger.Short()) {
		t.Errorf("client accept of a stranger: %v", err)
	}
	if _, err := c.AcceptFriend(ctx, "nope"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("client accept of a bad ID: %v", err)
	}
	// A lenient ID (lower case, no dashes) is the same friend.
	lenient := strings.ToLower(strings.ReplaceAll(a.String(), "-", ""))
	if f, err := c.AcceptFriend(ctx, lenient); err != nil || f.ID != a.String() {
		t.Fatalf("accept: %+v %v", f, err)
	}
	if err := c.DenyFriend(ctx, b.String()); err != nil {
		t.Fatal(err)
	}
	l, err := c.Friends(ctx)
	if err != nil || len(l.Friends) != 1 || l.Friends[0].ID != a.String() || len(l.Pending) != 0 || l.Friends[0].Balance != 7 {
		t.Fatalf("friends after accept and deny: %+v %v", l, err)
	}
	if err := c.RemoveFriend(ctx, a.String()); err != nil {
		t.Fatal(err)
	}
	if ic, err := c.Invite(ctx, InviteRequest{TTL: 60}); err != nil || ic.Code != "BTSF1-TTL60" {
		t.Fatalf("invite: %+v %v", ic, err)
	}
	if _, err := c.AddFriend(ctx, AddFriendRequest{Code: "x"}); !errors.Is(err, ErrBadRequest) {
		t.Errorf("add of a bad code: %v", err)
	}
	if f, err := c.AddFriend(ctx, AddFriendRequest{Code: "BTSF1-X", Name: "bob"}); err != nil || f.Name != "bob" {
		t.Errorf("add: %+v %v", f, err)
	}
	if lg, err := c.Ledger(ctx); err != nil || len(lg.Accounts) != 1 || lg.Accounts[0].Entries[0].Reason != "helped our master" {
		t.Errorf("ledger: %+v %v", lg, err)
	}
}

// Ensure that a browser's session cookie reads the friends and ledger,
// and changes them only from the dashboard's own origin.
func TestFriendsSessionOrigin(t *testing.T) {
	a := newID(t)
	fb := &fakeFriends{friends: map[friends.ID]bool{}, pending: map[friends.ID]bool{a: true}}
	base := startFriends(t, fb)
	ck := login(t, base)
	cookie := ck.Name + "=" + ck.Value
	for _, p := range []string{"/api/v1/friends", "/api/v1/ledger"} {
		if r := send(t, "GET", base+p, map[string]string{"Cookie": cookie}, ""); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the cookie: %s", p, r.Status)
		}
	}
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/v1/friends/" + a.String() + "/accept", "{}"},
		{"POST", "/api/v1/friends/" + a.String() + "/deny", "{}"},
		{"DELETE", "/api/v1/friends/" + a.String(), ""},
		{"POST", "/api/v1/friends/invite", "{}"},
		{"POST", "/api/v1/friends", `{"code":"BTSF1-X"}`},
	} {
		for _, origin := range []string{"", "http://evil.example", "http://127.0.0.1:1"} {
			hdr := map[string]string{"Cookie": cookie}
			if origin != "" {
				hdr["Origin"] = origin
			}
			if resp := send(t, r.method, base+r.path, hdr, r.body); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s from origin %q: %s, want 403", r.method, r.path, origin, resp.Status)
			}
		}
	}
	if len(fb.calls) != 0 {
		t.Fatalf("cross-origin calls reached the daemon: %v", fb.calls)
	}
	hdr := map[string]string{"Cookie": cookie, "Origin": base, "Sec-Fetch-Site": "same-origin"}
	if r := send(t, "POST", base+"/api/v1/friends/"+a.String()+"/accept", hdr, "{}"); r.StatusCode != http.StatusOK {
		t.Errorf("same-origin accept: %s", r.Status)
	}
	if len(fb.calls) != 1 || fb.calls[0] != "accept" {
		t.Errorf("calls %v, want one accept", fb.calls)
	}
}
