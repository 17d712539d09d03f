package publish

import (
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the kind of torrent made.
type Version int

// Versions. Hybrid is the default: v1 clients (Transmission) and v2 clients
// both read it.
const (
	Hybrid Version = iota
	V1
	V2
)

func (v Version) String() string {
	switch v {
	case V1:
		return "v1"
	case V2:
		return "v2"
	default:
		return "hybrid"
	}
}

// ParseVersion reads "v1", "v2" or "hybrid".
func ParseVersion(s string) (Version, error) {
	switch s {
	case "", "hybrid":
		return Hybrid, nil
	case "v1", "1":
		return V1, nil
	case "v2", "2":
		return V2, nil
	}
	return 0, fmt.Errorf("torrent version %q: want v1, v2 or hybrid", s)
}

// Piece length limits. v2 needs at least one 16 KiB leaf per piece.
const (
	BlockSize      = 16 << 10
	MinPieceLength = BlockSize
	MaxPieceLength = 16 << 20
	// targetPieces is about how many pieces PieceLength aims for.
	targetPieces = 1500
)

// File is one file of the torrent.
type File struct {
	Path    []string  // within the torrent; for a single-file torrent the name
	Abs     string    // on disk
	Length  int64     // bytes
	Offset  int64     // in the v1 byte stream (aligned for v2 and hybrid)
	ModTime time.Time // when hashed
	Inode   uint64    // 0 where the system has none
}

// ErrEmpty is returned by Create when the path holds no byte to publish.
var ErrEmpty = errors.New("nothing to publish: no file with data")

// PieceLength picks a piece length for total bytes: a power of two from
// 16 KiB to 16 MiB that gives about 1500 pieces.
func PieceLength(total int64) int64 {
	if total <= 0 {
		return MinPieceLength
	}
	want := uint64(total+targetPieces-1) / targetPieces
	l := int64(1) << bits.Len64(want-1)
	return min(max(l, MinPieceLength), MaxPieceLength)
}

// validPieceLength reports whether l is a power of two in the limits.
func validPieceLength(l int64) bool {
	return l >= MinPieceLength && l <= MaxPieceLength && l&(l-1) == 0
}

// scan lists the regular files under root (root itself if it is a file),
// sorted by path components. Symlinks and special files are skipped and
// returned by name.
func scan(root string) (files []File, single bool, skipped []string, err error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, false, nil, fmt.Errorf("publish: %w", err)
	}
	if st.Mode().IsRegular() {
		f, err := fileOf(root, st)
		if err != nil {
			return nil, false, nil, err
		}
		f.Path = []string{filepath.Base(root)}
		return []File{f}, true, nil, nil
	}
	if !st.IsDir() {
		return nil, false, nil, fmt.Errorf("publish: %s: not a file or directory", root)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			skipped = append(skipped, rel)
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		f, err := fileOf(path, st)
		if err != nil {
			return err
		}
		f.Path = strings.Split(filepath.ToSlash(rel), "/")
		for _, c := range f.Path {
			if !utf8.ValidString(c) {
				return fmt.Errorf("publish: %s: file name is not UTF-8", rel)
			}
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, false, nil, fmt.Errorf("publish: %w", err)
	}
	slices.SortFunc(files, func(a, b File) int { return slices.Compare(a.Path, b.Path) })
	return files, false, skipped, nil
}

func fileOf(path string, st fs.FileInfo) (File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return File{}, fmt.Errorf("publish: %w", err)
	}
	return File{Abs: abs, Length: st.Size(), ModTime: st.ModTime(), Inode: inode(st)}, nil
}

// layout sets each file's Offset in the v1 stream and returns the stream's
// length: files back to back for v1, each on a piece boundary otherwise.
// A single-file torrent is never padded.
func layout(files []File, pieceLength int64, v Version, single bool) int64 {
	if single {
		return files[0].Length
	}
	var off int64
	for i := range files {
		files[i].Offset = off
		off += files[i].Length
		if v != V1 {
			off = alignUp(off, pieceLength)
		}
	}
	return off
}

func alignUp(n, to int64) int64 { return (n + to - 1) / to * to }
