package publish_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	g "github.com/anacrolix/generics"
	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/publish"
)

func testClient(t *testing.T, st storage.ClientImpl) *torrent.Client {
	t.Helper()
	cc := torrent.NewDefaultClientConfig()
	cc.ListenHost = func(string) string { return "127.0.0.1" }
	cc.ListenPort = 0
	cc.DisableIPv6, cc.NoDHT, cc.DisableUTP, cc.DisablePEX, cc.NoDefaultPortForwarding = true, true, true, true, true
	cc.Seed = true
	cc.DataDir = t.TempDir()
	cc.DefaultStorage = st
	cc.Logger = cc.Logger.WithFilterLevel(alog.Disabled)
	c, err := torrent.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// seedAndFetch seeds tr from the everseed e and has a fresh client fetch
// it into a temp dir within timeout; it returns the fetched dir or the
// error.
func seedAndFetch(t *testing.T, tr *publish.Torrent, e *publish.Everseed, timeout time.Duration) (string, error) {
	t.Helper()
	mi, err := metainfo.Load(bytes.NewReader(tr.Bytes))
	if err != nil {
		t.Fatal(err)
	}
	seeder := testClient(t, e)
	spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := seeder.AddTorrentSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	<-st.GotInfo()
	if n := st.Stats().PiecesComplete; n != st.NumPieces() {
		t.Fatalf("everseed holds %d of %d pieces at start", n, st.NumPieces())
	}
	out := t.TempDir()
	leecher := testClient(t, storage.NewFileOpts(storage.NewFileClientOpts{ClientBaseDir: out, UsePartFiles: publishNoPartFiles}))
	spec2, _ := torrent.TorrentSpecFromMetaInfoErr(mi)
	lt, _, err := leecher.AddTorrentSpec(spec2)
	if err != nil {
		t.Fatal(err)
	}
	lt.AddClientPeer(seeder)
	<-lt.GotInfo()
	lt.DownloadAll()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !lt.Complete().Bool() {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out, nil
}

// Ensure that an everseed serves the owner's files in place without
// rehashing at start, that every fetched file matches, and that it never
// writes to them.
func TestEverseed_Serves(t *testing.T) {
	for _, v := range []publish.Version{publish.Hybrid, publish.V1} {
		t.Run(v.String(), func(t *testing.T) {
			dir := writeTree(t, 20, map[string]int{"a": 100000, "b/c": 300000, "empty": 0, "d": 1})
			tr, err := publish.Create(context.Background(), dir, publish.Options{Version: v, PieceLength: 32 << 10})
			if err != nil {
				t.Fatal(err)
			}
			rec := publish.NewRecord(tr, time.Now())
			e := publish.NewEverseed(rec, t.TempDir(), nil)
			defer e.Close()
			out, err := seedAndFetch(t, tr, e, 30*time.Second)
			if err != nil {
				t.Fatalf("fetch: %v (everseed failed: %v)", err, e.Failed())
			}
			for _, f := range tr.Files {
				want, _ := os.ReadFile(f.Abs)
				got, err := os.ReadFile(filepath.Join(append([]string{out, tr.Name}, f.Path...)...))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%v: fetched file differs (%v)", f.Path, err)
				}
			}
			if err := rec.Check(); err != nil {
				t.Errorf("serving changed the owner's files: %v", err)
			}
			if e.Verified() == 0 {
				t.Error("no piece was verified on read")
			}
		})
	}
}

// Ensure that a file rewritten in place after publishing, with its size
// and time restored (so that Record.Check cannot tell), is caught by the
// check on read: the everseed fails, says why, and serves none of it.
func TestEverseed_CatchesModifiedFile(t *testing.T) {
	dir := writeTree(t, 21, map[string]int{"a": 200000})
	tr, err := publish.Create(context.Background(), dir, publish.Options{PieceLength: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	rec := publish.NewRecord(tr, time.Now())
	p := filepath.Join(dir, "a")
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte("tampered"), 100)
	f.Close()
	os.Chtimes(p, rec.Files[0].ModTime, rec.Files[0].ModTime)
	if err := rec.Check(); err != nil {
		t.Fatalf("Check sees the in-place edit (%v): the test needs one it cannot see", err)
	}
	bad := make(chan error, 1)
	e := publish.NewEverseed(rec, t.TempDir(), func(err error) { bad <- err })
	defer e.Close()
	if _, err := seedAndFetch(t, tr, e, 3*time.Second); err == nil {
		t.Fatal("the leecher completed from a tampered file")
	}
	select {
	case err := <-bad:
		if !errors.Is(err, publish.ErrBadPiece) {
			t.Errorf("OnBad: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnBad was not called")
	}
}

var publishNoPartFiles = g.Some(false)
