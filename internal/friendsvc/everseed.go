package friendsvc

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/ledger"
)

// Keeper keeps friends' published torrents as a second everseed: the
// daemon downloads one in full into its data dir and seeds it.
type Keeper interface {
	// Keep starts downloading the torrent and seeding it, and returns its
	// name; it fails for a metainfo that is not the infohash asked for.
	Keep(ctx context.Context, r friends.EverseedRequest) (name string, err error)
	// Kept is the bytes friends' torrents take now, and whether infoHash
	// is one of them.
	Kept(infoHash string) (total int64, has bool)
}

// Everseeder answers everseed requests within the owner's disk budget
// ([friends] everseed_budget) and records each answer in the ledger.
type Everseeder struct {
	Ledger *ledger.Store
	Keeper Keeper
	Budget int64
	Log    *slog.Logger
}

// EverseedRequest implements friends.EverseedHandler.
func (e *Everseeder) EverseedRequest(ctx context.Context, from ed25519.PublicKey, r friends.EverseedRequest) friends.EverseedReply {
	rep := friends.EverseedReply{ID: r.ID}
	total, has := e.Keeper.Kept(r.InfoHash)
	name := ""
	switch {
	case has:
		rep.Accept, rep.Reason = true, "already kept"
	case e.Budget <= 0:
		rep.Reason = "this daemon keeps no everseed for friends (everseed_budget 0)"
	case total+r.Size > e.Budget:
		rep.Reason = fmt.Sprintf("over the everseed budget: %d B kept, %d B asked, budget %d B", total, r.Size, e.Budget)
	default:
		var err error
		if name, err = e.Keeper.Keep(context.WithoutCancel(ctx), r); err != nil {
			rep.Reason = "cannot keep it: " + err.Error()
		} else {
			rep.Accept, rep.Reason = true, fmt.Sprintf("keeping it: %d B of a %d B budget in use", total+r.Size, e.Budget)
		}
	}
	if len(rep.Reason) > friends.MaxReasonLen {
		rep.Reason = rep.Reason[:friends.MaxReasonLen]
	}
	if err := e.Ledger.RecordEverseed(from, ledger.Everseed{Role: ledger.EverseedKeeps, InfoHash: r.InfoHash,
		Name: name, Size: r.Size, Accepted: rep.Accept, Reason: rep.Reason}); err != nil {
		e.log().Warn("friends: cannot record an everseed request", "err", err)
	}
	e.log().Info("everseed request", "friend", friends.NewID(from), "info_hash", r.InfoHash, "size", r.Size,
		"accept", rep.Accept, "reason", rep.Reason)
	return rep
}

func (e *Everseeder) log() *slog.Logger {
	if e.Log == nil {
		return slog.Default()
	}
	return e.Log
}

// AskEverseed asks the friend on c to be a second everseed of the
// torrent in r and records its answer in l (role "asked").
func AskEverseed(ctx context.Context, l *ledger.Store, c ledger.Caller, friend ed25519.PublicKey, r friends.EverseedRequest, name string) (friends.EverseedReply, error) {
	m, err := c.Call(ctx, r)
	if err != nil {
		return friends.EverseedReply{}, fmt.Errorf("everseed request: %w", err)
	}
	rep, ok := m.(friends.EverseedReply)
	if !ok || rep.ID != r.ID {
		return friends.EverseedReply{}, fmt.Errorf("everseed request: answered with %T: %w", m, friends.ErrMalformed)
	}
	if err := l.RecordEverseed(friend, ledger.Everseed{Role: ledger.EverseedAsked, InfoHash: r.InfoHash, Name: name,
		Size: r.Size, Accepted: rep.Accept, Reason: rep.Reason}); err != nil {
		return rep, err
	}
	return rep, nil
}

// WithEverseed adds e's everseed answers to the handler h.
func WithEverseed(h friends.Handler, e *Everseeder) friends.Handler {
	return withEverseed{Handler: h, e: e}
}

type withEverseed struct {
	friends.Handler
	e *Everseeder
}

func (w withEverseed) EverseedRequest(ctx context.Context, from ed25519.PublicKey, r friends.EverseedRequest) friends.EverseedReply {
	return w.e.EverseedRequest(ctx, from, r)
}

// Dial opens the direct channel to a friend (Options.Dial).
func (s *Service) Dial(ctx context.Context, friend ed25519.PublicKey) (ledger.Caller, error) {
	return s.o.Dial(ctx, friend)
}
