// Package btfs mounts one torrent as a read-only FUSE filesystem
// (github.com/hanwen/go-fuse/v2) whose files are streamed from the swarm
// through the repeater's bounded piece cache.
//
// The tree (directories, files, sizes, the torrent's creation date as
// every time) comes from the metainfo alone, so ls and stat never wait for
// the network. A torrent whose metadata is not known yet shows an empty
// root holding one file, StatusFile, that says so; the tree appears in
// place of it once the metadata arrives.
//
// Each open file handle reads through its own anacrolix torrent.Reader:
// the pieces covering a read are fetched first (priority "now"), then the
// reader reads ahead along the file at a depth that follows the rate the
// handle consumes data (ReadaheadHorizon of it, between two pieces and
// Options.MaxReadahead). A seek resets the depth, so a jump to the end of a
// file fetches only the pieces it needs. The handle also claims the
// pieces from its position to the end of its readahead window (Claims), so
// that the repeater does not evict what a reader is about to read; closing
// the file drops the reader, its readahead and its claims.
//
// A read not served within Options.ReadTimeout returns EIO and logs a
// warning; a read interrupted by the kernel (the reading process was
// killed) returns EINTR; Unmount fails every read in flight at once, then
// unmounts, lazily when a process still holds a file open.
package btfs
