// Package master talks to the owner's own BitTorrent client, the master,
// that btslave helps download faster.
//
// # Master
//
// A master is a client the owner runs (Transmission, qBittorrent or another
// btslave daemon). A Client lists the torrents it is downloading (Torrent:
// info hash, name, metainfo or magnet, the pieces it has, progress,
// category) and says where it accepts peers. Each client kind has its own
// small package under master/ (master/transmission, master/qbittorrent,
// master/btslave); this package holds what they share: the Torrent and
// Client types, the Filter of [master] include/exclude/category, and the
// Watcher that polls a Client with backoff and keeps its state for status.
//
// The helper behaviour itself (joining the swarm on the master's behalf)
// lives in master/helper, so that friends can help a friend's master with
// the same code.
package master
