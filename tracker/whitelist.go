package tracker

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// maxWhitelistBytes bounds the whitelist file (about 1.5 million hashes).
const maxWhitelistBytes = 64 << 20

// whitelist is the set of info-hashes a tracker in whitelist mode serves,
// read from a file and read again whenever its size, modification time or
// inode changes.
type whitelist struct {
	path string
	log  *slog.Logger
	set  atomic.Pointer[map[metainfo.Hash]struct{}]
	seen fileStamp // guarded by the caller of reloadIfChanged (one goroutine)
}

// fileStamp tells one version of a file from another.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(fi os.FileInfo) fileStamp {
	return fileStamp{size: fi.Size(), mtime: fi.ModTime(), ino: inode(fi)}
}

// loadWhitelist reads path; a missing or malformed file is an error.
func loadWhitelist(path string, log *slog.Logger) (*whitelist, error) {
	w := &whitelist{path: path, log: log}
	if err := w.load(); err != nil {
		return nil, err
	}
	return w, nil
}

// has reports whether ih is listed.
func (w *whitelist) has(ih metainfo.Hash) bool {
	_, ok := (*w.set.Load())[ih]
	return ok
}

// len is the number of hashes listed.
func (w *whitelist) len() int { return len(*w.set.Load()) }

// reloadIfChanged reads the file again if it changed; on an error the
// old list stays and the error is logged.
func (w *whitelist) reloadIfChanged() {
	fi, err := os.Stat(w.path)
	if err != nil {
		w.log.Warn("whitelist: keeping the old list", "path", w.path, "err", err)
		return
	}
	if stampOf(fi) == w.seen {
		return
	}
	before := w.len()
	if err := w.load(); err != nil {
		w.log.Warn("whitelist: keeping the old list", "err", err)
		return
	}
	w.log.Info("whitelist reloaded", "path", w.path, "hashes", w.len(), "before", before)
}

func (w *whitelist) load() error {
	f, err := os.Open(w.path)
	if err != nil {
		return fmt.Errorf("whitelist: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("whitelist: %w", err)
	}
	if fi.Size() > maxWhitelistBytes {
		return fmt.Errorf("whitelist %s: %d bytes, more than the %d accepted", w.path, fi.Size(), maxWhitelistBytes)
	}
	set, err := parseWhitelist(bufio.NewScanner(f), w.path)
	if err != nil {
		return err
	}
	w.set.Store(&set)
	w.seen = stampOf(fi)
	return nil
}

// parseWhitelist reads one 40-digit hex info-hash per line; blank lines
// and lines starting with "#" are skipped, and anything after the hash on
// its line (a name) too.
func parseWhitelist(sc *bufio.Scanner, name string) (map[metainfo.Hash]struct{}, error) {
	set := map[metainfo.Hash]struct{}{}
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		if f := bytes.Fields(b); len(f) > 0 {
			b = f[0]
		}
		var ih metainfo.Hash
		if len(b) != 40 {
			return nil, fmt.Errorf("whitelist %s:%d: %q is not a 40-digit hex info-hash", name, line, b)
		}
		if _, err := hex.Decode(ih[:], b); err != nil {
			return nil, fmt.Errorf("whitelist %s:%d: %q is not a 40-digit hex info-hash", name, line, b)
		}
		set[ih] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("whitelist %s: %w", name, err)
	}
	return set, nil
}
