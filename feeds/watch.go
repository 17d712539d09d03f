package feeds

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// scanDir lists a watch folder: each *.torrent file is an item, and each
// *.magnet file holds magnet links (or .torrent URLs, or info hashes), one
// per line as in a list. Hidden files and subdirectories are skipped.
// Nothing in the folder is ever modified or deleted.
func scanDir(dir string, maxText int64) ([]Item, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("watch folder: %w", err)
	}
	var items []Item
	for _, de := range ents {
		name := de.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if strings.HasPrefix(name, ".") || (ext != ".torrent" && ext != ".magnet") {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows symlinks
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		switch ext {
		case ".torrent":
			items = append(items, Item{
				Torrent:   path,
				local:     true,
				Published: fi.ModTime().UTC(),
				seenKey:   "file:" + path + "|" + strconv.FormatInt(fi.Size(), 10) + "|" + strconv.FormatInt(fi.ModTime().UnixNano(), 10),
			})
		case ".magnet":
			data, err := readCapped(path, maxText, "magnet file")
			if err != nil {
				items = append(items, Item{Torrent: path, Err: err})
				continue
			}
			list, err := ParseList(data)
			if err != nil {
				items = append(items, Item{Torrent: path, Err: fmt.Errorf("%s: %w", path, err)})
				continue
			}
			for _, it := range list {
				if it.Err != nil {
					it.Err = fmt.Errorf("%s: %w", path, it.Err)
				}
				it.Published = fi.ModTime().UTC()
				if it.Torrent != "" {
					it.seenKey = it.Torrent
				}
				items = append(items, it)
			}
		}
	}
	slices.SortStableFunc(items, func(a, b Item) int { return strings.Compare(a.Torrent, b.Torrent) })
	return items, nil
}

// readCapped reads a file of at most limit bytes.
func readCapped(path string, limit int64, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %s over %s cap: %w", path, what, fmtSize(limit), ErrTooLarge)
	}
	return data, nil
}
