package publish

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// ErrNotPublished is returned for an infohash the registry does not hold.
var ErrNotPublished = errors.New("not published")

// Registry keeps the published torrents in a directory: for each, the
// .torrent as <infohash>.torrent and its Record as <infohash>.json, both
// written atomically (the record last, so a record always has its
// torrent).
type Registry struct {
	dir string
	mu  sync.Mutex
	rec map[string]Record // by InfoHash and by InfoHashV2
}

// OpenRegistry loads the registry in dir, creating dir. A record that
// does not decode is logged and skipped, not fatal.
func OpenRegistry(dir string, log *slog.Logger) (*Registry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	r := &Registry{dir: dir, rec: map[string]Record{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil {
			var rec Record
			if rec, err = DecodeRecord(b); err == nil {
				if _, err = os.Stat(r.torrentPath(rec.InfoHash)); err == nil {
					r.put(rec)
					continue
				}
			}
		}
		if log != nil {
			log.Warn("published torrent skipped", "file", e.Name(), "err", err)
		}
	}
	return r, nil
}

func (r *Registry) put(rec Record) {
	r.rec[rec.InfoHash] = rec
	if rec.InfoHashV2 != "" {
		r.rec[rec.InfoHashV2] = rec
	}
}

func (r *Registry) torrentPath(ih string) string { return filepath.Join(r.dir, ih+".torrent") }

// Add records t as published.
func (r *Registry) Add(t *Torrent, rec Record) error {
	if err := WriteFile(r.torrentPath(rec.InfoHash), t.Bytes); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err := WriteFile(filepath.Join(r.dir, rec.InfoHash+".json"), b); err != nil {
		return err
	}
	r.mu.Lock()
	r.put(rec)
	r.mu.Unlock()
	return nil
}

// Remove forgets a published torrent (by either infohash) and returns its
// record.
func (r *Registry) Remove(ih string) (Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.rec[strings.ToLower(ih)]
	if !ok {
		return rec, fmt.Errorf("%s: %w", ih, ErrNotPublished)
	}
	if err := os.Remove(filepath.Join(r.dir, rec.InfoHash+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return rec, fmt.Errorf("publish: %w", err)
	}
	os.Remove(r.torrentPath(rec.InfoHash))
	delete(r.rec, rec.InfoHash)
	delete(r.rec, rec.InfoHashV2)
	return rec, nil
}

// Get returns the record of ih (either infohash, hex).
func (r *Registry) Get(ih string) (Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.rec[strings.ToLower(ih)]
	return rec, ok
}

// TorrentFile returns the .torrent of ih.
func (r *Registry) TorrentFile(ih string) ([]byte, error) {
	rec, ok := r.Get(ih)
	if !ok {
		return nil, fmt.Errorf("%s: %w", ih, ErrNotPublished)
	}
	b, err := os.ReadFile(r.torrentPath(rec.InfoHash))
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	return b, nil
}

// List returns the records, newest first.
func (r *Registry) List() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Record
	for k, rec := range r.rec {
		if k == rec.InfoHash {
			out = append(out, rec)
		}
	}
	slices.SortFunc(out, func(a, b Record) int {
		return cmp.Or(b.Published.Compare(a.Published), strings.Compare(a.InfoHash, b.InfoHash))
	})
	return out
}
