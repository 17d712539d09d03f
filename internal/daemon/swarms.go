package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/rank"
	"github.com/btslave/btslave/internal/torrentfile"
	"github.com/btslave/btslave/repeater"
)

// bucketTorrents holds the swarms the owner asked the daemon to serve, so
// that a restart (or a crash) rejoins them. Only the owner forgets one
// (Leave): no leave rule, autopilot decision or failed rejoin deletes it.
var bucketTorrents = []byte("torrents")

// swarmRecord is one entry of bucketTorrents.
type swarmRecord struct {
	Torrent []byte    `json:"torrent,omitempty"`
	Magnet  string    `json:"magnet,omitempty"`
	Added   time.Time `json:"added"`
}

// spec turns a request into a torrent spec, rejecting bad input with
// api.ErrBadRequest.
func (r swarmRecord) spec() (*torrent.TorrentSpec, error) {
	switch {
	case len(r.Torrent) > 0:
		t, err := torrentfile.Parse(r.Torrent)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
		}
		spec, err := torrent.TorrentSpecFromMetaInfoErr(t.MetaInfo)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
		}
		return spec, nil
	case r.Magnet != "":
		spec, err := torrent.TorrentSpecFromMagnetUri(r.Magnet)
		if err != nil {
			return nil, fmt.Errorf("%w: bad magnet link: %v", api.ErrBadRequest, err)
		}
		// anacrolix accepts a magnet without xt (found by FuzzSwarmRecord).
		if spec.InfoHash == (metainfo.Hash{}) && !spec.InfoHashV2.Ok {
			return nil, fmt.Errorf("%w: magnet link has no info hash (xt=urn:btih:...)", api.ErrBadRequest)
		}
		return spec, nil
	}
	return nil, fmt.Errorf("%w: give a .torrent, a magnet link or an info hash", api.ErrBadRequest)
}

// recordOf checks a request for exactly one torrent source and turns it
// into a swarm record (an info hash becomes a magnet link).
func recordOf(req api.RepeatRequest) (swarmRecord, error) {
	rec := swarmRecord{Torrent: req.Torrent, Magnet: req.Magnet, Added: time.Now()}
	if n := btoi(len(req.Torrent) > 0) + btoi(req.Magnet != "") + btoi(req.InfoHash != ""); n != 1 {
		return rec, fmt.Errorf("%w: give exactly one of a .torrent, a magnet link or an info hash", api.ErrBadRequest)
	}
	if h := strings.TrimSpace(req.InfoHash); h != "" {
		var ih metainfo.Hash
		if err := ih.FromHexString(h); err != nil {
			return rec, fmt.Errorf("%w: info hash %q: want 40 hex digits", api.ErrBadRequest, h)
		}
		rec.Magnet = "magnet:?xt=urn:btih:" + ih.HexString()
	}
	if _, err := rec.spec(); err != nil {
		return rec, err
	}
	return rec, nil
}

// Repeat joins the swarm of req for the owner and records it, so that it
// is rejoined after a restart and never left by the autopilot or the
// repeater's leave rules (without demand it goes quiet instead). A swarm
// the autopilot serves becomes the owner's. When max_swarms are served,
// the autopilot's weakest swarm makes room.
func (a *App) Repeat(_ context.Context, req api.RepeatRequest) (api.Torrent, error) {
	rec, err := recordOf(req)
	if err != nil {
		return api.Torrent{}, err
	}
	spec, err := rec.spec()
	if err != nil {
		return api.Torrent{}, err
	}
	sw, err := a.joinForOwner(spec)
	if err != nil {
		return api.Torrent{}, err
	}
	ih := sw.InfoHash()
	val, _ := json.Marshal(rec)
	if err := a.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTorrents).Put(ih[:], val)
	}); err != nil {
		return api.Torrent{}, fmt.Errorf("record swarm: %w", err)
	}
	a.log.Info("joined swarm", "infohash", ih.HexString(), "name", sw.Torrent().Name(), "origin", rank.OriginOwner)
	return api.Torrent{InfoHash: ih.HexString(), Name: sw.Torrent().Name(), Origin: string(rank.OriginOwner)}, nil
}

// joinForOwner joins spec's swarm as the owner's (kept; see ownerJoin).
// When max_swarms are served, the autopilot's weakest swarm makes room.
func (a *App) joinForOwner(spec *torrent.TorrentSpec) (*repeater.Swarm, error) {
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	sw, err := a.rep.JoinWith(spec, ownerJoin)
	if errors.Is(err, repeater.ErrTooManySwarms) && a.auto != nil {
		if ih, ok := a.auto.weakest(); ok {
			a.leaveFor(ih, leftForOwner)
			sw, err = a.rep.JoinWith(spec, ownerJoin)
		}
	}
	if err == nil {
		a.setOrigin(sw.InfoHash(), rank.OriginOwner)
	}
	return sw, err
}

// ownerJoin is how the owner's swarms are joined: kept, so that the
// repeater's leave rules quiet them instead of leaving them.
var ownerJoin = repeater.JoinOptions{Keep: true}

// Leave leaves a swarm and forgets it; a recorded swarm that is not served
// (its rejoin failed) is forgotten too.
func (a *App) Leave(_ context.Context, infoHash string) error {
	var ih metainfo.Hash
	if err := ih.FromHexString(strings.TrimSpace(infoHash)); err != nil {
		return fmt.Errorf("%w: info hash %q: want 40 hex digits", api.ErrBadRequest, infoHash)
	}
	served := a.rep.Swarm(ih) != nil
	if served {
		a.rep.Leave(ih)
	}
	recorded := false
	if err := a.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTorrents)
		if recorded = b.Get(ih[:]) != nil; !recorded {
			return nil
		}
		return b.Delete(ih[:])
	}); err != nil {
		return fmt.Errorf("forget swarm %s: %w", ih.HexString(), err)
	}
	if !served && !recorded {
		return fmt.Errorf("%w: not serving %s", api.ErrBadRequest, ih.HexString())
	}
	return nil
}

// Why the daemon (rather than the repeater or the owner) left a swarm; the
// visit records it in place of the repeater's "left by owner".
const (
	leftForOwner = rank.LeftForOwner // btslave repeat needed the slot
)

// leaveFor leaves a swarm, recording reason as the visit's.
func (a *App) leaveFor(ih metainfo.Hash, reason string) {
	a.rep.LeaveFor(ih, reason) // calls onLeave before it returns
}

// swarmOrigin is who had a served swarm joined, and when.
type swarmOrigin struct {
	origin rank.Origin
	joined time.Time
}

// setOrigin records who had ih joined; joining again for the owner makes
// an autopilot swarm the owner's.
func (a *App) setOrigin(ih metainfo.Hash, o rank.Origin) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur, ok := a.origins[ih]
	if ok && (cur.origin == o || o == rank.OriginAuto) {
		return
	}
	if !ok {
		cur.joined = time.Now()
	}
	cur.origin = o
	a.origins[ih] = cur
}

// origin says who had ih joined; a swarm of unknown origin is the owner's.
func (a *App) origin(ih metainfo.Hash) swarmOrigin {
	a.mu.Lock()
	defer a.mu.Unlock()
	if o, ok := a.origins[ih]; ok {
		return o
	}
	return swarmOrigin{origin: rank.OriginOwner}
}

// rejoin joins every recorded swarm; a record that no longer parses is
// logged and kept (nothing is lost on a bad entry).
func (a *App) rejoin() {
	_ = a.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTorrents).ForEach(func(k, v []byte) error {
			var rec swarmRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				a.log.Warn("bad swarm record; left in place", "key", fmt.Sprintf("%x", k), "err", err)
				return nil
			}
			spec, err := rec.spec()
			var sw *repeater.Swarm
			if err == nil {
				sw, err = a.rep.JoinWith(spec, ownerJoin)
			}
			if err == nil {
				a.setOrigin(sw.InfoHash(), rank.OriginOwner)
			}
			if err != nil {
				a.log.Warn("rejoin swarm", "infohash", fmt.Sprintf("%x", k), "err", err)
			}
			return nil
		})
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
