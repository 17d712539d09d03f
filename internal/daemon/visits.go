package daemon

import (
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/repeater"
)

var bucketVisits = []byte("visits")

// maxVisits bounds the visits kept in the database.
const maxVisits = 1000

// onLeave records a finished visit. It forgets no swarm: the owner's are
// never left by the repeater's rules, and Leave deletes their record
// itself. The autopilot learns of every leave but a shutdown: it may not
// rejoin the swarm for a while (cooldown) and has a slot to fill.
func (a *App) onLeave(v repeater.Visit) {
	a.mu.Lock()
	delete(a.origins, v.InfoHash)
	a.mu.Unlock()
	if a.auto != nil && v.Reason != repeater.LeftShutdown {
		a.auto.noteLeft(v.InfoHash, v.Reason, v.Left)
	}
	a.visits.WithLabelValues(v.Reason).Inc()
	rec, _ := json.Marshal(toAPIVisit(v))
	key := make([]byte, 8+20)
	binary.BigEndian.PutUint64(key, uint64(v.Left.UnixNano()))
	copy(key[8:], v.InfoHash[:])
	err := a.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketVisits)
		if err := b.Put(key, rec); err != nil {
			return err
		}
		for b.Stats().KeyN > maxVisits {
			k, _ := b.Cursor().First()
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.log.Warn("record visit", "err", err)
	}
}

func toAPIVisit(v repeater.Visit) api.Visit {
	return api.Visit{InfoHash: v.InfoHash.HexString(), Name: v.Name, Joined: v.Joined, Left: v.Left,
		Uploaded: v.Uploaded, Downloaded: v.Downloaded, Ratio: v.Ratio(), PeersServed: v.PeersServed, Reason: v.Reason}
}

// lastVisits returns the last visit to each swarm among the recorded
// visits that ended after since.
func (a *App) lastVisits(since time.Time) map[metainfo.Hash]api.Visit {
	out := map[metainfo.Hash]api.Visit{}
	_ = a.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketVisits).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if len(k) != 8+20 {
				continue
			}
			if time.Unix(0, int64(binary.BigEndian.Uint64(k))).Before(since) {
				break
			}
			ih := metainfo.Hash(k[8:])
			if _, ok := out[ih]; ok {
				continue
			}
			var vis api.Visit
			if json.Unmarshal(v, &vis) == nil {
				out[ih] = vis
			}
		}
		return nil
	})
	return out
}

// recentVisits returns up to n visits, newest first.
func (a *App) recentVisits(n int) []api.Visit {
	out := []api.Visit{}
	_ = a.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketVisits).Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			var vis api.Visit
			if json.Unmarshal(v, &vis) == nil {
				out = append(out, vis)
			}
		}
		return nil
	})
	return out
}

func newVisitsCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "btslave_visits_total",
		Help: "Swarms left, by reason.",
	}, []string{"reason"})
}
