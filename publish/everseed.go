package publish

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	g "github.com/anacrolix/generics"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// ErrReadOnly is returned by an everseed's storage for every write.
var ErrReadOnly = errors.New("everseed storage is read-only")

// ErrBadPiece is returned when a piece read from the owner's files does
// not match its hash.
var ErrBadPiece = errors.New("published data does not match the torrent")

// Everseed is the anacrolix storage of one published torrent: the owner's
// files in place, read-only, every piece complete from the start (no
// rehash at start-up: Record.Check vouches for the files), and each
// piece's SHA-1 checked the first time it is read, before any of it is
// served. A piece that does not match fails the whole torrent: Failed
// says why, every later read fails, and OnBad is called once so that the
// owner of the client can drop the torrent. v2-only torrents have no
// SHA-1 to check with and are served on Record.Check alone.
type Everseed struct {
	rec     Record
	onBad   func(error)
	inner   storage.ClientImplCloser
	byPath  map[string]string
	scratch string

	failed   atomic.Pointer[error]
	badOnce  sync.Once
	verified sync.Map // piece index -> struct{}
}

// NewEverseed makes the storage for rec. scratch is a directory the file
// storage may create empty files in (it truncates zero-length files,
// which would change the owner's file times). onBad may be nil.
func NewEverseed(rec Record, scratch string, onBad func(error)) *Everseed {
	e := &Everseed{rec: rec, onBad: onBad, byPath: map[string]string{}, scratch: scratch}
	for _, f := range rec.Files {
		if f.Length == 0 {
			continue
		}
		e.byPath[strings.Join(f.Path, "/")] = f.Abs
	}
	e.inner = storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir:   "/",
		TorrentDirMaker: func(string, *metainfo.Info, metainfo.Hash) string { return "/" },
		FilePathMaker:   e.filePath,
		PieceCompletion: storage.NewMapPieceCompletion(),
		UsePartFiles:    g.Some(false),
	})
	return e
}

// filePath maps a file of the torrent to the owner's file.
func (e *Everseed) filePath(o storage.FilePathMakerOpts) string {
	if o.File.Length == 0 {
		return filepath.Join(e.scratch, "empty")
	}
	if e.rec.Single {
		return e.rec.Files[0].Abs
	}
	if abs, ok := e.byPath[strings.Join(o.File.BestPath(), "/")]; ok {
		return abs
	}
	// Not a file of the record: a path nothing reads from.
	return filepath.Join(e.scratch, "unknown")
}

// Failed is why the torrent stopped being served, nil while it is.
func (e *Everseed) Failed() error {
	if p := e.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Fail stops serving the torrent: every later read fails with err.
func (e *Everseed) Fail(err error) {
	e.failed.CompareAndSwap(nil, &err)
	e.badOnce.Do(func() {
		if e.onBad != nil {
			go e.onBad(e.Failed())
		}
	})
}

// Close closes the file storage.
func (e *Everseed) Close() error { return e.inner.Close() }

// OpenTorrent implements storage.ClientImpl.
func (e *Everseed) OpenTorrent(ctx context.Context, info *metainfo.Info, ih metainfo.Hash) (storage.TorrentImpl, error) {
	if err := e.Failed(); err != nil {
		return storage.TorrentImpl{}, err
	}
	ti, err := e.inner.OpenTorrent(ctx, info, ih)
	if err != nil {
		return ti, fmt.Errorf("everseed %s: %w", e.rec.Name, err)
	}
	inner := ti.Piece
	ti.Piece = func(p metainfo.Piece) storage.PieceImpl {
		return &everseedPiece{PieceImpl: inner(p), e: e, p: p}
	}
	ti.PieceWithHash = nil
	ti.NewReader, ti.NewPieceReader = nil, nil // every read goes through everseedPiece
	return ti, nil
}

type everseedPiece struct {
	storage.PieceImpl
	e *Everseed
	p metainfo.Piece
}

func (p *everseedPiece) ReadAt(b []byte, off int64) (int, error) {
	if err := p.e.Failed(); err != nil {
		return 0, err
	}
	if err := p.verify(); err != nil {
		return 0, err
	}
	return p.PieceImpl.ReadAt(b, off)
}

// verify checks the piece's SHA-1 once.
func (p *everseedPiece) verify() error {
	i := p.p.Index()
	if _, ok := p.e.verified.Load(i); ok {
		return nil
	}
	want := p.p.V1Hash()
	if !want.Ok {
		p.e.verified.Store(i, struct{}{})
		return nil
	}
	// In a hybrid, anacrolix's pieces are v2's, cut at each file's end;
	// the v1 hash covers the padding (zeros) up to the piece length, but
	// for a single file, which has none.
	n := p.p.Length()
	buf := make([]byte, n)
	if p.p.Info.HasV2() && !p.e.rec.Single {
		buf = make([]byte, p.p.Info.PieceLength)
	}
	got, err := p.PieceImpl.ReadAt(buf[:n], 0)
	if int64(got) == n {
		err = nil
	}
	if err == nil {
		if sum := sha1.Sum(buf); !bytes.Equal(sum[:], want.Value[:]) {
			err = fmt.Errorf("piece %d: %w (a file changed after it was published)", i, ErrBadPiece)
		}
	} else {
		err = fmt.Errorf("piece %d: %w: %w", i, ErrBadPiece, err)
	}
	if err != nil {
		p.e.Fail(err)
		return err
	}
	p.e.verified.Store(i, struct{}{})
	return nil
}

func (p *everseedPiece) WriteAt([]byte, int64) (int, error) { return 0, ErrReadOnly }
func (p *everseedPiece) MarkComplete() error                { return nil }
func (p *everseedPiece) MarkNotComplete() error {
	p.e.Fail(fmt.Errorf("piece %d: %w (the client's own check)", p.p.Index(), ErrBadPiece))
	return nil
}

// Completion implements storage.PieceImpl: every piece is complete until
// the torrent fails.
func (p *everseedPiece) Completion() storage.Completion {
	if err := p.e.Failed(); err != nil {
		return storage.Completion{Ok: true, Complete: false}
	}
	return storage.Completion{Ok: true, Complete: true}
}

// Verified is how many pieces have been checked so far.
func (e *Everseed) Verified() (n int) {
	e.verified.Range(func(any, any) bool { n++; return true })
	return n
}
