package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/friends"
)

// MaxReason is the longest reason kept with a history entry.
const MaxReason = 200

// Entry is one stored IOU with why it was made, so `btslave ledger` can
// explain a balance.
type Entry struct {
	IOU    IOU
	Time   time.Time
	Delta  uint64 // what this IOU added to the running total
	Reason string // e.g. "helped master 127.0.0.5:51413 with <infohash>"
}

func (e Entry) encode() []byte {
	b, _ := e.IOU.MarshalBinary()
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, e.Delta)
	r := e.Reason
	if len(r) > MaxReason {
		r = r[:MaxReason]
	}
	return append(b, r...)
}

func decodeEntry(b []byte) (Entry, error) {
	var e Entry
	if len(b) < Size+16 || len(b) > Size+16+MaxReason {
		return e, fmt.Errorf("history entry of %d bytes: %w", len(b), ErrMalformed)
	}
	if err := e.IOU.UnmarshalBinary(b[:Size]); err != nil {
		return e, err
	}
	e.Time = time.Unix(0, int64(binary.BigEndian.Uint64(b[Size:]))).UTC()
	e.Delta = binary.BigEndian.Uint64(b[Size+8:])
	e.Reason = string(b[Size+16:])
	return e, nil
}

// History returns the stored IOUs for debtor→creditor, oldest first.
func (s *Store) History(debtor, creditor ed25519.PublicKey) ([]Entry, error) {
	var out []Entry
	prefix := pairKey(debtor, creditor)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLedger).Bucket(bucketHistory).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			e, err := decodeEntry(v)
			if err != nil {
				return fmt.Errorf("history %x: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Balance is where we stand with one friend.
type Balance struct {
	Friend friends.ID
	Key    ed25519.PublicKey
	Given  uint64 // bytes we helped them with (they owe us), countersigned
	Taken  uint64 // bytes they helped us with (we owe them), countersigned
}

// Net is Given − Taken: positive when the friend owes us.
func (b Balance) Net() int64 { return int64(b.Given) - int64(b.Taken) }

// Balances returns every friend we have an IOU with, best balance first.
func (s *Store) Balances() ([]Balance, error) {
	m := map[friends.ID]*Balance{}
	get := func(k []byte) *Balance {
		id := friends.NewID(k)
		if m[id] == nil {
			m[id] = &Balance{Friend: id, Key: bytes.Clone(k)}
		}
		return m[id]
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLedger).Bucket(bucketLatest).ForEach(func(k, v []byte) error {
			var u IOU
			if err := u.UnmarshalBinary(v); err != nil {
				return err
			}
			switch {
			case u.Creditor.Equal(s.self):
				get(u.Debtor).Given = u.Total
			case u.Debtor.Equal(s.self):
				get(u.Creditor).Taken = u.Total
			}
			return nil
		})
	})
	out := make([]Balance, 0, len(m))
	for _, b := range m {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Net() > out[j].Net() })
	return out, err
}

// BalanceOf returns where we stand with the friend holding key.
func (s *Store) BalanceOf(key ed25519.PublicKey) (Balance, error) {
	b := Balance{Friend: friends.NewID(key), Key: key}
	given, err := s.Latest(key, s.self)
	if err != nil {
		return b, err
	}
	taken, err := s.Latest(s.self, key)
	b.Given, b.Taken = given.Total, taken.Total
	return b, err
}
