package tracker

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/anacrolix/torrent/metainfo"
	bolt "go.etcd.io/bbolt"
)

// The downloaded counters live in the daemon's bbolt file, in bucket
// "tracker", sub-bucket "downloaded": key the 20-byte info-hash, value
// the count and the Unix minute of the torrent's last announce, 8 bytes
// each, big-endian. The store's migrations create the buckets.
var (
	bucketTracker    = []byte("tracker")
	bucketDownloaded = []byte("downloaded")
)

// errNoBucket is returned when the database lacks the tracker's bucket
// (a store that did not migrate).
var errNoBucket = errors.New("tracker: the database has no tracker/downloaded bucket; open it with the store package")

// counterLen is the size of a stored counter.
const counterLen = 16

// loadCounters reads the saved counters into the state; those idle for
// longer than Options.Idle are dropped from the file.
func (t *Tracker) loadCounters() error {
	_, now := t.epochAt(t.started)
	idle := int64(t.o.Idle.Minutes())
	var stale [][]byte
	err := t.o.DB.View(func(tx *bolt.Tx) error {
		b := downloadedBucket(tx)
		if b == nil {
			return errNoBucket
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 20 || len(v) != counterLen {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			c := counter{ih: metainfo.Hash(k), downloaded: binary.BigEndian.Uint64(v), active: int64(binary.BigEndian.Uint64(v[8:]))}
			if now-c.active > idle {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			t.state.merge(c)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("tracker: load downloaded counters: %w", err)
	}
	if len(stale) > 0 {
		err = t.o.DB.Update(func(tx *bolt.Tx) error {
			b := downloadedBucket(tx)
			for _, k := range stale {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("tracker: drop idle counters: %w", err)
		}
	}
	t.state.takeDirty() // what was loaded is on disk already
	return nil
}

func downloadedBucket(tx *bolt.Tx) *bolt.Bucket {
	if b := tx.Bucket(bucketTracker); b != nil {
		return b.Bucket(bucketDownloaded)
	}
	return nil
}

// snapshot writes the counters that changed since the last one, in one
// transaction. On failure they are marked to be written next time.
func (t *Tracker) snapshot() error {
	dirty := t.state.takeDirty()
	if len(dirty) == 0 {
		return nil
	}
	cs := t.state.counters(dirty)
	err := t.o.DB.Update(func(tx *bolt.Tx) error {
		b := downloadedBucket(tx)
		if b == nil {
			return errNoBucket
		}
		for i := range cs {
			c := &cs[i] // bbolt keeps the key and value slices until the commit
			v := make([]byte, counterLen)
			binary.BigEndian.PutUint64(v, c.downloaded)
			binary.BigEndian.PutUint64(v[8:], uint64(c.active))
			if err := b.Put(c.ih[:], v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for ih := range dirty {
			t.state.markDirty(ih)
		}
		return fmt.Errorf("tracker: save %d downloaded counters: %w", len(cs), err)
	}
	return nil
}
