package api

// RepeatRequest asks the daemon to serve a swarm: exactly one of Torrent
// (the .torrent file's bytes), Magnet or InfoHash (hex) is set.
type RepeatRequest struct {
	Torrent  []byte `json:"torrent,omitempty"`
	Magnet   string `json:"magnet,omitempty"`
	InfoHash string `json:"infohash,omitempty"`
}

// MaxTorrentBytes caps a .torrent sent to the API.
const MaxTorrentBytes = 16 << 20
