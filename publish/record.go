package publish

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrVanished is returned by Record.Check when a published file is gone.
var ErrVanished = errors.New("published file is gone")

// Record is what the daemon keeps of one published torrent: where its data
// is and how the files looked when they were hashed, so that a restarted
// daemon can tell, without rehashing, whether they are still the same.
type Record struct {
	InfoHash   string       `json:"infohash"`              // v1 hex, else the v2 hash truncated to 20 bytes (anacrolix's key)
	InfoHashV2 string       `json:"infohash_v2,omitempty"` // 64 hex digits
	Name       string       `json:"name"`
	Version    string       `json:"version"`
	Size       int64        `json:"size"`
	Root       string       `json:"root"` // the published path, absolute
	Single     bool         `json:"single,omitempty"`
	Files      []RecordFile `json:"files"`
	Magnet     string       `json:"magnet"`
	Published  time.Time    `json:"published"`
}

// RecordFile is one file as it was hashed.
type RecordFile struct {
	Path    []string  `json:"path"`
	Abs     string    `json:"abs"`
	Length  int64     `json:"length"`
	ModTime time.Time `json:"mtime"`
	Inode   uint64    `json:"inode,omitempty"`
}

// NewRecord describes t, published at now.
func NewRecord(t *Torrent, now time.Time) Record {
	r := Record{InfoHash: t.InfoHashV1, InfoHashV2: t.InfoHashV2, Name: t.Name, Version: t.Version.String(),
		Size: t.Size, Root: t.Root, Single: t.Single, Magnet: t.Magnet, Published: now.UTC()}
	if r.InfoHash == "" {
		r.InfoHash = t.InfoHashV2[:40]
	}
	for _, f := range t.Files {
		r.Files = append(r.Files, RecordFile{Path: f.Path, Abs: f.Abs, Length: f.Length, ModTime: f.ModTime, Inode: f.Inode})
	}
	return r
}

// Check tells whether every file still has the size, modification time
// and inode it had when it was hashed. It reads no data: a file rewritten
// in place with its old size and time restored is not caught here, only
// by the everseed's check of each piece it serves.
func (r *Record) Check() error {
	for _, f := range r.Files {
		st, err := os.Stat(f.Abs)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", f.Abs, ErrVanished)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", f.Abs, err)
		}
		switch {
		case !st.Mode().IsRegular():
			return fmt.Errorf("%s: %w: no longer a regular file", f.Abs, ErrChanged)
		case st.Size() != f.Length:
			return fmt.Errorf("%s: %w: size %d, was %d", f.Abs, ErrChanged, st.Size(), f.Length)
		case !st.ModTime().Equal(f.ModTime):
			return fmt.Errorf("%s: %w: modified %s, was %s", f.Abs, ErrChanged, st.ModTime().UTC().Format(time.RFC3339Nano), f.ModTime.UTC().Format(time.RFC3339Nano))
		case f.Inode != 0 && inode(st) != f.Inode:
			return fmt.Errorf("%s: %w: replaced by another file (inode %d, was %d)", f.Abs, ErrChanged, inode(st), f.Inode)
		}
	}
	return nil
}

// DecodeRecord reads a record and checks that it is one this package
// could have written: hex infohashes, absolute clean paths, sane sizes.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("publish record: %w", err)
	}
	bad := func(format string, args ...any) (Record, error) {
		return Record{}, fmt.Errorf("publish record %.40q: "+format, append([]any{r.InfoHash}, args...)...)
	}
	if !isHex(r.InfoHash, 40) {
		return bad("infohash is not 40 hex digits")
	}
	if r.InfoHashV2 != "" && !isHex(r.InfoHashV2, 64) {
		return bad("v2 infohash is not 64 hex digits")
	}
	if _, err := ParseVersion(r.Version); err != nil {
		return bad("%v", err)
	}
	if len(r.Files) == 0 || r.Name == "" || !cleanAbs(r.Root) {
		return bad("no files, name or absolute root")
	}
	var size int64
	for _, f := range r.Files {
		if f.Length < 0 || len(f.Path) == 0 || !cleanAbs(f.Abs) {
			return bad("file %q: bad length or path", f.Abs)
		}
		if size += f.Length; size < 0 {
			return bad("size overflows")
		}
	}
	if size != r.Size {
		return bad("size %d, files add up to %d", r.Size, size)
	}
	return r, nil
}

func cleanAbs(p string) bool {
	return filepath.IsAbs(p) && filepath.Clean(p) == p && !strings.ContainsRune(p, 0)
}

func isHex(s string, n int) bool {
	if len(s) != n || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
