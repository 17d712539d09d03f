package cache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The file backend keeps one file per held piece, Dir/<n>.piece, where n
// counts up from 1 for each file created. Names carry no piece identity:
// the cache does not persist across restarts, and a file evicted to make
// room for a piece of the same length is reused as it is (creating files
// costs more than writing them).
const pieceFileExt = ".piece"

// createPieceFile creates the piece file with its full length (sparse).
func createPieceFile(path string, length int64) (*os.File, error) {
	var f *os.File
	var err error
	for range 3 {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
		// Dir was removed under us: create it again.
		if err = os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(length); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// fileOf returns h's open file, opening it if needed. Lock held and the
// caller holds a reference on h, so the file is not closed under it.
func (c *Cache) fileOf(h *held) (*os.File, error) {
	if h.f != nil {
		c.fds.moveFront(h)
		return h.f, nil
	}
	path := h.path
	c.unlock()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	c.mu.Lock()
	if err != nil {
		return nil, fmt.Errorf("%v: opening piece file: %w", h.p, err)
	}
	if h.f != nil {
		c.pending = append(c.pending, pendingOp{f: f})
		return h.f, nil
	}
	h.f = f
	c.fds.pushFront(h)
	c.trimFds()
	return f, nil
}

// readFull reads len(b) bytes at 0.
func readFull(f *os.File, b []byte) error {
	n, err := f.ReadAt(b, 0)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// removePieceFiles removes the piece files in dir: those named <n>.piece.
// Anything else is left alone.
func removePieceFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		num, ok := strings.CutSuffix(e.Name(), pieceFileExt)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		if _, err := strconv.ParseUint(num, 10, 64); err != nil {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
