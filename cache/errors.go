package cache

import "errors"

// Errors returned by the cache. Match them with errors.Is: the cache wraps
// them with the torrent and piece they concern.
var (
	// ErrFull is returned by WriteAt when the piece's full length cannot be
	// reserved: every held byte belongs to a pinned piece, a piece with I/O
	// in flight or a partial piece that is still being written. It is also
	// returned by ReadAt of a compressed piece when no room is left to
	// decompress it. Install Torrent.SetOnWriteChunkError so that anacrolix
	// does not stop downloading; unpin pieces or raise the budget.
	ErrFull = errors.New("cache full")

	// ErrNotHeld is returned by ReadAt (and the WriterTo hash path) when the
	// piece has no data: it was never written, it was evicted, dropped, or
	// it is a partial piece whose earlier chunks were evicted. It is also
	// returned by MarkComplete of such a piece.
	ErrNotHeld = errors.New("piece not held")

	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("cache closed")

	// ErrPinLimit is returned by Pin when pinned bytes would exceed 3/4 of
	// the budget. Unpin other pieces first.
	ErrPinLimit = errors.New("pinned bytes would exceed 3/4 of the budget")

	// ErrUnknownTorrent is returned by Pin for a torrent that was never
	// opened (or was dropped after its last close) and for a piece index
	// outside the torrent.
	ErrUnknownTorrent = errors.New("unknown torrent or piece")
)
