package feeds

import (
	"errors"

	"github.com/btslave/btslave/internal/torrentfile"
)

// Errors returned while fetching and parsing a feed. Match them with
// errors.Is; the returned errors wrap them with the feed, URL or item they
// concern.
var (
	// ErrTooLarge is returned when a feed body or a .torrent is larger than
	// its cap (feeds.max_feed_size, feeds.max_torrent_size). The fetch stops
	// at the cap; the rest is never read.
	ErrTooLarge = errors.New("over the size cap")
	// ErrNotFeed is returned by ParseFeed when the body is not RSS, Atom or
	// JSON Feed, and by ParseList when it is not text.
	ErrNotFeed = errors.New("not a feed")
	// ErrHTTPStatus is returned when a server answers with a status other
	// than 2xx or 304.
	ErrHTTPStatus = errors.New("unexpected HTTP status")
	// ErrBadURL is returned for a URL that is not http(s), and for a
	// redirect to one.
	ErrBadURL = errors.New("not an http(s) URL")
	// ErrBadTorrent is returned for a .torrent that does not decode or
	// whose info dictionary is inconsistent.
	ErrBadTorrent = torrentfile.ErrBadTorrent
	// ErrBadMagnet is returned for a magnet link that does not parse or
	// names no info hash.
	ErrBadMagnet = errors.New("bad magnet link")
	// ErrNoLink is set on an item that offers no .torrent link, magnet link
	// or info hash.
	ErrNoLink = errors.New("no .torrent link, magnet link or info hash")
	// ErrHashMismatch is returned when a feed states an info hash that the
	// .torrent it links does not have.
	ErrHashMismatch = errors.New("info hash differs from the one the feed states")
	// ErrPrivateAddress is returned when a feed fetched from a public
	// address redirects, or links a .torrent, to a loopback, private,
	// link-local, CGNAT, multicast or otherwise non-public address
	// (unless feeds.allow_private_redirects is set). The connection is
	// refused before it is made.
	ErrPrivateAddress = errors.New("private address from a public feed")
)

// Errors returned by the feed store, the catalog and the service.
var (
	// ErrFeedExists is returned by Store.AddFeed and Service.Add when a
	// feed of that name is already configured or added.
	ErrFeedExists = errors.New("feed already exists")
	// ErrFeedNotFound is returned by Store.RemoveFeed and Service.Remove
	// for a name no feed has.
	ErrFeedNotFound = errors.New("no such feed")
	// ErrConfigFeed is returned by Service.Remove for a feed that comes
	// from the configuration file; remove it there.
	ErrConfigFeed = errors.New("feed is in the configuration file")
	// ErrBadFeed is returned by CheckFeed for a feed definition that cannot
	// run (no url or dir, bad regular expression, bad schedule).
	ErrBadFeed = errors.New("bad feed definition")
	// ErrNotFound is returned by Catalog.Remove for an info hash the catalog
	// does not hold.
	ErrNotFound = errors.New("not in the catalog")
	// ErrNoBuckets is returned by NewCatalog and NewStore when the database
	// lacks the feeds buckets: it was not opened with store.Open.
	ErrNoBuckets = errors.New("database has no feeds buckets")
)
