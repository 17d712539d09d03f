package cache

import "github.com/anacrolix/torrent/metainfo"

// Stats is a snapshot of the cache.
type Stats struct {
	Budget int64
	// Held is every byte counted against Budget: Stored + Free + Scratch.
	Held int64
	// Stored is piece data: memory buffers or files, at their compressed
	// size for compressed pieces, and the full length of partial pieces.
	Stored int64
	// Free is idle memory buffers kept for reuse; they go first when room
	// is needed.
	Free int64
	// Scratch is decompressed copies of compressed pieces and buffers of
	// compressions in progress.
	Scratch int64

	Pieces  int // complete held pieces
	Partial int // partial pieces (reserved, being written)

	Pinned       int64 // full lengths of pinned pieces
	PinnedPieces int

	Evictions int64 // pieces evicted to make room or by Evict
	Hits      int64 // reads (ReadAt, hashing) of held pieces
	Misses    int64 // reads of pieces not held

	// CompressedIn is the plain length of every completed piece offered to
	// compression; CompressedOut what was stored for them (the plain length
	// when compression did not save 5%).
	CompressedIn, CompressedOut int64

	// Torrents is the stored bytes of each torrent holding any.
	Torrents map[metainfo.Hash]int64
}

// Ratio is CompressedOut/CompressedIn, or 1 before anything was compressed.
func (s Stats) Ratio() float64 {
	if s.CompressedIn == 0 {
		return 1
	}
	return float64(s.CompressedOut) / float64(s.CompressedIn)
}

// Stats returns a snapshot.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.unlock()
	s := Stats{
		Budget:        c.budget,
		Held:          c.held,
		Stored:        c.stored,
		Free:          c.freeBytes,
		Scratch:       c.scratch,
		Pieces:        c.nComplete,
		Partial:       c.nPartial,
		Pinned:        c.pinned,
		PinnedPieces:  c.pinnedPieces,
		Evictions:     c.evictions,
		Hits:          c.hits,
		Misses:        c.misses,
		CompressedIn:  c.compIn,
		CompressedOut: c.compOut,
		Torrents:      make(map[metainfo.Hash]int64),
	}
	for ih, t := range c.torrents {
		if t.stored > 0 {
			s.Torrents[ih] = t.stored
		}
	}
	return s
}
