// Package publish makes a torrent of a file or a directory: BitTorrent v1
// (BEP 3), v2 (BEP 52) or hybrid, the default.
//
// [Create] walks the path, lays the files out, hashes every piece in
// parallel across the cores and returns a [Torrent]: the .torrent bytes,
// both infohashes and the magnet link. [WriteFile] stores it atomically.
//
// # Layout
//
// Files are sorted by their path components, byte-wise, which is the order
// of a v2 "file tree" dictionary. A v2 or hybrid torrent starts every file
// on a piece boundary; the hybrid's v1 "files" list has a BEP 47 padding
// file (attr "p", path ".pad/N") after each file whose end is not aligned,
// the last one included, as libtorrent's create_torrent does, so the same
// directory hashed by both gives the same infohashes. A v1 torrent is the
// classic layout: files back to back, pieces spanning files.
//
// # Hashing
//
// A hybrid needs a SHA-1 per piece and, per file, a SHA-256 Merkle tree
// over 16 KiB leaves whose piece layer is kept for files larger than a
// piece. Files are piece-aligned, so each piece lies in one file: a worker
// reads a piece once into its buffer and computes the SHA-1 and the leaf
// and piece hashes from the same bytes. Each byte is read once.
//
// A file that changes size or modification time while it is hashed fails
// the run; a cancelled context stops it, and nothing is written.
package publish
