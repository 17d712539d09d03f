package feeds

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/config"
)

// FeedState is what the scheduler remembers about one feed between fetches
// and restarts.
type FeedState struct {
	// ETag and LastModified are the validators of the last 200 answer,
	// sent back as If-None-Match and If-Modified-Since.
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// URL is the feed URL the validators belong to.
	URL string `json:"url,omitempty"`
	// LastFetch is when the last fetch ended, LastSuccess the last one
	// without error.
	LastFetch   time.Time `json:"last_fetch,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError is the last fetch's error; empty after a success.
	LastError string `json:"last_error,omitempty"`
	// Failures counts fetches failed in a row; it sets the backoff.
	Failures int `json:"failures,omitempty"`
	// NextRetry is when a failed feed is tried again.
	NextRetry time.Time `json:"next_retry,omitzero"`
	// Seen maps the .torrent links (and watch-folder files) of the feed's
	// current items to what they held, so that a .torrent is fetched once,
	// not at every run. Links the feed no longer lists are dropped.
	Seen map[string]SeenTorrent `json:"seen,omitempty"`
}

// feedRecord is the stored form of a feed added at run time.
type feedRecord struct {
	Name     string `json:"name"`
	Kind     string `json:"kind,omitempty"`
	URL      string `json:"url,omitempty"`
	Dir      string `json:"dir,omitempty"`
	Schedule string `json:"schedule,omitempty"`
	Include  string `json:"include,omitempty"`
	Exclude  string `json:"exclude,omitempty"`
	MinSize  int64  `json:"min_size,omitempty"`
	MaxSize  int64  `json:"max_size,omitempty"`
	Category string `json:"category,omitempty"`
	MaxAge   int64  `json:"max_age_ns,omitempty"`
}

func recordOf(f config.Feed) feedRecord {
	return feedRecord{
		Name: f.Name, Kind: f.Kind, URL: f.URL, Dir: f.Dir, Schedule: string(f.Schedule),
		Include: f.Include, Exclude: f.Exclude, MinSize: int64(f.MinSize), MaxSize: int64(f.MaxSize),
		Category: f.Category, MaxAge: int64(f.MaxAge),
	}
}

func (r feedRecord) feed() config.Feed {
	return config.Feed{
		Name: r.Name, Kind: r.Kind, URL: r.URL, Dir: r.Dir, Schedule: config.Cron(r.Schedule),
		Include: r.Include, Exclude: r.Exclude, MinSize: config.Size(r.MinSize), MaxSize: config.Size(r.MaxSize),
		Category: r.Category, MaxAge: config.Duration(r.MaxAge),
	}
}

// Store keeps the feeds added at run time (by the CLI or the API, besides
// those in the configuration file) and every feed's FeedState, in the
// daemon's bbolt database. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
}

// NewStore returns the feed store in db, which must have been opened (and
// migrated) by store.Open; otherwise the error wraps ErrNoBuckets.
func NewStore(db *bolt.DB) (*Store, error) {
	if err := requireBuckets(db, "feed store", bucketFeeds, bucketAdded, bucketState); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

type fBuckets struct{ added, state *bolt.Bucket }

func feedBuckets(tx *bolt.Tx) *fBuckets {
	added, state, ok := subBuckets(tx, bucketFeeds, bucketAdded, bucketState)
	if !ok {
		return nil
	}
	return &fBuckets{added: added, state: state}
}

// subBuckets returns the two sub-buckets a and b of parent; ok is false
// when the schema lacks any of them.
func subBuckets(tx *bolt.Tx, parent, a, b []byte) (x, y *bolt.Bucket, ok bool) {
	p := tx.Bucket(parent)
	if p == nil {
		return nil, nil, false
	}
	x, y = p.Bucket(a), p.Bucket(b)
	return x, y, x != nil && y != nil
}

// requireBuckets fails with ErrNoBuckets when db, not opened (and
// migrated) by store.Open, lacks parent's sub-buckets a and b.
func requireBuckets(db *bolt.DB, what string, parent, a, b []byte) error {
	return db.View(func(tx *bolt.Tx) error {
		if _, _, ok := subBuckets(tx, parent, a, b); !ok {
			return fmt.Errorf("%s: %w (open it with store.Open)", what, ErrNoBuckets)
		}
		return nil
	})
}

// AddFeed records a feed added at run time. Its name must be set and not
// taken by another added feed (ErrFeedExists). It does not validate the
// definition; Service.Add does (CheckFeed).
func (s *Store) AddFeed(f config.Feed) error {
	name := strings.TrimSpace(f.Name)
	if name == "" {
		return fmt.Errorf("add feed: %w: name is empty", ErrBadFeed)
	}
	val, err := json.Marshal(recordOf(f))
	if err != nil {
		return fmt.Errorf("add feed %q: %w", name, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := feedBuckets(tx)
		if b.added.Get([]byte(name)) != nil {
			return fmt.Errorf("add feed %q: %w", name, ErrFeedExists)
		}
		return b.added.Put([]byte(name), val)
	})
}

// RemoveFeed forgets a feed added at run time, and its state;
// ErrFeedNotFound when no added feed has that name.
func (s *Store) RemoveFeed(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := feedBuckets(tx)
		if b.added.Get([]byte(name)) == nil {
			return fmt.Errorf("remove feed %q: %w", name, ErrFeedNotFound)
		}
		if err := b.added.Delete([]byte(name)); err != nil {
			return err
		}
		return b.state.Delete([]byte(name))
	})
}

// ListFeeds returns the feeds added at run time, sorted by name. A record
// that no longer decodes is skipped.
func (s *Store) ListFeeds() ([]config.Feed, error) {
	var out []config.Feed
	err := s.db.View(func(tx *bolt.Tx) error {
		return feedBuckets(tx).added.ForEach(func(_, v []byte) error {
			var r feedRecord
			if json.Unmarshal(v, &r) == nil {
				out = append(out, r.feed())
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list feeds: %w", err)
	}
	slices.SortFunc(out, func(a, b config.Feed) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// State returns a feed's state; the zero FeedState when none is stored.
func (s *Store) State(name string) (FeedState, error) {
	var st FeedState
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := feedBuckets(tx).state.Get([]byte(name)); v != nil {
			if err := json.Unmarshal(v, &st); err != nil {
				st = FeedState{} // a bad record costs one unconditional fetch
			}
		}
		return nil
	})
	if err != nil {
		return FeedState{}, fmt.Errorf("feed %q state: %w", name, err)
	}
	return st, nil
}

// PutState stores a feed's state.
func (s *Store) PutState(name string, st FeedState) error {
	val, err := json.Marshal(&st)
	if err != nil {
		return fmt.Errorf("feed %q state: %w", name, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return feedBuckets(tx).state.Put([]byte(name), val)
	})
}

// deleteState forgets a feed's state.
func (s *Store) deleteState(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return feedBuckets(tx).state.Delete([]byte(name))
	})
}
