// Package scrape asks BitTorrent trackers for the seeders, leechers and
// completed downloads of many torrents at once, over HTTP (BEP 48) and UDP
// (BEP 15), with a result cache, per-tracker limits and backoff.
//
// # Scraper
//
// A [Scraper] is built with [New] and shared by all callers; [Scraper.Close]
// releases its sockets. [Scraper.Scrape] scrapes one tracker, given by its
// announce URL, for a list of info-hashes and returns a [Result] for every
// hash it got an answer for; [Scraper.ScrapeAll] scrapes many trackers
// concurrently, each failing or succeeding on its own.
//
//   - Results younger than Options.MaxAge come from the cache, without
//     traffic. Each Result carries the time the tracker gave it (At).
//   - Every request to a tracker (one HTTP GET, one UDP scrape packet) waits
//     for a token from the tracker's rate limiter (Options.Rate; none by
//     default) and for one of its Options.Concurrency slots, shared by all
//     calls. Each request gets Options.Timeout.
//   - A scrape call that fails (error, timeout, garbage, failure reason)
//     backs the tracker off: BackoffMin (1 min), doubling per consecutive
//     failed call up to BackoffMax (1 h). While backed off, Scrape returns
//     an error wrapping [ErrBackoff] at once, with the cached results it
//     has. A success resets the backoff. A call cancelled by its caller
//     does not count.
//   - When one request of a call fails, the call's other requests are
//     cancelled; the results of those that succeeded are returned (and
//     cached) with the error.
//   - [Scraper.Status] reports each tracker's last success, last error and
//     backoff, for the daemon's status page.
//
// # HTTP
//
// The scrape URL comes from the announce URL by BEP 48's convention: the
// last segment of the path must begin with "announce", which becomes
// "scrape" ("/x/announce.php?passkey=K" → "/x/scrape.php?passkey=K", the
// query kept as it is); any other URL has no scrape ([ErrNoScrape], before
// any traffic). One GET carries up to Options.HTTPBatch info_hash
// parameters (50 by default), fewer if the URL would pass 8000 bytes.
// Every byte of a hash but the unreserved ones is percent-encoded
// (announce.EscapeBytes): opentracker decodes no "+".
//
// The reply's "files" dictionary is keyed by raw 20-byte hashes; its
// entries give "complete", "incomplete", "downloaded" and, from trackers
// that implement BEP 21, "downloaders" (Result.HasDownloaders says whether
// it was there). A hash missing from "files" is not an error: its Result
// has Known false. A "failure reason" gives a [*FailureError]. Bodies are
// capped at 4 MiB; requests go without a proxy, from Options.LocalIP.
//
// # UDP
//
// One socket per tracker, bound to Options.LocalIP, carries all requests to
// it: requests are pipelined (up to Options.Concurrency packets in flight)
// and replies matched by transaction ID; a reply with an unknown ID is
// dropped. The connection ID from the connect exchange is reused for one
// minute (BEP 15), fetched by one request while the others wait, and
// fetched again after an error. A packet carries up to 74 hashes (BEP 15).
// A request is sent again after Options.UDPTimeout (3 s), then after twice
// and four times that (Options.UDPRetries, 2), within Options.Timeout;
// BEP 15's 15·2ⁿ s suits the Internet, not a daemon that scrapes thousands
// of torrents. An error reply (action 3) gives a [*FailureError] with the
// tracker's message, after one retry with a fresh connection ID if the
// old one was reused. A reply must hold exactly 12 bytes per hash; a
// shorter or longer one is malformed. A reply with fewer (whole) rows than
// hashes asked is taken as the tracker's own per-packet limit: the rows
// are used, the rest is asked again, and later packets to that tracker
// carry no more. The socket is closed after a minute without requests.
// Over UDP every hash gets a row, so Result.Known is always true.
//
// # Real trackers
//
// opentracker takes at most 64 hashes per HTTP scrape and 75 per UDP
// packet and silently drops the rest; chihaya, 50 for both. A hash dropped
// from an HTTP reply cannot be told from a hash the tracker does not know,
// hence the default of 50 per GET. opentracker lists only torrents that
// have (or had) peers in an HTTP reply, and answers zeros over UDP for any
// other hash, whitelisted or not. No tracker seen sends "downloaders".
package scrape
