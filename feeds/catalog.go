package feeds

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket layout (created by the store's 2 → 3 migration):
//
//	catalog/entries  key: v1 hex if the torrent has one, else v2 hex → Entry JSON
//	catalog/alias    key: v2 hex of an entry keyed by v1 hex → that v1 hex
//	feeds/added      key: feed name → feed definition JSON
//	feeds/state      key: feed name → FeedState JSON
var (
	bucketCatalog = []byte("catalog")
	bucketEntries = []byte("entries")
	bucketAlias   = []byte("alias")
	bucketFeeds   = []byte("feeds")
	bucketAdded   = []byte("added")
	bucketState   = []byte("state")
)

// Entry is one torrent in the catalog. The catalog holds one entry per
// torrent: a hybrid torrent seen once by its v1 and once by its v2 info
// hash is one entry.
type Entry struct {
	// InfoHashV1 is the v1 (SHA-1) info hash in lower-case hex; empty for
	// a v2-only torrent.
	InfoHashV1 string `json:"infohash_v1,omitempty"`
	// InfoHashV2 is the v2 (SHA-256) info hash in lower-case hex; empty
	// for a v1-only torrent, or while only the v1 hash is known.
	InfoHashV2 string `json:"infohash_v2,omitempty"`
	// Name is the torrent's name: from the info dictionary, else the
	// magnet's dn, else the feed title.
	Name string `json:"name,omitempty"`
	// Title is the feed's title for the item, when it gave one.
	Title string `json:"title,omitempty"`
	// Size is the content size in bytes; 0 when unknown (a magnet link
	// without xl and without a size in the feed).
	Size int64 `json:"size,omitempty"`
	// Trackers is the announce-list, tier by tier.
	Trackers [][]string `json:"trackers,omitempty"`
	// Feeds names the feeds that offered the torrent.
	Feeds []string `json:"feeds,omitempty"`
	// Categories are the categories the feeds gave.
	Categories []string `json:"categories,omitempty"`
	// FirstSeen and LastSeen are when a feed first and last offered it.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Published is the feed's publication date; zero when unknown.
	Published time.Time `json:"published,omitzero"`
	// Seeders and Peers are the latest torznab figures; nil when no feed
	// gave them. Peers counts seeders too.
	Seeders *int `json:"seeders,omitempty"`
	Peers   *int `json:"peers,omitempty"`
	// Magnet is a magnet link for the torrent.
	Magnet string `json:"magnet,omitempty"`
	// Torrent is the validated .torrent, when one was fetched, so that the
	// daemon can join without fetching metadata from peers.
	Torrent []byte `json:"torrent,omitempty"`
}

// Key returns the entry's catalog key: the v1 info hash in hex when it has
// one, else the v2 hash.
func (e *Entry) Key() string {
	if e.InfoHashV1 != "" {
		return e.InfoHashV1
	}
	return e.InfoHashV2
}

// newest is the time List sorts by.
func (e *Entry) newest() time.Time {
	if !e.Published.IsZero() {
		return e.Published
	}
	return e.FirstSeen
}

// normalize lower-cases and checks the info hashes.
func (e *Entry) normalize() error {
	e.InfoHashV1 = strings.ToLower(strings.TrimSpace(e.InfoHashV1))
	e.InfoHashV2 = strings.ToLower(strings.TrimSpace(e.InfoHashV2))
	if e.InfoHashV1 != "" && (len(e.InfoHashV1) != 40 || normHash(e.InfoHashV1) == "") {
		return fmt.Errorf("catalog entry: v1 info hash %q is not 40 hex digits", e.InfoHashV1)
	}
	if e.InfoHashV2 != "" && (len(e.InfoHashV2) != 64 || normHash(e.InfoHashV2) == "") {
		return fmt.Errorf("catalog entry: v2 info hash %q is not 64 hex digits", e.InfoHashV2)
	}
	if e.Key() == "" {
		return fmt.Errorf("catalog entry %q: no info hash", e.Name)
	}
	return nil
}

// merge folds o, a later sighting of the same torrent, into e.
func (e *Entry) merge(o *Entry) {
	if e.InfoHashV1 == "" {
		e.InfoHashV1 = o.InfoHashV1
	}
	if e.InfoHashV2 == "" {
		e.InfoHashV2 = o.InfoHashV2
	}
	if len(o.Torrent) > 0 && len(e.Torrent) == 0 {
		// The .torrent knows the name and size better than a feed.
		e.Torrent = o.Torrent
		if o.Name != "" {
			e.Name = o.Name
		}
		if o.Size > 0 {
			e.Size = o.Size
		}
	}
	if e.Name == "" {
		e.Name = o.Name
	}
	if e.Size <= 0 {
		e.Size = o.Size
	}
	if e.Title == "" {
		e.Title = o.Title
	}
	e.Trackers = cleanTiers(append(e.Trackers, o.Trackers...))
	e.Feeds = union(e.Feeds, o.Feeds)
	e.Categories = union(e.Categories, o.Categories)
	if e.FirstSeen.IsZero() || (!o.FirstSeen.IsZero() && o.FirstSeen.Before(e.FirstSeen)) {
		e.FirstSeen = o.FirstSeen
	}
	if o.LastSeen.After(e.LastSeen) {
		e.LastSeen = o.LastSeen
	}
	if e.Published.IsZero() {
		e.Published = o.Published
	}
	if o.Seeders != nil {
		e.Seeders = o.Seeders
	}
	if o.Peers != nil {
		e.Peers = o.Peers
	}
	if e.Magnet == "" || (o.Magnet != "" && magnetHashes(o.Magnet) > magnetHashes(e.Magnet)) {
		e.Magnet = o.Magnet
	}
}

// magnetHashes counts the info hashes a magnet link names.
func magnetHashes(m string) int {
	return strings.Count(m, "urn:btih:") + strings.Count(m, "urn:btmh:")
}

func union(a, b []string) []string {
	for _, s := range b {
		if s != "" && !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// Catalog is the deduplicated set of torrents the feeds found, kept in the
// daemon's bbolt database. Each Put commits (fsynced) before it returns, so
// a crash loses nothing Put reported. It is safe for concurrent use.
type Catalog struct {
	db *bolt.DB
}

// NewCatalog returns the catalog in db, which must have been opened (and
// migrated) by store.Open; otherwise the error wraps ErrNoBuckets.
func NewCatalog(db *bolt.DB) (*Catalog, error) {
	if err := requireBuckets(db, "catalog", bucketCatalog, bucketEntries, bucketAlias); err != nil {
		return nil, err
	}
	return &Catalog{db: db}, nil
}

type catBuckets struct{ entries, alias *bolt.Bucket }

func catalogBuckets(tx *bolt.Tx) *catBuckets {
	entries, alias, ok := subBuckets(tx, bucketCatalog, bucketEntries, bucketAlias)
	if !ok {
		return nil
	}
	return &catBuckets{entries: entries, alias: alias}
}

// resolve returns the key of the entry that hash (v1 or v2 hex) names, or
// "" when none.
func (b *catBuckets) resolve(hash string) string {
	if hash == "" {
		return ""
	}
	if b.entries.Get([]byte(hash)) != nil {
		return hash
	}
	if k := b.alias.Get([]byte(hash)); k != nil && b.entries.Get(k) != nil {
		return string(k)
	}
	return ""
}

func (b *catBuckets) get(key string) (Entry, bool) {
	var e Entry
	v := b.entries.Get([]byte(key))
	if v == nil || json.Unmarshal(v, &e) != nil {
		return Entry{}, false
	}
	return e, true
}

func (b *catBuckets) delete(e *Entry) error {
	if err := b.entries.Delete([]byte(e.Key())); err != nil {
		return err
	}
	if e.InfoHashV1 != "" && e.InfoHashV2 != "" {
		if k := b.alias.Get([]byte(e.InfoHashV2)); k != nil && string(k) == e.InfoHashV1 {
			return b.alias.Delete([]byte(e.InfoHashV2))
		}
	}
	return nil
}

// put merges e into the catalog inside tx and returns the stored entry and
// whether the torrent is new to the catalog.
func (b *catBuckets) put(e Entry) (Entry, bool, error) {
	if err := e.normalize(); err != nil {
		return Entry{}, false, err
	}
	var keys []string
	for _, h := range []string{e.InfoHashV1, e.InfoHashV2} {
		if k := b.resolve(h); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	merged := e
	if len(keys) > 0 {
		// Fold the records found (by v1, then v2) together, then the new
		// sighting into them: their first sighting and names win, the new
		// sighting updates seeders, last-seen and adds what was missing.
		var olds []Entry
		for _, k := range keys {
			if old, ok := b.get(k); ok {
				olds = append(olds, old)
			}
		}
		if len(olds) > 0 {
			merged = olds[0]
			for i := 1; i < len(olds); i++ {
				merged.merge(&olds[i])
			}
			merged.merge(&e)
		}
		for i := range olds {
			if err := b.delete(&olds[i]); err != nil {
				return Entry{}, false, err
			}
		}
	}
	val, err := json.Marshal(&merged)
	if err != nil {
		return Entry{}, false, fmt.Errorf("catalog entry %s: %w", merged.Key(), err)
	}
	if err := b.entries.Put([]byte(merged.Key()), val); err != nil {
		return Entry{}, false, err
	}
	if merged.InfoHashV1 != "" && merged.InfoHashV2 != "" {
		if err := b.alias.Put([]byte(merged.InfoHashV2), []byte(merged.InfoHashV1)); err != nil {
			return Entry{}, false, err
		}
	}
	return merged, len(keys) == 0, nil
}

// Put adds e to the catalog, or merges it into the entry of the same
// torrent (matched by v1 or v2 info hash; an entry that links two existing
// entries, as a hybrid .torrent does, merges them). It returns the stored
// entry and whether the torrent was new to the catalog. e needs at least
// one info hash.
func (c *Catalog) Put(e Entry) (Entry, bool, error) {
	var out Entry
	var isNew bool
	err := c.db.Update(func(tx *bolt.Tx) error {
		var err error
		out, isNew, err = catalogBuckets(tx).put(e)
		return err
	})
	if err != nil {
		return Entry{}, false, fmt.Errorf("catalog put: %w", err)
	}
	return out, isNew, nil
}

// putMany puts entries in one transaction; isNew[i] tells whether
// entries[i] was new.
func (c *Catalog) putMany(entries []Entry) (stored []Entry, isNew []bool, err error) {
	stored = make([]Entry, len(entries))
	isNew = make([]bool, len(entries))
	err = c.db.Update(func(tx *bolt.Tx) error {
		b := catalogBuckets(tx)
		for i, e := range entries {
			var err error
			if stored[i], isNew[i], err = b.put(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("catalog put: %w", err)
	}
	return stored, isNew, nil
}

// Get returns the entry that hash (v1 or v2 info hash, hex) names.
func (c *Catalog) Get(hash string) (Entry, bool, error) {
	var e Entry
	var ok bool
	err := c.db.View(func(tx *bolt.Tx) error {
		b := catalogBuckets(tx)
		if k := b.resolve(strings.ToLower(strings.TrimSpace(hash))); k != "" {
			e, ok = b.get(k)
		}
		return nil
	})
	if err != nil {
		return Entry{}, false, fmt.Errorf("catalog get: %w", err)
	}
	return e, ok, nil
}

// List returns every entry, newest first: by publication date, else by
// first sighting. Records that no longer decode are skipped.
func (c *Catalog) List() ([]Entry, error) { return c.list(true) }

// ListMeta is List without the .torrent bytes (Entry.Torrent is nil), for
// callers that look at every entry often, such as the autopilot's
// re-ranking; Get gives an entry whole.
func (c *Catalog) ListMeta() ([]Entry, error) { return c.list(false) }

// noTorrent decodes an entry without its .torrent bytes: the field's JSON
// is scanned but not decoded.
type noTorrent struct {
	Entry
	Torrent skipJSON `json:"torrent,omitempty"`
}

type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

func (c *Catalog) list(withTorrent bool) ([]Entry, error) {
	var out []Entry
	err := c.db.View(func(tx *bolt.Tx) error {
		return catalogBuckets(tx).entries.ForEach(func(k, v []byte) error {
			if withTorrent {
				var e Entry
				if json.Unmarshal(v, &e) == nil {
					out = append(out, e)
				}
				return nil
			}
			var e noTorrent
			if json.Unmarshal(v, &e) == nil {
				out = append(out, e.Entry)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("catalog list: %w", err)
	}
	slices.SortStableFunc(out, func(a, b Entry) int {
		if c := b.newest().Compare(a.newest()); c != 0 {
			return c
		}
		return strings.Compare(a.Key(), b.Key())
	})
	return out, nil
}

// Len returns the number of entries.
func (c *Catalog) Len() (int, error) {
	var n int
	err := c.db.View(func(tx *bolt.Tx) error {
		n = catalogBuckets(tx).entries.Stats().KeyN
		return nil
	})
	return n, err
}

// Remove deletes the entry that hash (v1 or v2, hex) names; ErrNotFound
// when there is none. A feed that still offers the torrent adds it again
// at its next fetch.
func (c *Catalog) Remove(hash string) error {
	hash = strings.ToLower(strings.TrimSpace(hash))
	return c.db.Update(func(tx *bolt.Tx) error {
		b := catalogBuckets(tx)
		k := b.resolve(hash)
		if k == "" {
			return fmt.Errorf("catalog remove %s: %w", hash, ErrNotFound)
		}
		e, ok := b.get(k)
		if !ok {
			return b.entries.Delete([]byte(k))
		}
		return b.delete(&e)
	})
}
