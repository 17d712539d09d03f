package friends

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Book keeps our friends and the pending friend requests in the daemon's
// database: bucket "friends" with "friends" and "pending", keyed by ID.
type Book struct {
	db  *bolt.DB
	now func() time.Time
}

// Friend is one entry of the book. Addr is only where we last reached it:
// a friend is its key.
type Friend struct {
	Key   ed25519.PublicKey `json:"key"`
	Addr  string            `json:"addr,omitempty"`
	Added time.Time         `json:"added"`
	Via   string            `json:"via"` // "invite", "swarm", "accepted"
	// Invite is the friend's code we added it by, presented on our first
	// dial so that it adds our key too; cleared once that succeeded.
	Invite string `json:"invite,omitempty"`
	// Name is the owner's label for the friend ("" for none).
	Name string `json:"name,omitempty"`
}

// ID is the friend's ID.
func (f Friend) ID() ID { return NewID(f.Key) }

var (
	bucketFriends = []byte("friends")
	subFriends    = []byte("friends")
	subPending    = []byte("pending")
)

// MaxPending bounds the pending requests kept; more are refused.
const MaxPending = 100

var (
	// ErrNotFound is returned for an ID the book does not hold.
	ErrNotFound = errors.New("no such friend")
	// ErrRefused is returned when policy refuses a friend request.
	ErrRefused = errors.New("friend request refused")
)

// OpenBook creates the book's buckets in db if needed.
func OpenBook(db *bolt.DB) (*Book, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketFriends)
		if err != nil {
			return err
		}
		for _, n := range [][]byte{subFriends, subPending} {
			if _, err := b.CreateBucketIfNotExists(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("friends: create buckets: %w", err)
	}
	return &Book{db: db, now: time.Now}, nil
}

func (bk *Book) put(sub []byte, f Friend) error {
	v, err := json.Marshal(f)
	if err != nil {
		return err
	}
	id := f.ID()
	return bk.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFriends).Bucket(sub).Put(id[:], v)
	})
}

// Add makes key a friend (from an invite we hold, or an accepted request)
// and drops any pending request from it.
func (bk *Book) Add(key ed25519.PublicKey, addr, via string) (Friend, error) {
	if len(key) != ed25519.PublicKeySize {
		return Friend{}, fmt.Errorf("friends: key of %d bytes", len(key))
	}
	f := Friend{Key: key, Addr: addr, Added: bk.now().UTC(), Via: via}
	id := f.ID()
	v, err := json.Marshal(f)
	if err != nil {
		return Friend{}, err
	}
	err = bk.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFriends)
		if old := b.Bucket(subFriends).Get(id[:]); old != nil {
			var o Friend
			if json.Unmarshal(old, &o) == nil {
				f.Added, f.Via, f.Name = o.Added, o.Via, o.Name
				v, _ = json.Marshal(f)
			}
		}
		if err := b.Bucket(subPending).Delete(id[:]); err != nil {
			return err
		}
		return b.Bucket(subFriends).Put(id[:], v)
	})
	return f, err
}

// AddInvite makes the inviter a friend and keeps its code for our first
// dial (Dial's invite argument); InviteUsed clears it.
func (bk *Book) AddInvite(inv Invite) (Friend, error) {
	if _, err := bk.Add(inv.Key, inv.Addr, "invite"); err != nil {
		return Friend{}, err
	}
	return bk.update(inv.ID(), func(f *Friend) { f.Invite = inv.String() })
}

// InviteUsed records that the friend knows our key now.
func (bk *Book) InviteUsed(id ID) error {
	_, err := bk.update(id, func(f *Friend) { f.Invite = "" })
	return err
}

// Get returns the friend with id.
func (bk *Book) Get(id ID) (Friend, error) { return bk.update(id, nil) }

// update applies fn (if any) to the friend with id and stores it.
func (bk *Book) update(id ID, fn func(*Friend)) (Friend, error) {
	var f Friend
	err := bk.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFriends).Bucket(subFriends)
		v := b.Get(id[:])
		if v == nil {
			return fmt.Errorf("%s: %w", id.Short(), ErrNotFound)
		}
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("friend %s: %w", id.Short(), err)
		}
		if fn == nil {
			return nil
		}
		fn(&f)
		nv, err := json.Marshal(f)
		if err != nil {
			return err
		}
		return b.Put(id[:], nv)
	})
	return f, err
}

// Request handles a friend request from key met in a swarm, by the
// [friends] accept policy: "auto" adds it, "ask" keeps it pending, "never"
// refuses. It reports whether key is now a friend.
func (bk *Book) Request(key ed25519.PublicKey, addr, accept string) (bool, error) {
	if bk.Known(key) {
		return true, nil
	}
	switch accept {
	case "auto":
		_, err := bk.Add(key, addr, "swarm")
		return err == nil, err
	case "ask":
		pend, err := bk.list(subPending)
		if err != nil {
			return false, err
		}
		if len(pend) >= MaxPending {
			return false, fmt.Errorf("%d requests pending: %w", len(pend), ErrRefused)
		}
		return false, bk.put(subPending, Friend{Key: key, Addr: addr, Added: bk.now().UTC(), Via: "swarm"})
	default:
		return false, fmt.Errorf("accept = %q: %w", accept, ErrRefused)
	}
}

// Accept turns a pending request into a friend.
func (bk *Book) Accept(id ID) (Friend, error) {
	var f Friend
	err := bk.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketFriends).Bucket(subPending).Get(id[:])
		if v == nil {
			return fmt.Errorf("pending %s: %w", id.Short(), ErrNotFound)
		}
		return json.Unmarshal(v, &f)
	})
	if err != nil {
		return Friend{}, err
	}
	return bk.Add(f.Key, f.Addr, "accepted")
}

// Deny drops a pending request, and nothing else: a friend with the same
// ID is ErrNotFound. The same key may ask again when met again.
func (bk *Book) Deny(id ID) error {
	return bk.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFriends).Bucket(subPending)
		if b.Get(id[:]) == nil {
			return fmt.Errorf("pending %s: %w", id.Short(), ErrNotFound)
		}
		return b.Delete(id[:])
	})
}

// SetName sets the owner's label for a friend.
func (bk *Book) SetName(id ID, name string) (Friend, error) {
	return bk.update(id, func(f *Friend) { f.Name = name })
}

// Remove drops a friend or a pending request. The ledger keeps its IOUs,
// so a friend added again keeps its standing.
func (bk *Book) Remove(id ID) error {
	return bk.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFriends)
		if b.Bucket(subFriends).Get(id[:]) == nil && b.Bucket(subPending).Get(id[:]) == nil {
			return fmt.Errorf("%s: %w", id.Short(), ErrNotFound)
		}
		if err := b.Bucket(subFriends).Delete(id[:]); err != nil {
			return err
		}
		return b.Bucket(subPending).Delete(id[:])
	})
}

// Known reports whether key is a friend.
func (bk *Book) Known(key ed25519.PublicKey) bool { return bk.IsFriend(NewID(key)) }

// IsFriend reports whether id is a friend.
func (bk *Book) IsFriend(id ID) bool {
	found := false
	_ = bk.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketFriends).Bucket(subFriends).Get(id[:]) != nil
		return nil
	})
	return found
}

// List returns the friends, by ID.
func (bk *Book) List() ([]Friend, error) { return bk.list(subFriends) }

// Pending returns the pending requests, by ID.
func (bk *Book) Pending() ([]Friend, error) { return bk.list(subPending) }

func (bk *Book) list(sub []byte) ([]Friend, error) {
	var out []Friend
	err := bk.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFriends).Bucket(sub).ForEach(func(_, v []byte) error {
			var f Friend
			if json.Unmarshal(v, &f) == nil && len(f.Key) == ed25519.PublicKeySize {
				out = append(out, f)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID().String() < out[j].ID().String() })
	return out, err
}
