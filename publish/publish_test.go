package publish_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/btslave/btslave/publish"
)

var versions = []publish.Version{publish.Hybrid, publish.V1, publish.V2}

// Ensure that every version of a directory with files smaller than,
// equal to and larger than a piece, an empty file and a subdirectory
// loads in anacrolix with the same infohashes and verified hashes.
func TestCreate_Anacrolix(t *testing.T) {
	dir := writeTree(t, 1, map[string]int{
		"a.bin": 40000, "b.txt": 100, "empty": 0, "sub/c.bin": 70000,
		"sub/exact": 32 << 10, "sub/deep/z": 200000, "tiny": 1,
	})
	for _, v := range versions {
		for _, pl := range []int64{16 << 10, 32 << 10, 64 << 10} {
			t.Run(v.String(), func(t *testing.T) {
				tr, err := publish.Create(context.Background(), dir, publish.Options{Version: v, PieceLength: pl, Workers: 3})
				if err != nil {
					t.Fatal(err)
				}
				if tr.Size != 40000+100+70000+32<<10+200000+1 || len(tr.Files) != 7 || tr.Single {
					t.Fatalf("size %d files %d single %v", tr.Size, len(tr.Files), tr.Single)
				}
				checkAnacrolix(t, tr)
			})
		}
	}
}

// Ensure that a single file makes a single-file torrent in every version.
func TestCreate_SingleFile(t *testing.T) {
	dir := writeTree(t, 2, map[string]int{"movie.mkv": 300001})
	for _, v := range versions {
		tr, err := publish.Create(context.Background(), filepath.Join(dir, "movie.mkv"), publish.Options{Version: v})
		if err != nil {
			t.Fatal(err)
		}
		if !tr.Single || tr.Name != "movie.mkv" || tr.PieceLength != 16<<10 {
			t.Fatalf("%v: single %v name %q piece length %d", v, tr.Single, tr.Name, tr.PieceLength)
		}
		checkAnacrolix(t, tr)
	}
	// A directory of one file is a directory torrent, padded.
	tr, err := publish.Create(context.Background(), dir, publish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Single || tr.Name != "data" {
		t.Fatalf("directory of one file: single %v name %q", tr.Single, tr.Name)
	}
	checkAnacrolix(t, tr)
}

// Ensure that the options reach the torrent and the magnet link.
func TestCreate_Options(t *testing.T) {
	dir := writeTree(t, 3, map[string]int{"x": 5000, "y/z": 7000})
	tr, err := publish.Create(context.Background(), dir, publish.Options{
		Name: "Release", Comment: "hello", Source: "btslave-test", Private: true,
		Trackers: [][]string{{"http://127.0.0.1:1/announce"}, {"udp://127.0.0.1:2"}},
		WebSeeds: []string{"http://127.0.0.1:3/files/"},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkAnacrolix(t, tr)
	s := string(tr.Bytes)
	for _, want := range []string{"7:comment5:hello", "6:source12:btslave-test", "7:privatei1e", "8:url-list", "13:announce-list", "4:name7:Release"} {
		if !strings.Contains(s, want) {
			t.Errorf("torrent lacks %q", want)
		}
	}
	for _, want := range []string{"xt=urn:btih:" + tr.InfoHashV1, "xt=urn:btmh:1220" + tr.InfoHashV2, "dn=Release", "tr=http"} {
		if !strings.Contains(tr.Magnet, want) {
			t.Errorf("magnet %s lacks %q", tr.Magnet, want)
		}
	}
	// Private and source change the infohash.
	plain, err := publish.Create(context.Background(), dir, publish.Options{Name: "Release"})
	if err != nil {
		t.Fatal(err)
	}
	if plain.InfoHashV1 == tr.InfoHashV1 || plain.InfoHashV2 == tr.InfoHashV2 {
		t.Error("private and source did not change the infohashes")
	}
}

// Ensure that a cancelled context stops hashing with its error.
func TestCreate_Cancel(t *testing.T) {
	dir := writeTree(t, 4, map[string]int{"big": 4 << 20})
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	_, err := publish.Create(ctx, dir, publish.Options{PieceLength: 16 << 10, Workers: 2, Progress: func(int64, int64) {
		if calls.Add(1) == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := calls.Load(); n > 64 {
		t.Errorf("%d pieces hashed after the cancel", n)
	}
}

// Ensure that a file that grows or shrinks while it is hashed fails the
// run with ErrChanged.
func TestCreate_FileChanges(t *testing.T) {
	for _, change := range []string{"shrink", "grow"} {
		t.Run(change, func(t *testing.T) {
			dir := writeTree(t, 5, map[string]int{"a": 64 << 10, "b": 64 << 10})
			var once atomic.Bool
			_, err := publish.Create(context.Background(), dir, publish.Options{PieceLength: 16 << 10, Workers: 1, Progress: func(int64, int64) {
				if once.CompareAndSwap(false, true) {
					p := filepath.Join(dir, "b")
					if change == "shrink" {
						if err := os.Truncate(p, 10); err != nil {
							t.Error(err)
						}
					} else if err := os.WriteFile(p, make([]byte, 80<<10), 0o644); err != nil {
						t.Error(err)
					}
				}
			}})
			if !errors.Is(err, publish.ErrChanged) {
				t.Fatalf("err = %v, want ErrChanged", err)
			}
		})
	}
}

// Ensure that empty input is refused and bad piece lengths are usage
// errors.
func TestCreate_Refused(t *testing.T) {
	dir := writeTree(t, 6, map[string]int{"empty": 0})
	if _, err := publish.Create(context.Background(), dir, publish.Options{}); !errors.Is(err, publish.ErrEmpty) {
		t.Errorf("empty dir: err = %v", err)
	}
	dir = writeTree(t, 6, map[string]int{"x": 10})
	for _, pl := range []int64{1000, 8 << 10, 32 << 20} {
		if _, err := publish.Create(context.Background(), dir, publish.Options{PieceLength: pl}); err == nil {
			t.Errorf("piece length %d accepted", pl)
		}
	}
}

func TestPieceLength(t *testing.T) {
	for _, c := range []struct{ total, want int64 }{
		{1, 16 << 10}, {100 << 20, 128 << 10}, {2 << 30, 2 << 20}, {1 << 40, 16 << 20},
	} {
		if got := publish.PieceLength(c.total); got != c.want {
			t.Errorf("PieceLength(%d) = %d, want %d", c.total, got, c.want)
		}
	}
}

// Ensure that WriteFile replaces the file whole and leaves no temporary.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.torrent")
	for _, data := range []string{"first", "second"} {
		if err := publish.WriteFile(p, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != data {
			t.Fatalf("read %q, want %q", b, data)
		}
	}
	if err := publish.WriteFile(filepath.Join(dir, "nodir", "x"), []byte("x")); err == nil {
		t.Error("write into a missing dir succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("dir holds %d entries, want 1", len(ents))
	}
}
