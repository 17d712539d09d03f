package master

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

// Torrent is one torrent the master is downloading.
type Torrent struct {
	// InfoHash is the v1 info hash, lower-case hex.
	InfoHash string
	Name     string
	// MetaInfo is the .torrent file when the master gives it (nil
	// otherwise); Magnet a magnet link for it, at least
	// "magnet:?xt=urn:btih:HASH".
	MetaInfo []byte
	Magnet   string
	// Pieces is the master's bitfield (BEP 3 order: piece 0 is the high
	// bit of byte 0) of NumPieces pieces; nil when the master does not say
	// (the helper then follows the master's bitfield on the wire only).
	Pieces    []byte
	NumPieces int
	// Downloading are the pieces the master is downloading now, in the
	// same order; nil when the client does not say (qBittorrent's
	// pieceStates does, Transmission's RPC does not). A helper brings
	// those last: the master is already getting them elsewhere.
	Downloading []byte
	// Progress is the fraction of the wanted data the master has, 0..1.
	Progress float64
	// Category is the qBittorrent category or the Transmission labels,
	// comma-separated.
	Category string
	// Stopped: the master is not downloading it now (paused or stopped by
	// the owner, queued).
	Stopped bool
	// Helpers are the addresses of the btslave peers in the master's own
	// peer list (its BEP 10 client name starts with "btslave"), when the
	// client gives one: the helpers of one master split its pieces by them.
	Helpers []netip.Addr
	// Seeders and Leechers are the swarm's size as the master's trackers
	// scraped it (the most any tracker said); -1 or 0 when unknown. The
	// friends' auto_cashin calls a swarm starved by them.
	Seeders, Leechers int
}

// Starved says whether t's swarm has at least ratio downloaders per seed;
// a swarm with no seed and any downloader is starved. Unknown figures are
// not starved.
func (t *Torrent) Starved(ratio float64) bool {
	if t.Seeders < 0 || t.Leechers <= 0 {
		return false
	}
	return t.Seeders == 0 || float64(t.Leechers) >= ratio*float64(t.Seeders)
}

// IsHelperClient says whether a peer's client name, as a master's peer
// list shows it (the BEP 10 "v" of its handshake), is a btslave's.
func IsHelperClient(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), "btslave")
}

// HasPiece says whether the master has piece i according to Pieces.
func (t *Torrent) HasPiece(i int) bool {
	if i < 0 || i/8 >= len(t.Pieces) {
		return false
	}
	return t.Pieces[i/8]&(0x80>>(i%8)) != 0
}

// Client is one master's remote control.
type Client interface {
	// Kind is "transmission", "qbittorrent" or "btslave".
	Kind() string
	// Downloading lists the torrents the master downloads now.
	Downloading(ctx context.Context) ([]Torrent, error)
	// PeerAddr is where the master accepts BitTorrent peers.
	PeerAddr(ctx context.Context) (netip.AddrPort, error)
}

// PeerAdder is a Client that can be told of a peer (qBittorrent's
// torrents/addPeers): the helper introduces itself so that the master dials
// it too.
type PeerAdder interface {
	AddPeers(ctx context.Context, infoHash string, peers []netip.AddrPort) error
}

// Counter is a Client that says how much payload it has downloaded for
// one torrent, complete or not (Transmission's downloadedEver,
// qBittorrent's downloaded). The friends ledger bounds what a friend may
// claim it delivered to the master by it (docs/friends-iou.md).
type Counter interface {
	Received(ctx context.Context, infoHash string) (int64, error)
}

// Errors a Client returns, matched with errors.Is.
var (
	// ErrAuth is returned when the master refuses the credentials: check
	// [master] username and password; retrying will not help until they
	// change, so the Watcher backs off to its longest wait.
	ErrAuth = errors.New("master refused the credentials")
	// ErrGarbage is returned when the master's reply cannot be decoded.
	ErrGarbage = errors.New("master sent a reply that is not what its API returns")
	// ErrUnreachable is returned when the master does not answer at all
	// (not running, restarting, wrong url).
	ErrUnreachable = errors.New("master does not answer")
)

// Filter selects the master torrents to help from [master] include,
// exclude and category.
type Filter struct {
	Include, Exclude *regexp.Regexp // on the name; nil: no condition
	Category         string         // "" for any; else must equal Category or one of its comma-separated labels
}

// NewFilter compiles the patterns; empty ones match everything (include)
// or nothing (exclude).
func NewFilter(include, exclude, category string) (Filter, error) {
	var f Filter
	var err error
	if include != "" {
		if f.Include, err = regexp.Compile(include); err != nil {
			return f, fmt.Errorf("master include %q: %w", include, err)
		}
	}
	if exclude != "" {
		if f.Exclude, err = regexp.Compile(exclude); err != nil {
			return f, fmt.Errorf("master exclude %q: %w", exclude, err)
		}
	}
	f.Category = category
	return f, nil
}

// Match says whether t is to be helped.
func (f Filter) Match(t Torrent) bool {
	if f.Include != nil && !f.Include.MatchString(t.Name) {
		return false
	}
	if f.Exclude != nil && f.Exclude.MatchString(t.Name) {
		return false
	}
	if f.Category != "" && !hasLabel(t.Category, f.Category) {
		return false
	}
	return true
}

func hasLabel(list, want string) bool {
	for l := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}

// Magnet is the bare magnet link of an info hash.
func Magnet(infoHash, name string) string {
	m := "magnet:?xt=urn:btih:" + infoHash
	if name != "" {
		m += "&dn=" + url.QueryEscape(name)
	}
	return m
}
