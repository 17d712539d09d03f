package daemon

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/cache"
	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/rank"
	"github.com/btslave/btslave/ledger"
)

// friendLimits is what the owner allows a friend's request
// (docs/friends-iou.md, "Help policy"): max_swarms (a swarm the autopilot
// chose may make room), the cache room not pinned, the upload limit, and
// the feeds' exclude patterns.
func (a *App) friendLimits(r ledger.Request) ledger.Limits {
	fc := a.cfg.Friends
	l := ledger.Limits{CreditLimit: int64(fc.CreditLimit), StarterCredit: int64(fc.StarterCredit),
		MaxSwarms: a.cfg.Repeater.MaxSwarms, CacheFree: -1}
	auto := map[metainfo.Hash]bool{}
	for _, s := range a.rep.Swarms() {
		l.Swarms++
		if a.origin(s.InfoHash()).origin == rank.OriginAuto {
			l.FreeSwarms++
			auto[s.InfoHash()] = true
		}
	}
	if c := a.rep.Cache(); c != nil {
		l.CacheFree = cacheRoom(c.Stats(), func(ih metainfo.Hash) bool { return auto[ih] })
	}
	l.SwarmCache = int64(a.cfg.Repeater.SwarmCache)
	if lim := a.uploadLimit(); lim > 0 && a.friends != nil {
		l.UploadFull = a.friends.up.rate() >= 0.9*float64(lim)
	}
	l.Allowed = a.friendFilter
	return l
}

// roomForFriend leaves the weakest free repeating swarm (one the
// autopilot joined), the same pick joinForOwner makes for the owner, so
// that an accepted friend's request at max_swarms gets its slot: a friend
// comes before free repeating.
func (a *App) roomForFriend(r ledger.Request) error {
	if a.auto == nil {
		return fmt.Errorf("no swarm of the autopilot's is served")
	}
	pick, ok := a.auto.weakest()
	if !ok {
		return fmt.Errorf("no swarm of the autopilot's is served")
	}
	who := "a friend"
	if r.From != nil {
		who = "friend " + friends.NewID(r.From).Short()
	}
	a.log.Info("friends: a free repeating swarm gives its slot to a friend's master", "left", pick.HexString(), "for", r.InfoHash, "friend", who)
	a.leaveAuto(pick, "gave its slot to "+who+"'s master")
	return nil
}

// cacheRoom is what a new swarm may take of the cache without pushing out
// what must stay: pinned pieces, and the pieces of swarms served for our
// own master, the owner or other friends. Pieces of free repeating
// swarms (free says which) and idle buffers may make room.
func cacheRoom(st cache.Stats, free func(metainfo.Hash) bool) int64 {
	room := st.Budget - st.Pinned
	for ih, n := range st.Torrents {
		if !free(ih) {
			room -= n
		}
	}
	return max(room, 0)
}

// uploadLimit is the tighter of peer.upload_limit and
// repeater.upload_limit in bytes/s, 0 unlimited.
func (a *App) uploadLimit() int64 {
	p, r := int64(a.cfg.Peer.UploadLimit), int64(a.cfg.Repeater.UploadLimit)
	switch {
	case p <= 0:
		return max(r, 0)
	case r <= 0:
		return p
	}
	return min(p, r)
}

// friendFilter refuses a friend's torrent whose name an exclude pattern
// of any feed matches: those name what the owner never repeats. A torrent
// whose name is unknown (a magnet link without dn) is refused while any
// such pattern exists, since it cannot be checked.
func (a *App) friendFilter(r ledger.Request) (bool, string) {
	for _, f := range a.Feeds(context.Background()) {
		if f.Exclude == "" {
			continue
		}
		re, err := regexp.Compile(f.Exclude)
		if err != nil {
			continue // the feed's own check reports it
		}
		if r.Name == "" {
			return false, fmt.Sprintf("feed %q excludes names by %q and the request gives no name", f.Name, f.Exclude)
		}
		if re.MatchString(r.Name) {
			return false, fmt.Sprintf("feed %q excludes %q by %q", f.Name, r.Name, f.Exclude)
		}
	}
	return true, ""
}

// upMeter is the client's upload rate, sampled by friendsPart.run.
type upMeter struct {
	mu    sync.Mutex
	at    time.Time
	bytes int64
	bps   float64
}

// sample takes the client's uploaded byte count at now.
func (u *upMeter) sample(now time.Time, bytes int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.at.IsZero() {
		if dt := now.Sub(u.at).Seconds(); dt > 0 {
			u.bps = float64(bytes-u.bytes) / dt
		}
	}
	u.at, u.bytes = now, bytes
}

func (u *upMeter) rate() float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bps
}
