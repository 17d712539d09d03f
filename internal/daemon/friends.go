package daemon

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/friendsvc"
	"github.com/btslave/btslave/ledger"
	"github.com/btslave/btslave/master/helper"
)

// friendsPart is the daemon's [friends] side: identity, book, ledger, the
// direct channel's server and the service that answers on it.
type friendsPart struct {
	id     friends.Identity
	book   *friends.Book
	ledger *ledger.Store
	gossip *friends.Gossip
	svc    *friendsvc.Service
	srv    *friends.Server
	dial   func(ctx context.Context, friend ed25519.PublicKey) (ledger.Caller, error)
	ln     net.Listener
	seen   *lastSeen // for the API (friends_api.go)
	meter  *friendsvc.MasterMeter
	up     upMeter
	auto   autoCashins
	// reportEvery is how often bytes delivered to friends' masters become
	// IOU proposals (friends.report_interval).
	reportEvery time.Duration
}

// startFriends makes the friends part when [friends] is on: it listens on
// friends.listen, installs the bts_friends hook in the wire layer and
// feeds gossip to the autopilot. Call it after the repeater and the
// autopilot exist, before the first peer connection.
func (a *App) startFriends() (*friendsPart, error) {
	fc := a.cfg.Friends
	p := &friendsPart{gossip: &friends.Gossip{}, seen: &lastSeen{}, reportEvery: fc.ReportInterval.Std()}
	var err error
	if p.id, err = friends.LoadIdentity(a.cfg.DataDir); err != nil {
		return nil, err
	}
	if p.book, err = friends.OpenBook(a.db.DB); err != nil {
		return nil, err
	}
	log := a.log.With("component", "friends")
	if p.ledger, err = ledger.Open(a.db.DB, ledger.Options{Identity: p.id, IsFriend: p.book.IsFriend, Logger: log}); err != nil {
		return nil, err
	}
	var read friendsvc.Received
	if c := a.master.counter; c != nil {
		// What our own daemon sent our master is not the friends' to
		// claim: the pool is the master's counter less it.
		read = func(ctx context.Context, ih string) (int64, error) {
			n, err := c.Received(ctx, ih)
			return max(n-a.ownToMaster(ih), 0), err
		}
	} else {
		log.Info("friends: the master has no per-torrent counter ([master] kind); friends' IOUs will be refused")
	}
	p.meter = friendsvc.NewMasterMeter(read, log)
	p.svc = friendsvc.New(friendsvc.Options{
		Ledger:   p.ledger,
		Gossip:   p.gossip,
		Helper:   friendsvc.NewMasterHelper(a.master.friend), // startMaster made it
		Meter:    p.meter,
		Limits:   a.friendLimits,
		MakeRoom: a.roomForFriend,
		Dial: func(ctx context.Context, key ed25519.PublicKey) (ledger.Caller, error) {
			fs, err := p.book.List()
			if err != nil {
				return nil, err
			}
			for _, f := range fs {
				if f.Key.Equal(key) && f.Addr != "" {
					c, err := friends.Dial(ctx, p.id, f.Addr, key, f.Invite)
					if err == nil {
						p.seen.mark(key)
					}
					if err == nil && f.Invite != "" {
						// It let us in with its code: it holds our key now.
						if err := p.book.InviteUsed(f.ID()); err != nil {
							log.Warn("friends: cannot forget a used invite", "friend", f.ID(), "err", err)
						}
					}
					return c, err
				}
			}
			return nil, fmt.Errorf("friend %s: no address known", friends.NewID(key).Short())
		},
		Logger: log,
	})
	p.dial = p.svc.Dial
	ev := &friendsvc.Everseeder{Ledger: p.ledger, Keeper: a, Budget: int64(fc.EverseedBudget), Log: log}
	p.srv = &friends.Server{ID: p.id, Book: p.book, Handler: friendsvc.WithEverseed(seenHandler{p.svc, p.seen}, ev), Log: log}
	if p.ln, err = net.Listen("tcp", string(fc.Listen)); err != nil {
		return nil, fmt.Errorf("friends.listen %s: %w", fc.Listen, err)
	}
	a.client.Wire.SetFriends(seenMeeter{&friends.Meeter{ID: p.id, Book: p.book, Accept: fc.Accept, Addr: fc.FriendsAddress()}, p.seen})
	if a.auto != nil {
		a.auto.o.Gossip = p.svc.Figures
	}
	log.Info("friends on", "id", p.id.ID().String(), "listen", p.ln.Addr().String())
	return p, nil
}

// ownToMaster is what this daemon's own helpers ([master] and
// help-master) sent our master for a torrent.
func (a *App) ownToMaster(ih string) int64 {
	var n int64
	for _, h := range []*helper.Helper{a.master.owner, a.master.cli} {
		if h == nil {
			continue
		}
		for _, st := range h.Stats() {
			if strings.EqualFold(st.InfoHash, ih) {
				n += st.ToMaster
			}
		}
	}
	return n
}

// run serves the direct channel and reports delivered bytes until ctx
// ends.
// uploaded, if set, is the client's uploaded payload, sampled for the
// upload limit check.
func (p *friendsPart) run(ctx context.Context, log interface{ Warn(string, ...any) }, uploaded func() int64) {
	done := make(chan error, 1)
	go func() { done <- p.srv.Serve(ctx, p.ln) }()
	t := time.NewTicker(p.reportEvery)
	defer t.Stop()
	up := time.NewTicker(5 * time.Second)
	defer up.Stop()
	for {
		select {
		case now := <-up.C:
			if uploaded != nil {
				p.up.sample(now, uploaded())
			}
		case <-ctx.Done():
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("friends channel stopped", "err", err)
			}
			return
		case <-t.C:
			if err := p.svc.ReportDelivered(ctx); err != nil {
				log.Warn("friends: delivered report failed; the next one carries the bytes", "err", err)
			}
		}
	}
}

// Cashin is POST /api/v1/cashin: ask friends, best balance first, to help
// our master with a torrent.
func (a *App) Cashin(ctx context.Context, req api.CashinRequest) (api.CashinReply, error) {
	if a.friends == nil {
		return api.CashinReply{}, fmt.Errorf("[friends] is off; set friends.enabled = true: %w", api.ErrBadRequest)
	}
	master := cmp.Or(req.Master, a.cfg.Master.PeerAddress)
	if _, err := netip.ParseAddrPort(master); err != nil {
		return api.CashinReply{}, fmt.Errorf("master address %q: want IP:PORT (--master or [master] peer_address): %w", master, api.ErrBadRequest)
	}
	if _, err := hex.DecodeString(req.InfoHash); err != nil || (len(req.InfoHash) != 40 && len(req.InfoHash) != 64) {
		return api.CashinReply{}, fmt.Errorf("info hash %q: want 40 or 64 hex digits: %w", req.InfoHash, api.ErrBadRequest)
	}
	hr := friends.HelpRequest{InfoHash: strings.ToLower(req.InfoHash), Magnet: req.Magnet, Metainfo: req.Torrent, Master: master}
	if hr.Magnet == "" && len(hr.Metainfo) == 0 {
		// Our master has it: its .torrent or magnet link (with its
		// trackers) lets the friend find the swarm, not only our master.
		hr.Metainfo, hr.Magnet = a.masterTorrent(hr.InfoHash)
	}
	if hr.Magnet == "" && len(hr.Metainfo) == 0 {
		hr.Magnet = "magnet:?xt=urn:btih:" + hr.InfoHash
	}
	fs, err := a.friends.book.List()
	if err != nil {
		return api.CashinReply{}, err
	}
	if len(fs) == 0 {
		return api.CashinReply{}, fmt.Errorf("no friends yet; see btslave friends invite: %w", api.ErrBadRequest)
	}
	answers, err := a.friends.svc.Cashin(ctx, hr, fs, a.cfg.Friends.CashinHelpers)
	if err != nil {
		return api.CashinReply{}, err
	}
	rep := api.CashinReply{Helpers: []api.CashinAnswer{}, Refused: []api.CashinAnswer{}}
	for _, an := range answers {
		ca := api.CashinAnswer{Friend: an.Friend.String(), Short: an.Friend.Short(), Balance: an.Balance, Reason: an.Reason}
		if fr, err := a.friends.book.Get(an.Friend); err == nil {
			ca.Name = fr.Name
		}
		if an.Accept {
			rep.Helpers = append(rep.Helpers, ca)
		} else {
			rep.Refused = append(rep.Refused, ca)
		}
	}
	rep.Friend = rep.Helpers[0].Friend
	return rep, nil
}

// masterTorrent is our master's .torrent (if it gave one) and magnet
// link for a torrent it downloads, as of the watcher's last poll.
func (a *App) masterTorrent(ih string) (meta []byte, magnet string) {
	if a.master.watch == nil {
		return nil, ""
	}
	for _, t := range a.master.watch.State().Torrents {
		if strings.EqualFold(t.InfoHash, ih) {
			if len(t.MetaInfo) > 0 && len(t.MetaInfo) <= friends.MaxFrame/2 { // base64 in a frame
				return t.MetaInfo, ""
			}
			return nil, t.Magnet
		}
	}
	return nil, ""
}

// MasterStarved is the auto_cashin hook for #10's master watcher: call it
// when our master starts a torrent or its swarm is starved. With
// friends.auto_cashin on it cashes in as `btslave cashin` would; it
// returns the first friend that accepted, or why nothing happened.
func (a *App) MasterStarved(ctx context.Context, infoHash, magnet string, torrent []byte) (string, error) {
	if a.friends == nil || !a.cfg.Friends.AutoCashin {
		return "", errors.New("auto_cashin is off")
	}
	ids, err := a.cashinFor(ctx, infoHash, magnet, torrent, "")
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// cashinFor cashes in for our master at masterAddr ("": [master]
// peer_address); it returns the IDs of the friends that accepted.
func (a *App) cashinFor(ctx context.Context, infoHash, magnet string, torrent []byte, masterAddr string) ([]string, error) {
	rep, err := a.Cashin(ctx, api.CashinRequest{InfoHash: infoHash, Magnet: magnet, Torrent: torrent, Master: masterAddr})
	var ids []string
	for _, h := range rep.Helpers {
		ids = append(ids, h.Friend)
	}
	return ids, err
}
