package daemon

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/btslave/btslave/master"
)

// autoRetry is how long auto_cashin waits before asking again for a
// torrent no friend accepted to help.
const autoRetry = 2 * time.Minute

// autoCashins remembers which of our master's torrents auto_cashin asked
// friends for.
type autoCashins struct {
	mu    sync.Mutex
	asked map[string]autoAsk
}

type autoAsk struct {
	at       time.Time
	accepted bool
}

// take says whether infoHash is to be asked for now, and marks it asked.
func (c *autoCashins) take(infoHash string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.asked == nil {
		c.asked = map[string]autoAsk{}
	}
	if a, ok := c.asked[infoHash]; ok && (a.accepted || now.Sub(a.at) < autoRetry) {
		return false
	}
	c.asked[infoHash] = autoAsk{at: now}
	return true
}

func (c *autoCashins) done(infoHash string, accepted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.asked[infoHash]
	a.accepted = accepted
	c.asked[infoHash] = a
}

// autoCashin is called with every poll of our master: with
// friends.auto_cashin on, each torrent it downloads whose swarm is starved
// (friends.starved_ratio downloaders per seed, as the master's trackers
// scraped it) is cashed in once, at the master's peer address, as
// `btslave cashin` would; a torrent no friend took is asked again after
// autoRetry.
func (a *App) autoCashin(ctx context.Context, ts []master.Torrent, peer netip.AddrPort) {
	p := a.friends
	if p == nil || !a.cfg.Friends.AutoCashin || !peer.IsValid() {
		return
	}
	for _, t := range ts {
		if t.Stopped || !t.Starved(a.cfg.Friends.StarvedRatio) || !p.auto.take(t.InfoHash, time.Now()) {
			continue
		}
		a.bg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			helpers, err := a.cashinFor(ctx, t.InfoHash, t.Magnet, t.MetaInfo, peer.String())
			p.auto.done(t.InfoHash, err == nil)
			log := a.log.With("component", "friends", "info_hash", t.InfoHash, "name", t.Name,
				"seeders", t.Seeders, "leechers", t.Leechers)
			if err != nil {
				log.Warn("auto_cashin: no friend helps with a starved swarm; asking again later", "err", err, "retry_in", autoRetry)
				return
			}
			log.Info("auto_cashin: friends help our master with a starved swarm", "friends", helpers)
		})
	}
}
