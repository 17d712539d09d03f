package publish

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// fileSet is the files being hashed, each opened once and shared by the
// workers (ReadAt is safe for concurrent use), so that the kernel sees
// one sequential reader per file and reads ahead for it. A file is
// closed once every piece that touches it is hashed, so a directory of
// many files does not hold them all open.
type fileSet struct {
	files []File
	mu    sync.Mutex
	open  []*os.File
	gone  []bool         // closed for good
	left  []atomic.Int32 // pieces touching the file not yet hashed
}

func newFileSet(files []File, pieceLength int64) *fileSet {
	s := &fileSet{files: files, open: make([]*os.File, len(files)), gone: make([]bool, len(files)),
		left: make([]atomic.Int32, len(files))}
	for i, f := range files {
		if f.Length > 0 {
			first := f.Offset / pieceLength
			last := (f.Offset + f.Length - 1) / pieceLength
			s.left[i].Store(int32(last - first + 1))
		}
	}
	return s
}

// get returns file i, opening it on first use.
func (s *fileSet) get(i int) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.open[i]; f != nil {
		return f, nil
	}
	if s.gone[i] {
		return nil, fmt.Errorf("publish: %s: read after its last piece", s.files[i].Abs)
	}
	f, err := os.Open(s.files[i].Abs)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	adviseSequential(f)
	s.open[i] = f
	return f, nil
}

// done records that one piece touching file i is hashed.
func (s *fileSet) done(i int) {
	if s.left[i].Add(-1) != 0 {
		return
	}
	s.mu.Lock()
	if f := s.open[i]; f != nil {
		f.Close()
		s.open[i] = nil
	}
	s.gone[i] = true
	s.mu.Unlock()
}

// prefetch asks the kernel to read n bytes of file i at off ahead of the
// workers; errors are left to the read that follows.
func (s *fileSet) prefetch(i int, off, n int64) {
	if f, err := s.get(i); err == nil {
		adviseWillNeed(f, off, n)
	}
}

// closeAll closes what is still open (after an error or a cancel).
func (s *fileSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.open {
		if f != nil {
			f.Close()
			s.open[i] = nil
		}
		s.gone[i] = true
	}
}
