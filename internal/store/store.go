// Package store owns btslave's one bbolt database: it opens the file once
// with an exclusive lock, keeps its schema version and runs migrations.
//
// Every other package gets the *DB from the daemon and keeps its data in
// buckets of its own; none opens a second database.
//
// # Crash safety
//
// bbolt commits are atomic and fsynced, so a kill -9 at any moment leaves a
// file the next Open accepts. The lock is an flock held by the process; the
// kernel drops it when the process dies, so there are no stale locks.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the database's name inside the data dir.
const FileName = "btslave.db"

// SchemaVersion returns the schema this build writes.
func SchemaVersion() int { return len(migrations) }

var (
	// ErrLocked is returned by Open when another process holds the data dir.
	ErrLocked = errors.New("data dir is in use by another btslave")
	// ErrNewerSchema is returned by Open when the database was written by a
	// newer btslave.
	ErrNewerSchema = errors.New("database was written by a newer btslave")
)

var (
	bucketMeta = []byte("meta")
	keySchema  = []byte("schema")
)

// Migration moves the database from one schema version to the next. It runs
// in the same transaction that records the new version.
type Migration func(tx *bolt.Tx) error

// migrations[i] takes the schema from version i to i+1. Append only; never
// edit a migration that has shipped.
var migrations = []Migration{
	// 0 → 1: the first layout.
	func(tx *bolt.Tx) error {
		// "completion" held anacrolix piece completion for file storage;
		// the cache keeps none now, but a shipped migration stays as it was.
		for _, b := range [][]byte{bucketMeta, []byte("completion"), []byte("torrents")} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 1 → 2: visits, one record per stay in a swarm.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte("visits"))
		return err
	},
	// 2 → 3: the feeds catalog ("catalog": "entries" by info hash, "alias"
	// from v2 to v1 hash) and the feeds ("feeds": "added" at run time,
	// per-feed fetch "state").
	func(tx *bolt.Tx) error {
		for _, p := range [][2]string{{"catalog", "entries"}, {"catalog", "alias"}, {"feeds", "added"}, {"feeds", "state"}} {
			b, err := tx.CreateBucketIfNotExists([]byte(p[0]))
			if err != nil {
				return err
			}
			if _, err := b.CreateBucketIfNotExists([]byte(p[1])); err != nil {
				return err
			}
		}
		return nil
	},
	// 3 → 4: the embedded tracker's downloaded counters ("tracker":
	// "downloaded" by info hash), so that a restart loses no completed
	// count.
	func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("tracker"))
		if err != nil {
			return err
		}
		_, err = b.CreateBucketIfNotExists([]byte("downloaded"))
		return err
	},
}

// DB is the daemon's database.
type DB struct {
	*bolt.DB
	dir string
}

// Options tunes Open.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the
	// data dir before it gives up with ErrLocked. Default 500ms.
	LockTimeout time.Duration
}

// Open creates the data dir if needed (mode 0700), takes its lock, and
// brings the schema up to date.
func Open(dir string, opts Options) (*DB, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 500 * time.Millisecond
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		who := ""
		if pid := readPID(dir); pid > 0 {
			who = fmt.Sprintf(" (pid %d)", pid)
		}
		return nil, fmt.Errorf("%s%s: %w; stop it first, or give this one another --data-dir", dir, who, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db := &DB{DB: bdb, dir: dir}
	if err := db.migrate(); err != nil {
		bdb.Close()
		return nil, err
	}
	// The pid file only makes the "in use" message name the other process;
	// the lock itself is bbolt's flock.
	_ = os.WriteFile(filepath.Join(dir, "btslave.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return db, nil
}

// Dir is the data dir.
func (db *DB) Dir() string { return db.dir }

// Close releases the database and its lock.
func (db *DB) Close() error {
	_ = os.Remove(filepath.Join(db.dir, "btslave.pid"))
	return db.DB.Close()
}

// Schema returns the schema version recorded in the database.
func (db *DB) Schema() (int, error) {
	var v int
	err := db.View(func(tx *bolt.Tx) error {
		v = schemaOf(tx)
		return nil
	})
	return v, err
}

func schemaOf(tx *bolt.Tx) int {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	raw := b.Get(keySchema)
	if len(raw) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(raw))
}

func (db *DB) migrate() error {
	return migrateTo(db.DB, migrations)
}

// migrateTo runs the migrations the database lacks, one transaction each, so
// a crash between them resumes where it stopped.
func migrateTo(bdb *bolt.DB, ms []Migration) error {
	var have int
	if err := bdb.View(func(tx *bolt.Tx) error { have = schemaOf(tx); return nil }); err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	if have > len(ms) {
		return fmt.Errorf("%s has schema %d, this btslave knows %d: %w; upgrade btslave", bdb.Path(), have, len(ms), ErrNewerSchema)
	}
	for v := have; v < len(ms); v++ {
		err := bdb.Update(func(tx *bolt.Tx) error {
			if err := ms[v](tx); err != nil {
				return err
			}
			meta, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			var buf [8]byte
			binary.BigEndian.PutUint64(buf[:], uint64(v+1))
			return meta.Put(keySchema, buf[:])
		})
		if err != nil {
			return fmt.Errorf("migrate schema %d→%d: %w", v, v+1, err)
		}
	}
	return nil
}

func readPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "btslave.pid"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
