package ledger

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/friends"
)

var bucketEverseeds = []byte("everseeds")

// Everseed roles: which side of a second-everseed agreement we are on.
const (
	EverseedAsked = "asked" // we asked the friend to keep our torrent
	EverseedKeeps = "keeps" // the friend asked us; we keep its torrent
)

// Everseed is one second-everseed agreement with a friend: the owner of a
// published torrent asked it (docs/friends-protocol.md §Everseed). It is
// kept beside the IOUs so that `btslave ledger` shows who keeps what; it
// moves no balance.
type Everseed struct {
	Friend   friends.ID `json:"friend"`
	Role     string     `json:"role"` // EverseedAsked or EverseedKeeps
	InfoHash string     `json:"info_hash"`
	Name     string     `json:"name,omitempty"`
	Size     int64      `json:"size"`
	Accepted bool       `json:"accepted"`
	Reason   string     `json:"reason,omitempty"`
	Time     time.Time  `json:"time"`
}

func everseedKey(role string, friend ed25519.PublicKey, infoHash string) []byte {
	return append(append([]byte(role+"/"), friend...), infoHash...)
}

// RecordEverseed stores e for friend (the latest answer wins).
func (s *Store) RecordEverseed(friend ed25519.PublicKey, e Everseed) error {
	e.Friend = friends.NewID(friend)
	if e.Time.IsZero() {
		e.Time = s.opts.Now().UTC()
	}
	if len(e.Reason) > MaxReason {
		e.Reason = e.Reason[:MaxReason]
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketLedger).CreateBucketIfNotExists(bucketEverseeds)
		if err != nil {
			return err
		}
		return b.Put(everseedKey(e.Role, friend, e.InfoHash), v)
	})
	if err != nil {
		return fmt.Errorf("ledger: everseed: %w", err)
	}
	return nil
}

// Everseeds lists the recorded agreements, both roles.
func (s *Store) Everseeds() ([]Everseed, error) {
	var out []Everseed
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLedger).Bucket(bucketEverseeds)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e Everseed
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("everseed %x: %w", k, ErrMalformed)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}
