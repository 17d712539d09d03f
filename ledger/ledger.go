package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/friends"
)

var (
	// ErrStale is returned when an IOU is not newer than the one we hold
	// (a replay, a lower total, a gap or a fork). The IOU returned with it is
	// our latest, to send back so the peer can resync.
	ErrStale = errors.New("IOU is not newer than ours")
	// ErrUnknownKey is returned when the other party is not a friend.
	ErrUnknownKey = errors.New("IOU from a key that is not a friend")
	// ErrNotOurs is returned when we are neither party, or hold the wrong
	// role for the operation.
	ErrNotOurs = errors.New("IOU is not ours to sign")
	// ErrTooMuch is returned by Countersign when the increase is more than
	// we saw delivered.
	ErrTooMuch = errors.New("IOU claims more than was delivered")
)

var (
	bucketLedger  = []byte("ledger")
	bucketLatest  = []byte("latest")
	bucketHistory = []byte("history")
)

// Options configures Open.
type Options struct {
	// Identity is our key pair.
	Identity friends.Identity
	// IsFriend, if set, tells whether a key may sign IOUs with us;
	// without it every key may.
	IsFriend func(friends.ID) bool
	Logger   *slog.Logger
	Now      func() time.Time
}

// Store is the IOU ledger in the daemon's database.
type Store struct {
	db   *bolt.DB
	opts Options
	self ed25519.PublicKey
}

// Open makes the ledger's buckets in db if needed.
func Open(db *bolt.DB, opts Options) (*Store, error) {
	if opts.Identity.Private == nil {
		return nil, errors.New("ledger: no identity")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketLedger)
		if err != nil {
			return err
		}
		if _, err := b.CreateBucketIfNotExists(bucketLatest); err != nil {
			return err
		}
		_, err = b.CreateBucketIfNotExists(bucketHistory)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return &Store{db: db, opts: opts, self: opts.Identity.Public()}, nil
}

func pairKey(debtor, creditor []byte) []byte {
	return append(pad(debtor), pad(creditor)...)
}

// Latest returns the newest countersigned IOU for debtor→creditor, or the
// zero IOU (seq 0, total 0) with both keys set.
func (s *Store) Latest(debtor, creditor ed25519.PublicKey) (IOU, error) {
	var u IOU
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		u, err = latest(tx, debtor, creditor)
		return err
	})
	return u, err
}

func latest(tx *bolt.Tx, debtor, creditor ed25519.PublicKey) (IOU, error) {
	v := tx.Bucket(bucketLedger).Bucket(bucketLatest).Get(pairKey(debtor, creditor))
	if v == nil {
		return IOU{Debtor: bytes.Clone(debtor), Creditor: bytes.Clone(creditor)}, nil
	}
	var u IOU
	return u, u.UnmarshalBinary(v)
}

// Propose builds, as creditor, the next IOU for debtor with delta more
// bytes, signed by us. Nothing is stored until the countersigned IOU comes
// back through Accept.
func (s *Store) Propose(debtor ed25519.PublicKey, delta uint64) (IOU, error) {
	last, err := s.Latest(debtor, s.self)
	if err != nil {
		return IOU{}, err
	}
	u := IOU{Seq: last.Seq + 1, Debtor: last.Debtor, Creditor: s.self, Total: last.Total + delta}
	return u, u.Sign(s.opts.Identity.Private)
}

func (s *Store) reject(op string, u IOU, err error) error {
	s.opts.Logger.Warn("ledger: IOU rejected", "op", op, "seq", u.Seq, "total", u.Total,
		"debtor", idOf(u.Debtor), "creditor", idOf(u.Creditor), "reason", err)
	return err
}

func idOf(k []byte) friends.ID { return friends.NewID(k) }

func (s *Store) known(k ed25519.PublicKey) bool {
	return s.opts.IsFriend == nil || s.opts.IsFriend(friends.NewID(k))
}

// Countersign signs, as debtor, an IOU the creditor proposed, if it is
// exactly the next one (seq+1), its total grew by at most maxDelta, and the
// creditor's signature holds; then stores it. On ErrStale the returned IOU
// is our latest, for the creditor to resync to.
func (s *Store) Countersign(u IOU, maxDelta uint64, reason string) (IOU, error) {
	if !u.Debtor.Equal(s.self) || u.Creditor.Equal(s.self) {
		return IOU{}, s.reject("countersign", u, ErrNotOurs)
	}
	if !s.known(u.Creditor) {
		return IOU{}, s.reject("countersign", u, ErrUnknownKey)
	}
	if err := u.VerifyCreditor(); err != nil {
		return IOU{}, s.reject("countersign", u, err)
	}
	var out IOU
	err := s.db.Update(func(tx *bolt.Tx) error {
		last, err := latest(tx, u.Debtor, u.Creditor)
		if err != nil {
			return err
		}
		if u.Seq != last.Seq+1 || u.Total < last.Total {
			out = last
			return fmt.Errorf("seq %d total %d against our seq %d total %d: %w", u.Seq, u.Total, last.Seq, last.Total, ErrStale)
		}
		if d := u.Total - last.Total; d > maxDelta {
			return fmt.Errorf("+%d bytes, saw %d: %w", d, maxDelta, ErrTooMuch)
		}
		if err := u.Sign(s.opts.Identity.Private); err != nil {
			return err
		}
		out = u
		return s.put(tx, u, last.Total, reason)
	})
	if err != nil {
		return out, s.reject("countersign", u, err)
	}
	return out, nil
}

// Accept stores an IOU both parties signed if it is newer than ours. A copy
// of the one we hold is a no-op (false, nil). On ErrStale the returned IOU
// is our latest.
func (s *Store) Accept(u IOU, reason string) (stored bool, ours IOU, err error) {
	other := u.Debtor
	if other.Equal(s.self) {
		other = u.Creditor
	} else if !u.Creditor.Equal(s.self) {
		return false, IOU{}, s.reject("accept", u, ErrNotOurs)
	}
	if !s.known(other) {
		return false, IOU{}, s.reject("accept", u, ErrUnknownKey)
	}
	if err := u.Verify(); err != nil {
		return false, IOU{}, s.reject("accept", u, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		last, err := latest(tx, u.Debtor, u.Creditor)
		if err != nil {
			return err
		}
		ours = last
		if u.Seq == last.Seq && u.Total == last.Total {
			return nil // the one we have: both signatures verified, same body
		}
		if u.Seq <= last.Seq || u.Total < last.Total {
			return fmt.Errorf("seq %d total %d against our seq %d total %d: %w", u.Seq, u.Total, last.Seq, last.Total, ErrStale)
		}
		stored, ours = true, u
		return s.put(tx, u, last.Total, reason)
	})
	if err != nil {
		return false, ours, s.reject("accept", u, err)
	}
	return stored, ours, nil
}

// put writes u as the pair's latest and appends it to the history.
func (s *Store) put(tx *bolt.Tx, u IOU, prevTotal uint64, reason string) error {
	enc, _ := u.MarshalBinary()
	b := tx.Bucket(bucketLedger)
	if err := b.Bucket(bucketLatest).Put(pairKey(u.Debtor, u.Creditor), enc); err != nil {
		return err
	}
	e := Entry{IOU: u, Time: s.opts.Now(), Delta: u.Total - prevTotal, Reason: reason}
	return b.Bucket(bucketHistory).Put(binary.BigEndian.AppendUint64(pairKey(u.Debtor, u.Creditor), u.Seq), e.encode())
}
