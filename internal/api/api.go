// Package api is btslave's local HTTP API: the server the daemon runs and
// the client the CLI uses.
//
// Every request needs "Authorization: Bearer <token>"; without the right
// token the answer is 401. The token is generated on first run into the data
// dir (file api.token, mode 0600) unless the config sets one.
//
// # Endpoints
//
//	GET    /api/v1/status          the daemon's state as JSON (Status)
//	POST   /api/v1/swarms          join a swarm (RepeatRequest → Torrent)
//	DELETE /api/v1/swarms/{hash}   leave a swarm
//	GET    /api/v1/ranking         the autopilot's ranking (Ranking)
//	GET    /api/v1/feeds           the feeds ([]Feed)
//	POST   /api/v1/feeds           add a feed (FeedRequest → Feed)
//	DELETE /api/v1/feeds/{name}    remove a feed added at run time
//	GET    /api/v1/feeds/{name}/items  what the feed put in the catalog ([]FeedItem)
//	POST   /api/v1/feeds/test      fetch a feed once, say what it keeps (FeedTest)
//	POST   /api/v1/web/login-code  a one-time dashboard login code (LoginCode)
//	GET    /login, POST /logout    the dashboard's login (session.go)
//	GET    /                       the dashboard (ServerOptions.UI), with a session
//	POST   /api/v1/published       publish a path (PublishRequest → Published)
//	GET    /api/v1/published       the published torrents ([]Published)
//	DELETE /api/v1/published/{hash} unpublish: stop the everseed, drop it from the feed
//	GET    /api/v1/publishing      publishes under way, with progress ([]PublishJob)
//	POST   /api/v1/master/help     help a master (HelpRequest → MasterTorrent)
//	GET    /api/v1/friends         friends and pending requests (FriendList)
//	POST   /api/v1/friends         add a friend by invite code (AddFriendRequest → FriendInfo)
//	POST   /api/v1/friends/invite  an invite code (InviteRequest → InviteCode)
//	POST   /api/v1/friends/{id}/accept  accept a pending request (→ FriendInfo)
//	POST   /api/v1/friends/{id}/deny    drop a pending request
//	DELETE /api/v1/friends/{id}    remove a friend or a pending request
//	GET    /api/v1/ledger          balances, their IOUs and why (Ledger)
//	GET    /metrics                Prometheus metrics
//
// A request the daemon refuses as the caller's fault (bad input, a feed
// from the configuration file) is answered 400 with {"error": "..."}; one
// naming a friend or request the daemon does not hold, 404.
package api

import "time"

// Status is the answer of GET /api/v1/status.
type Status struct {
	Version    string    `json:"version"`
	PID        int       `json:"pid"`
	StartedAt  time.Time `json:"started_at"`
	Uptime     Seconds   `json:"uptime_seconds"`
	DataDir    string    `json:"data_dir"`
	ConfigFile string    `json:"config_file"` // "" when running on defaults
	API        string    `json:"api"`
	Peer       PeerState `json:"peer"`
	Cache      Cache     `json:"cache"`
	Torrents   []Torrent `json:"torrents"`
	// Visits are the most recent stays in swarms, newest first.
	Visits []Visit `json:"visits"`
	// Feeds are the feeds' states; Catalog counts the torrents they found.
	Feeds   []Feed `json:"feeds"`
	Catalog int    `json:"catalog_entries"`
	// Autopilot is what the autopilot did.
	Autopilot Autopilot `json:"autopilot"`
	// Tracker is the embedded tracker's state; nil when it is off.
	Tracker *TrackerState `json:"tracker,omitempty"`
	// Compression is BEP 56 stream compression with other btslaves.
	Compression Compression `json:"compression"`
	// NextSteps tell a new user what to do while the daemon has no feed
	// and no swarm; empty otherwise.
	NextSteps []string `json:"next_steps,omitempty"`
	// Master is the master helped ([master], help-master).
	Master MasterState `json:"master"`
	// Friends is who helps our master and whose masters we help; nil
	// when [friends] is off.
	Friends *FriendsHelp `json:"friends_help,omitempty"`
	// Mounts are the daemon's mounts (BTFS), by directory; nil from a
	// daemon older than the field.
	Mounts []Mount `json:"mounts"`
}

// FriendsHelp is the friends' help as the status shows it.
type FriendsHelp struct {
	// HelpedBy are our master's torrents friends help with, newest first.
	HelpedBy []HelpIn `json:"helped_by"`
	// Helping are the friends' masters we help.
	Helping []HelpOut `json:"helping"`
}

// HelpIn is one torrent of our master friends help with: what our master
// downloaded since the first friend accepted, and what each friend was
// countersigned for out of it.
type HelpIn struct {
	InfoHash string       `json:"infohash"`
	Since    time.Time    `json:"since"`
	Arrived  int64        `json:"arrived"`
	Credited int64        `json:"credited"`
	Friends  []HelpFriend `json:"friends"`
}

// HelpFriend is one friend's countersigned part of a HelpIn.
type HelpFriend struct {
	Friend   string `json:"friend"`
	Credited int64  `json:"credited"`
}

// HelpOut is one friend's master we help.
type HelpOut struct {
	Friend   string    `json:"friend"`
	InfoHash string    `json:"infohash"`
	Since    time.Time `json:"since"`
	Sent     int64     `json:"sent"`
	Credited int64     `json:"credited"`
}

// TrackerState is the embedded tracker's, as the status shows it.
type TrackerState struct {
	AnnounceURL        string   `json:"announce_url"`
	Open               bool     `json:"open"`
	Whitelisted        int      `json:"whitelisted,omitempty"`
	Torrents           int64    `json:"torrents"`
	Seeds              int64    `json:"seeds"`
	PartialSeeds       int64    `json:"partial_seeds"`
	Downloaders        int64    `json:"downloaders"`
	AnnouncesPerSecond float64  `json:"announces_per_second"`
	ScrapesPerSecond   float64  `json:"scrapes_per_second"`
	SyncPeers          []string `json:"sync_peers,omitempty"`
}

// Compression is BEP 56 stream compression (docs/bep56.md): the
// connections compressed now and what compression did since the start.
type Compression struct {
	Peers []CompressedPeer `json:"peers"`
	// Connections counts connections compressed one way or both since the
	// start; Refused, those closed for a bad or expanding stream.
	Connections int64 `json:"connections"`
	Refused     int64 `json:"refused"`
	// SavedUp and SavedDown are the bytes kept off the wire (plain minus
	// wire) sent and received; FramesSpliced, cached blocks sent as the
	// zstd frames the cache holds.
	SavedUp       int64 `json:"saved_up"`
	SavedDown     int64 `json:"saved_down"`
	FramesSpliced int64 `json:"frames_spliced"`
}

// CompressedPeer is one compressed connection: the algorithm each way ("":
// that way is plain), bytes after the marker as the library wrote or read
// them (plain) and on the wire, and wire/plain.
type CompressedPeer struct {
	InfoHash  string  `json:"infohash"`
	Addr      string  `json:"addr"`
	Client    string  `json:"client"`
	Up        string  `json:"up"`
	Down      string  `json:"down"`
	UpPlain   int64   `json:"up_plain"`
	UpWire    int64   `json:"up_wire"`
	DownPlain int64   `json:"down_plain"`
	DownWire  int64   `json:"down_wire"`
	UpRatio   float64 `json:"up_ratio"`
	DownRatio float64 `json:"down_ratio"`
}

// Visit is one stay in a swarm.
type Visit struct {
	InfoHash    string    `json:"infohash"`
	Name        string    `json:"name"`
	Joined      time.Time `json:"joined"`
	Left        time.Time `json:"left"`
	Uploaded    int64     `json:"uploaded"`
	Downloaded  int64     `json:"downloaded"`
	Ratio       float64   `json:"ratio"`
	PeersServed int       `json:"peers_served"`
	Reason      string    `json:"reason"`
}

// PeerState describes the BitTorrent client.
type PeerState struct {
	Listen          string `json:"listen"`
	Port            int    `json:"port"`
	DHT             bool   `json:"dht"`
	PEX             bool   `json:"pex"`
	UploadLimit     int64  `json:"upload_limit"` // bytes/s, 0 = unlimited
	DownloadLimit   int64  `json:"download_limit"`
	BytesUploaded   int64  `json:"bytes_uploaded"`
	BytesDownloaded int64  `json:"bytes_downloaded"`
	Peers           int    `json:"peers"`
}

// Cache describes the piece cache.
type Cache struct {
	Budget    int64  `json:"budget"`
	Backend   string `json:"backend"`
	Held      int64  `json:"held"`
	Pieces    int    `json:"pieces"`
	Evictions int64  `json:"evictions"`
	// CompressRatio is compressed/original size of held pieces (1 = none).
	CompressRatio float64 `json:"compress_ratio"`
}

// Torrent is one torrent the client holds.
type Torrent struct {
	InfoHash        string `json:"infohash"`
	Name            string `json:"name"`
	Size            int64  `json:"size"`
	Pieces          int    `json:"pieces"`
	PiecesHeld      int    `json:"pieces_held"`
	Peers           int    `json:"peers"`
	BytesUploaded   int64  `json:"bytes_uploaded"`
	BytesDownloaded int64  `json:"bytes_downloaded"`
	// Origin says who had the swarm joined: "owner" or "auto".
	Origin string `json:"origin,omitempty"`
	// Error says why the swarm cannot be served, if it cannot.
	Error string `json:"error,omitempty"`
	// Quiet is why an owner's swarm fetches nothing new for now (a leave
	// rule that would have left an autopilot swarm: "no downloaders",
	// "nothing wanted", "enough seeds", "ratio too low"), since
	// QuietSince; it stays joined and announced. Empty when busy.
	Quiet      string    `json:"quiet,omitempty"`
	QuietSince time.Time `json:"quiet_since,omitzero"`
}

// Seconds is a duration that marshals as a number of seconds.
type Seconds float64

// Duration converts to time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }
