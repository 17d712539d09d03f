// Package cache is the bounded piece store under the BitTorrent client: a
// storage.ClientImpl for anacrolix/torrent that holds pieces of any number
// of torrents within one byte budget, evicting the least recently useful
// ones, so that btslave can join swarms as a partial seed.
//
// A [Cache] keeps pieces in memory (Options.Dir empty) or as one file per
// held piece under Options.Dir. It knows nothing of peers: the repeater
// tells it what is useful ([Cache.Touch], [Cache.Pin]), what to drop
// ([Cache.Evict], [Cache.DropTorrent]), and the wire layer asks
// [Cache.Has] before it accepts a request.
//
// # Budget
//
// Every byte the cache holds counts against Options.Budget, and the total
// never exceeds it, at any instant: piece buffers and files, the full
// length of a partial piece (reserved at its first write), compressed
// pieces at their compressed size, decompressed copies, the compression
// buffers, and idle buffers and files kept for reuse. [Stats] shows the
// parts: Stored, Free and Scratch.
//
// A write that needs room evicts first; if nothing can be evicted it fails
// with an error wrapping [ErrFull]. anacrolix's default reaction to a chunk
// write error is to stop downloading the torrent: install
// Torrent.SetOnWriteChunkError.
//
// The memory backend recycles evicted buffers of the same length, so a
// steady stream of pieces allocates nothing; the file backend likewise
// reuses an evicted file for the next piece of the same length rather than
// creating one (file creation costs more than the writes). Files are named
// Dir/<n>.piece and do not survive the process: New removes those left
// behind, Close removes its own, and DropTorrent removes the torrent's.
//
// # Eviction
//
// Pieces are ordered by when they were last useful: written, read, touched
// or marked complete. To make room the cache takes, in order: idle buffers
// and files, decompressed copies, then the least recently useful piece
// that is not pinned, has no I/O in flight, and is complete or partial
// without a write for a minute (a fresh partial piece is being downloaded:
// evicting it would only make two downloads fight).
//
// Evicting a piece drops its data; its Completion becomes
// {Ok: true, Complete: false} (never an error, which would stop the whole
// torrent), and OnEvict is called for it on the cache's own goroutine,
// never under the cache lock. anacrolix still believes it has the piece
// until told; the safe order in OnEvict is to cancel the piece first
// (Piece.SetPriority(PiecePriorityNone), or it is fetched again at once),
// then Piece.UpdateCompletion. A peer asking for the piece meanwhile makes
// anacrolix read it, fail, and resync the completion itself.
//
// A partial piece that is evicted is marked lost: later writes are
// accepted, but reads fail until anacrolix calls MarkNotComplete (after
// its hash check fails on the read error), so the hash check never sees
// stale bytes and no peer is banned for them. Reopening the torrent clears
// the mark, since anacrolix then writes every chunk again.
//
// Pinned pieces are never evicted; pins may cover at most 3/4 of the
// budget. [Cache.Evict] drops a piece on demand and [Cache.DropTorrent]
// releases a whole torrent (without OnEvict: drop it from the client
// first). Closing a torrent in the client keeps its pieces, evictable as
// any, for when it is opened again.
//
// # Compression
//
// With Options.Compress, MarkComplete compresses the piece with zstd
// (fastest level, one encoder run at a time), one independent frame per
// 16 KiB block ([FrameBlock]), and keeps the result only if it saves at
// least 5%. Frames per block cost some ratio against one frame per
// 256 KiB piece (Go source: 0.266 of the plain size against 0.220) and
// buy this: [Cache.ZstdFrame] hands a block's frame to the wire layer,
// which sends it as it is to a peer that takes zstd (BEP 56 "cp",
// docs/bep56.md), so a block uploaded to many such peers is compressed
// once, when it was cached. A torrent whose last four pieces did
// not compress is sampled, one piece in 32, so incompressible media costs
// little CPU. Reading a compressed piece decompresses it into a
// decompressed copy kept in a small LRU (a sixteenth of the budget); those
// copies count against the budget and are the first thing reclaimed.
// Stats.CompressedIn and CompressedOut give the ratio.
//
// # Concurrency
//
// anacrolix calls ReadAt and WriteAt from many goroutines at once, and
// Completion under its client lock. The cache has one lock, held only for
// bookkeeping: copies, file I/O, allocation and (de)compression run
// outside it, with the piece reference-counted so that it is not evicted
// or recycled meanwhile. Concurrent reads and writes of overlapping ranges
// of one piece see torn data, as with files; anacrolix does not do that.
package cache
