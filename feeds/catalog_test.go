package feeds_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/feeds"
)

func newCatalog(t *testing.T) *feeds.Catalog {
	t.Helper()
	c, err := feeds.NewCatalog(openDB(t).DB)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustPut(t *testing.T, c *feeds.Catalog, e feeds.Entry) (feeds.Entry, bool) {
	t.Helper()
	got, isNew, err := c.Put(e)
	if err != nil {
		t.Fatal(err)
	}
	return got, isNew
}

const (
	v1a = "6ae899361087e9175e5fbce838781a2ecc21b805"
	v2a = "e7d14d45575dea429b5c578d7c7176dc4db8202943da9bd4890069f4a6631e31"
)

var t0 = time.Date(2024, 2, 12, 10, 0, 0, 0, time.UTC)

func TestCatalog_PutMerges(t *testing.T) {
	c := newCatalog(t)
	first, isNew := mustPut(t, c, feeds.Entry{InfoHashV1: v1a, Name: "fedora", Feeds: []string{"a"}, FirstSeen: t0, LastSeen: t0, Seeders: intp(5)})
	if !isNew || first.Key() != v1a {
		t.Fatalf("first put: %+v new=%v", first, isNew)
	}
	later := t0.Add(time.Hour)
	got, isNew := mustPut(t, c, feeds.Entry{InfoHashV1: v1a, Name: "other name", Size: 123, Feeds: []string{"b"},
		FirstSeen: later, LastSeen: later, Seeders: intp(9), Trackers: [][]string{{"udp://t:1"}}})
	if isNew {
		t.Error("second put of the same hash is new")
	}
	if got.Name != "fedora" || got.Size != 123 || !slices.Equal(got.Feeds, []string{"a", "b"}) || !got.FirstSeen.Equal(t0) ||
		!got.LastSeen.Equal(later) || *got.Seeders != 9 || len(got.Trackers) != 1 {
		t.Errorf("merged %+v", got)
	}
	// A .torrent's name and size win over a feed's.
	got, _ = mustPut(t, c, feeds.Entry{InfoHashV1: v1a, Name: "Fedora-40.iso", Size: 456, Torrent: []byte("d...e")})
	if got.Name != "Fedora-40.iso" || got.Size != 456 || string(got.Torrent) != "d...e" {
		t.Errorf("after .torrent: %+v", got)
	}
	for _, bad := range []feeds.Entry{{}, {InfoHashV1: "xyz"}, {InfoHashV2: v1a}} {
		if _, _, err := c.Put(bad); err == nil {
			t.Errorf("Put(%+v) accepted", bad)
		}
	}
}

// Ensure that v1 and v2 sightings of one hybrid torrent are one entry, in
// whatever order they come, keyed by v1 with an index from v2.
func TestCatalog_DedupeV1V2(t *testing.T) {
	hybrid := feeds.Entry{InfoHashV1: v1a, InfoHashV2: v2a, Name: "hybrid", Feeds: []string{"torrent"}}
	v1only := feeds.Entry{InfoHashV1: v1a, Feeds: []string{"v1"}}
	v2only := feeds.Entry{InfoHashV2: v2a, Feeds: []string{"v2"}}
	for _, tc := range []struct {
		name  string
		order []feeds.Entry
		news  []bool
	}{
		{"v1, v2, hybrid", []feeds.Entry{v1only, v2only, hybrid}, []bool{true, true, false}},
		{"v2, hybrid, v1", []feeds.Entry{v2only, hybrid, v1only}, []bool{true, false, false}},
		{"hybrid, v2, v1", []feeds.Entry{hybrid, v2only, v1only}, []bool{true, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCatalog(t)
			for i, e := range tc.order {
				e.FirstSeen = t0.Add(time.Duration(i) * time.Minute)
				if _, isNew := mustPut(t, c, e); isNew != tc.news[i] {
					t.Errorf("put %d: new=%v, want %v", i, isNew, tc.news[i])
				}
			}
			list, err := c.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 {
				t.Fatalf("%d entries, want 1: %+v", len(list), list)
			}
			e := list[0]
			slices.Sort(e.Feeds)
			if e.Key() != v1a || e.InfoHashV2 != v2a || !slices.Equal(e.Feeds, []string{"torrent", "v1", "v2"}) || !e.FirstSeen.Equal(t0) {
				t.Errorf("entry %+v", e)
			}
			if g, ok, _ := c.Get(v2a); !ok || g.Key() != v1a {
				t.Errorf("Get(v2) = %+v, %v", g, ok)
			}
			if n, _ := c.Len(); n != 1 {
				t.Errorf("Len = %d", n)
			}
			if err := c.Remove(v2a); err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{v1a, v2a} {
				if _, ok, _ := c.Get(h); ok {
					t.Errorf("Get(%s) after Remove still finds it", h)
				}
			}
			if err := c.Remove(v1a); !errors.Is(err, feeds.ErrNotFound) {
				t.Errorf("second Remove: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestCatalog_ListNewestFirst(t *testing.T) {
	c := newCatalog(t)
	mustPut(t, c, feeds.Entry{InfoHashV1: hashA, Name: "old", Published: t0.Add(-48 * time.Hour), FirstSeen: t0})
	mustPut(t, c, feeds.Entry{InfoHashV1: hashB, Name: "unpublished", FirstSeen: t0.Add(-time.Hour)})
	mustPut(t, c, feeds.Entry{InfoHashV1: v1a, Name: "new", Published: t0, FirstSeen: t0})
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name)
	}
	if want := []string{"new", "unpublished", "old"}; !slices.Equal(names, want) {
		t.Errorf("List order %v, want %v", names, want)
	}
}

// Ensure that ListMeta lists what List does, in the same order, without
// the .torrent bytes, which Get still gives.
func TestCatalog_ListMeta(t *testing.T) {
	c := newCatalog(t)
	mustPut(t, c, feeds.Entry{InfoHashV1: hashA, Name: "a", FirstSeen: t0, Torrent: []byte("d4:infod...ee")})
	mustPut(t, c, feeds.Entry{InfoHashV1: hashB, Name: "b", FirstSeen: t0.Add(time.Hour), Magnet: "magnet:?xt=urn:btih:" + hashB})
	full, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := c.ListMeta()
	if err != nil {
		t.Fatal(err)
	}
	if len(meta) != len(full) {
		t.Fatalf("ListMeta %d entries, List %d", len(meta), len(full))
	}
	for i := range full {
		want := full[i]
		want.Torrent = nil
		if !reflect.DeepEqual(meta[i], want) {
			t.Errorf("entry %d: ListMeta %+v, want %+v", i, meta[i], want)
		}
	}
	if e, ok, err := c.Get(hashA); err != nil || !ok || string(e.Torrent) != "d4:infod...ee" {
		t.Errorf("Get(%s): torrent %q, %v, %v", hashA, e.Torrent, ok, err)
	}
}

// Ensure that what was committed is there after the database is closed
// and opened again.
func TestCatalog_SurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	db := openDBAt(t, dir)
	c, _ := feeds.NewCatalog(db.DB)
	st, _ := feeds.NewStore(db.DB)
	tt := makeTorrent(t, "persist", 20_000, true, "http://tracker.example/announce")
	e, err := feeds.ParseTorrent(tt.data)
	if err != nil {
		t.Fatal(err)
	}
	e.Feeds, e.FirstSeen, e.LastSeen, e.Seeders = []string{"f"}, t0, t0, intp(7)
	want, _ := mustPut(t, c, e)
	if err := st.PutState("f", feeds.FeedState{ETag: `"x"`, Failures: 2, NextRetry: t0}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db2 := openDBAt(t, dir)
	c2, _ := feeds.NewCatalog(db2.DB)
	st2, _ := feeds.NewStore(db2.DB)
	got, ok, err := c2.Get(tt.v2)
	if err != nil || !ok {
		t.Fatalf("Get after reopen: %v %v", ok, err)
	}
	if got.Key() != want.Key() || got.InfoHashV2 != want.InfoHashV2 || string(got.Torrent) != string(want.Torrent) ||
		!got.FirstSeen.Equal(want.FirstSeen) || *got.Seeders != 7 || got.Magnet != want.Magnet || len(got.Trackers) != 1 {
		t.Errorf("after reopen %+v\nwant %+v", got, want)
	}
	if s, err := st2.State("f"); err != nil || s.ETag != `"x"` || s.Failures != 2 || !s.NextRetry.Equal(t0) {
		t.Errorf("state after reopen %+v %v", s, err)
	}
}

// Ensure that a database not opened by store.Open is refused clearly.
func TestNewCatalog_NoBuckets(t *testing.T) {
	bdb, err := bolt.Open(filepath.Join(t.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if _, err := feeds.NewCatalog(bdb); !errors.Is(err, feeds.ErrNoBuckets) {
		t.Errorf("NewCatalog: %v", err)
	}
	if _, err := feeds.NewStore(bdb); !errors.Is(err, feeds.ErrNoBuckets) {
		t.Errorf("NewStore: %v", err)
	}
}
