package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/ledger"
)

// The friends and ledger endpoints (api.FriendsBackend): what `btslave
// friends` and `btslave ledger` do on a stopped daemon's data dir, on the
// running daemon's book and ledger.

// maxRecentIOUs bounds the newest IOUs GET /api/v1/ledger lists.
const maxRecentIOUs = 50

// friendsAPI implements api.FriendsBackend on the App.
type friendsAPI struct{ a *App }

var _ api.FriendsBackend = friendsAPI{}

var errFriendsOff = fmt.Errorf("[friends] is off; set friends.enabled = true and restart: %w", api.ErrBadRequest)

// notFound maps the book's ErrNotFound to the API's.
func notFound(err error) error {
	if errors.Is(err, friends.ErrNotFound) {
		return fmt.Errorf("%w: %w", api.ErrNotFound, err)
	}
	return err
}

func (f friendsAPI) part() (*friendsPart, error) {
	if f.a.friends == nil {
		return nil, errFriendsOff
	}
	return f.a.friends, nil
}

// Friends lists the friends with their balances and the pending requests.
func (f friendsAPI) Friends(context.Context) (api.FriendList, error) {
	out := api.FriendList{Friends: []api.FriendInfo{}, Pending: []api.FriendInfo{}}
	p := f.a.friends
	if p == nil {
		return out, nil
	}
	out.Enabled, out.ID, out.Accept = true, p.id.ID().String(), f.a.cfg.Friends.Accept
	fs, err := p.book.List()
	if err != nil {
		return out, err
	}
	for _, fr := range fs {
		fi, err := p.info(fr)
		if err != nil {
			return out, err
		}
		out.Friends = append(out.Friends, fi)
	}
	pend, err := p.book.Pending()
	if err != nil {
		return out, err
	}
	for _, fr := range pend {
		fi, err := p.info(fr)
		if err != nil {
			return out, err
		}
		out.Pending = append(out.Pending, fi)
	}
	return out, nil
}

// info is fr as the API shows it, with its balance and last contact.
func (p *friendsPart) info(fr friends.Friend) (api.FriendInfo, error) {
	id := fr.ID()
	fi := api.FriendInfo{ID: id.String(), Short: id.Short(), Name: fr.Name, Addr: fr.Addr, Via: fr.Via,
		Added: fr.Added, LastSeen: p.seen.get(id), InviteUnused: fr.Invite != ""}
	b, err := p.ledger.BalanceOf(fr.Key)
	if err != nil {
		return fi, err
	}
	fi.Given, fi.Taken, fi.Balance = b.Given, b.Taken, b.Net()
	return fi, nil
}

// Invite makes an invite code as `btslave friends invite` does.
func (f friendsAPI) Invite(_ context.Context, req api.InviteRequest) (api.InviteCode, error) {
	p, err := f.part()
	if err != nil {
		return api.InviteCode{}, err
	}
	fc := f.a.cfg.Friends
	ttl := req.TTL.Duration()
	if ttl <= 0 {
		ttl = fc.InviteTTL.Std()
	}
	addr := fc.FriendsAddress()
	if h := config.Addr(addr).Host(); fc.Address == "" && (h == "" || h == "0.0.0.0" || h == "::") {
		return api.InviteCode{}, fmt.Errorf("[friends] listen %q is a wildcard; set [friends] address to one friends can dial: %w", addr, api.ErrBadRequest)
	}
	inv, err := friends.NewInvite(p.id, addr, ttl, time.Now())
	if err != nil {
		return api.InviteCode{}, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	return api.InviteCode{ID: p.id.ID().String(), Code: inv.String(), Addr: inv.Addr, Expires: inv.Expires.UTC()}, nil
}

// AddFriend checks an invite code and adds its key as a friend, as
// `btslave friends add` does.
func (f friendsAPI) AddFriend(_ context.Context, req api.AddFriendRequest) (api.FriendInfo, error) {
	p, err := f.part()
	if err != nil {
		return api.FriendInfo{}, err
	}
	inv, err := friends.ParseInvite(req.Code, time.Now())
	if err != nil {
		return api.FriendInfo{}, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	if inv.ID() == p.id.ID() {
		return api.FriendInfo{}, fmt.Errorf("%w: that is this daemon's own invite", api.ErrBadRequest)
	}
	if len(req.Name) > 100 {
		return api.FriendInfo{}, fmt.Errorf("%w: a name of %d bytes; at most 100", api.ErrBadRequest, len(req.Name))
	}
	fr, err := p.book.AddInvite(inv)
	if err != nil {
		return api.FriendInfo{}, err
	}
	if req.Name != "" {
		if fr, err = p.book.SetName(fr.ID(), req.Name); err != nil {
			return api.FriendInfo{}, err
		}
	}
	return p.info(fr)
}

// AcceptFriend turns a pending request into a friend.
func (f friendsAPI) AcceptFriend(_ context.Context, id friends.ID) (api.FriendInfo, error) {
	p, err := f.part()
	if err != nil {
		return api.FriendInfo{}, err
	}
	fr, err := p.book.Accept(id)
	if err != nil {
		return api.FriendInfo{}, notFound(err)
	}
	return p.info(fr)
}

// DenyFriend drops a pending request.
func (f friendsAPI) DenyFriend(_ context.Context, id friends.ID) error {
	p, err := f.part()
	if err != nil {
		return err
	}
	return notFound(p.book.Deny(id))
}

// RemoveFriend drops a friend or a pending request; the ledger keeps its
// IOUs.
func (f friendsAPI) RemoveFriend(_ context.Context, id friends.ID) error {
	p, err := f.part()
	if err != nil {
		return err
	}
	return notFound(p.book.Remove(id))
}

// Ledger gives every account with the IOUs behind it, as `btslave ledger`
// prints them, and the newest IOUs of all accounts.
func (f friendsAPI) Ledger(context.Context) (api.Ledger, error) {
	out := api.Ledger{Accounts: []api.LedgerAccount{}, Recent: []api.LedgerLine{}}
	p := f.a.friends
	if p == nil {
		return out, nil
	}
	out.Enabled = true
	accts, err := p.ledger.Accounts()
	if err != nil {
		return out, err
	}
	for _, ac := range accts {
		la := api.LedgerAccount{Friend: ac.Friend.String(), Short: ac.Friend.Short(), Given: ac.Given, Taken: ac.Taken,
			Balance: ac.Net, Former: !p.book.IsFriend(ac.Friend), Entries: []api.LedgerLine{}}
		if fr, err := p.book.Get(ac.Friend); err == nil {
			la.Name = fr.Name
		}
		for _, l := range ac.Entries {
			line := lineOf(l)
			la.Entries = append(la.Entries, line)
			line.Friend = la.Short
			out.Recent = append(out.Recent, line)
		}
		out.Accounts = append(out.Accounts, la)
	}
	sort.SliceStable(out.Recent, func(i, j int) bool { return out.Recent[i].Time.After(out.Recent[j].Time) })
	if len(out.Recent) > maxRecentIOUs {
		out.Recent = out.Recent[:maxRecentIOUs]
	}
	return out, nil
}

func lineOf(l ledger.Line) api.LedgerLine {
	return api.LedgerLine{Time: l.Time, Dir: l.Dir, Seq: l.Seq, Delta: l.Delta, Total: l.Total, Reason: l.Reason}
}

// lastSeen is when each friend (or requester) last spoke to us, or we
// reached it, since the daemon started.
type lastSeen struct {
	mu sync.Mutex
	at map[friends.ID]time.Time
}

func (s *lastSeen) mark(key ed25519.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[friends.ID]time.Time{}
	}
	s.at[friends.NewID(key)] = time.Now().UTC()
}

func (s *lastSeen) get(id friends.ID) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at[id]
}

// seenHandler records every direct-channel message before the service
// answers it.
type seenHandler struct {
	friends.Handler
	seen *lastSeen
}

func (h seenHandler) HelpRequest(ctx context.Context, from ed25519.PublicKey, r friends.HelpRequest) friends.HelpReply {
	h.seen.mark(from)
	return h.Handler.HelpRequest(ctx, from, r)
}

func (h seenHandler) Delivered(ctx context.Context, from ed25519.PublicKey, d friends.Delivered) friends.IOUMsg {
	h.seen.mark(from)
	return h.Handler.Delivered(ctx, from, d)
}

func (h seenHandler) Inquire(ctx context.Context, from ed25519.PublicKey, q friends.Inquire) friends.Tell {
	h.seen.mark(from)
	return h.Handler.Inquire(ctx, from, q)
}

func (h seenHandler) Tell(ctx context.Context, from ed25519.PublicKey, t friends.Tell) {
	h.seen.mark(from)
	h.Handler.Tell(ctx, from, t)
}

// seenMeeter records the sender of every swarm hello the meeter took.
type seenMeeter struct {
	*friends.Meeter
	seen *lastSeen
}

func (m seenMeeter) OnHello(infoHash, ours, theirs, payload []byte) error {
	if err := m.Meeter.OnHello(infoHash, ours, theirs, payload); err != nil {
		return err
	}
	if h, err := friends.ParseSwarmHello(payload, infoHash, theirs, ours, time.Now()); err == nil {
		m.seen.mark(h.Key)
	}
	return nil
}
