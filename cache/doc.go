// Package cache is the bounded piece store under the BitTorrent client: one
// byte budget across all torrents, eviction by least-recently-useful, pinned
// pieces, optional zstd compression of what it holds.
//
// It is empty until the partial-seed work lands; the [cache] configuration
// section already parses and validates.
package cache
