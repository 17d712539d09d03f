package store

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func key(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

func openT(t testing.TB, dir string) *DB {
	t.Helper()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Ensure that a fresh database gets the current schema and mode 0600.
func TestOpenFresh(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db := openT(t, dir)
	v, err := db.Schema()
	if err != nil || v != SchemaVersion() {
		t.Fatalf("schema %d %v, want %d", v, err, SchemaVersion())
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, FileName): 0o600} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v (%v)", path, st.Mode().Perm(), want, err)
		}
	}
}

// Ensure that a second Open of the same dir fails fast with ErrLocked, naming the pid.
func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir)
	start := time.Now()
	_, err := Open(dir, Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("want ErrLocked, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v to fail", d)
	}
	if !strings.Contains(err.Error(), "pid") {
		t.Errorf("message %q does not name the pid", err)
	}
}

// Ensure that a newer schema is refused and an older one is migrated step by step.
func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var ran []int
	step := func(n int) Migration {
		return func(tx *bolt.Tx) error { ran = append(ran, n); return nil }
	}
	if err := migrateTo(bdb, []Migration{step(1)}); err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(bdb, []Migration{step(1), step(2), step(3)}); err != nil {
		t.Fatal(err)
	}
	if len(ran) != 3 || ran[0] != 1 || ran[1] != 2 || ran[2] != 3 {
		t.Errorf("ran %v, want [1 2 3]", ran)
	}
	fail := func(tx *bolt.Tx) error { return errors.New("boom") }
	if err := migrateTo(bdb, []Migration{step(1), step(2), step(3), fail}); err == nil {
		t.Error("failing migration must fail Open")
	}
	if err := migrateTo(bdb, []Migration{step(1)}); !errors.Is(err, ErrNewerSchema) {
		t.Errorf("want ErrNewerSchema, got %v", err)
	}
}

// Ensure that a process killed with SIGKILL while writing leaves a database
// the next Open accepts, with every committed write intact.
func TestKill9WhileWriting(t *testing.T) {
	if os.Getenv("BTSLAVE_STORE_WRITER") != "" {
		db, err := Open(os.Getenv("BTSLAVE_STORE_WRITER"), Options{})
		if err != nil {
			os.Exit(3)
		}
		for i := 0; ; i++ {
			db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("torrents")).Put(key(i), []byte{1}) })
			os.WriteFile(filepath.Join(db.Dir(), "committed"), []byte{byte(i), byte(i >> 8), byte(i >> 16)}, 0o600)
		}
	}
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9WhileWriting$")
		cmd.Env = append(os.Environ(), "BTSLAVE_STORE_WRITER="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(300+round*150) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		db, err := Open(dir, Options{LockTimeout: 2 * time.Second})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "committed"))
		n := 0
		if len(b) == 3 {
			n = int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		}
		for i := 0; i <= n; i += 1 + n/50 {
			var v []byte
			db.View(func(tx *bolt.Tx) error { v = tx.Bucket([]byte("torrents")).Get(key(i)); return nil })
			if len(v) != 1 {
				t.Errorf("round %d: committed record %d lost", round, i)
				break
			}
		}
		if err := db.View(func(tx *bolt.Tx) error {
			for err := range tx.Check() {
				return err
			}
			return nil
		}); err != nil {
			t.Errorf("round %d: consistency: %v", round, err)
		}
		db.Close()
	}
}

// Ensure that a fresh database has the embedded tracker's counter bucket.
func TestTrackerBucket(t *testing.T) {
	db := openT(t, t.TempDir())
	err := db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("tracker")); b == nil || b.Bucket([]byte("downloaded")) == nil {
			return errors.New("no tracker/downloaded bucket")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
