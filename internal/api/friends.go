package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/btslave/btslave/friends"
)

// FriendsBackend is what the friends and ledger endpoints need of the
// daemon. Errors wrapping ErrBadRequest are the caller's fault (400),
// those wrapping ErrNotFound name no friend or request (404).
type FriendsBackend interface {
	Friends(ctx context.Context) (FriendList, error)
	Invite(ctx context.Context, req InviteRequest) (InviteCode, error)
	AddFriend(ctx context.Context, req AddFriendRequest) (FriendInfo, error)
	AcceptFriend(ctx context.Context, id friends.ID) (FriendInfo, error)
	DenyFriend(ctx context.Context, id friends.ID) error
	RemoveFriend(ctx context.Context, id friends.ID) error
	Ledger(ctx context.Context) (Ledger, error)
}

// ErrNotFound marks errors for a thing the daemon does not hold (404).
var ErrNotFound = errors.New("not found")

// FriendList is the answer of GET /api/v1/friends.
type FriendList struct {
	// Enabled is friends.enabled; with it off the lists are empty and
	// every change is refused.
	Enabled bool `json:"enabled"`
	// ID is this daemon's friend ID; Accept is the [friends] accept policy
	// for repeaters met in a swarm (ask, auto, never).
	ID      string       `json:"id,omitempty"`
	Accept  string       `json:"accept,omitempty"`
	Friends []FriendInfo `json:"friends"`
	Pending []FriendInfo `json:"pending"`
}

// FriendInfo is one friend or pending request.
type FriendInfo struct {
	ID    string `json:"id"`
	Short string `json:"short"`
	Name  string `json:"name,omitempty"`
	// Addr is where its direct channel was last reached or announced.
	Addr  string    `json:"addr,omitempty"`
	Via   string    `json:"via"` // invite, swarm, accepted
	Added time.Time `json:"added"`
	// LastSeen is its last message to us (direct channel, swarm hello) or
	// our last successful dial, since the daemon started; zero when none.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Given, Taken and Balance are the countersigned bytes (ledger):
	// Balance = Given − Taken, positive when the friend owes us.
	Given   uint64 `json:"given"`
	Taken   uint64 `json:"taken"`
	Balance int64  `json:"balance"`
	// InviteUnused is set while the friend's invite has not been
	// presented yet (it may not know our key).
	InviteUnused bool `json:"invite_unused,omitempty"`
}

// InviteRequest asks for an invite code (POST /api/v1/friends/invite); a
// zero TTL is [friends] invite_ttl.
type InviteRequest struct {
	TTL Seconds `json:"ttl_seconds,omitempty"`
}

// InviteCode is a fresh invite.
type InviteCode struct {
	ID      string    `json:"id"`
	Code    string    `json:"code"`
	Addr    string    `json:"addr"`
	Expires time.Time `json:"expires"`
}

// AddFriendRequest adds the repeater that gave Code (POST
// /api/v1/friends), with an optional label.
type AddFriendRequest struct {
	Code string `json:"code"`
	Name string `json:"name,omitempty"`
}

// Ledger is the answer of GET /api/v1/ledger: every account, best
// balance first, with the IOUs behind it, and the newest IOUs of all.
type Ledger struct {
	Enabled  bool            `json:"enabled"`
	Accounts []LedgerAccount `json:"accounts"`
	Recent   []LedgerLine    `json:"recent"`
}

// LedgerAccount is the balance with one friend (or former friend) and why
// it is what it is, oldest IOU first.
type LedgerAccount struct {
	Friend  string       `json:"friend"`
	Short   string       `json:"short"`
	Name    string       `json:"name,omitempty"`
	Former  bool         `json:"former,omitempty"` // no longer a friend
	Given   uint64       `json:"given"`
	Taken   uint64       `json:"taken"`
	Balance int64        `json:"balance"`
	Entries []LedgerLine `json:"entries"`
}

// LedgerLine is one countersigned IOU seen from our side.
type LedgerLine struct {
	Friend string    `json:"friend,omitempty"` // short ID; in Recent only
	Time   time.Time `json:"time"`
	Dir    string    `json:"dir"` // given (we helped) or taken (it helped us)
	Seq    uint64    `json:"seq"`
	Delta  uint64    `json:"delta"`
	Total  uint64    `json:"total"`
	Reason string    `json:"reason"`
}

// friendsRoutes adds the friends and ledger endpoints.
func (s *Server) friendsRoutes(mux *http.ServeMux) {
	fb := s.opts.Friends
	if fb == nil {
		return
	}
	mux.HandleFunc("GET /api/v1/friends", func(w http.ResponseWriter, r *http.Request) {
		l, err := fb.Friends(r.Context())
		answer(w, http.StatusOK, l, err)
	})
	mux.HandleFunc("GET /api/v1/ledger", func(w http.ResponseWriter, r *http.Request) {
		l, err := fb.Ledger(r.Context())
		answer(w, http.StatusOK, l, err)
	})
	mux.HandleFunc("POST /api/v1/friends/invite", func(w http.ResponseWriter, r *http.Request) {
		var req InviteRequest
		if !decodeBody(w, r, &req) {
			return
		}
		c, err := fb.Invite(r.Context(), req)
		answer(w, http.StatusOK, c, err)
	})
	mux.HandleFunc("POST /api/v1/friends", func(w http.ResponseWriter, r *http.Request) {
		var req AddFriendRequest
		if !decodeBody(w, r, &req) {
			return
		}
		f, err := fb.AddFriend(r.Context(), req)
		answer(w, http.StatusCreated, f, err)
	})
	byID := func(fn func(w http.ResponseWriter, r *http.Request, id friends.ID)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id, err := friends.IDFromString(r.PathValue("id"))
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("friend ID %q: %v", r.PathValue("id"), err))
				return
			}
			fn(w, r, id)
		}
	}
	mux.HandleFunc("POST /api/v1/friends/{id}/accept", byID(func(w http.ResponseWriter, r *http.Request, id friends.ID) {
		f, err := fb.AcceptFriend(r.Context(), id)
		answer(w, http.StatusOK, f, err)
	}))
	mux.HandleFunc("POST /api/v1/friends/{id}/deny", byID(func(w http.ResponseWriter, r *http.Request, id friends.ID) {
		answer(w, http.StatusNoContent, nil, fb.DenyFriend(r.Context(), id))
	}))
	mux.HandleFunc("DELETE /api/v1/friends/{id}", byID(func(w http.ResponseWriter, r *http.Request, id friends.ID) {
		answer(w, http.StatusNoContent, nil, fb.RemoveFriend(r.Context(), id))
	}))
}

// decodeBody reads a small JSON body into v (an empty body leaves v
// zero); on failure it answers 400 and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(v)
	if err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

// answer writes v with code, or err as writeErr does (404 for
// ErrNotFound); 204 writes no body.
func answer(w http.ResponseWriter, code int, v any, err error) {
	switch {
	case err != nil:
		writeErr(w, err)
	case code == http.StatusNoContent:
		w.WriteHeader(code)
	default:
		writeJSON(w, code, v)
	}
}

// Friends lists the friends and pending requests.
func (c *Client) Friends(ctx context.Context) (*FriendList, error) {
	var l FriendList
	if err := c.get(ctx, "/api/v1/friends", &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Invite makes an invite code.
func (c *Client) Invite(ctx context.Context, req InviteRequest) (*InviteCode, error) {
	body, _ := json.Marshal(req)
	var ic InviteCode
	if err := c.do(ctx, http.MethodPost, "/api/v1/friends/invite", body, &ic); err != nil {
		return nil, err
	}
	return &ic, nil
}

// AddFriend adds the repeater that gave an invite code.
func (c *Client) AddFriend(ctx context.Context, req AddFriendRequest) (*FriendInfo, error) {
	body, _ := json.Marshal(req)
	var f FriendInfo
	if err := c.do(ctx, http.MethodPost, "/api/v1/friends", body, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// AcceptFriend accepts a pending request.
func (c *Client) AcceptFriend(ctx context.Context, id string) (*FriendInfo, error) {
	var f FriendInfo
	if err := c.do(ctx, http.MethodPost, "/api/v1/friends/"+url.PathEscape(id)+"/accept", []byte("{}"), &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// DenyFriend drops a pending request.
func (c *Client) DenyFriend(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "/api/v1/friends/"+url.PathEscape(id)+"/deny", []byte("{}"), nil)
}

// RemoveFriend removes a friend or a pending request.
func (c *Client) RemoveFriend(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/friends/"+url.PathEscape(id), nil, nil)
}

// Ledger fetches the balances and their IOUs.
func (c *Client) Ledger(ctx context.Context) (*Ledger, error) {
	var l Ledger
	if err := c.get(ctx, "/api/v1/ledger", &l); err != nil {
		return nil, err
	}
	return &l, nil
}
