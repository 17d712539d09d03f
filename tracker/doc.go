// Package tracker is a BitTorrent tracker that makes BEP 21 real: it
// counts partial seeds apart from downloaders and says so in its scrapes,
// hands seeds and partial seeds only the peers that still download, and
// syncs with other trackers of its group.
//
// A [Tracker] is built with [New], which binds its listeners, and served
// with [Tracker.Run] until its context ends. The daemon runs one when
// [tracker] enabled = true; "btslave tracker" runs one alone.
//
// # Protocols
//
//   - HTTP announce (BEP 3) at /announce: compact peers (BEP 23) by
//     default, a list of dictionaries without peer ids with compact=0,
//     IPv6 peers in "peers6" (BEP 7); numwant (default 50, at most 200),
//     "interval" and "min interval" (half of it), "tracker id". key and
//     trackerid are accepted and not used: peers are known by address.
//   - HTTP scrape (BEP 48) at /scrape, for up to 100 info_hash values;
//     without one (a full scrape) the answer is a failure reason.
//   - UDP (BEP 15): connect, announce and scrape (74 hashes a packet) on
//     one socket per CPU (SO_REUSEPORT), read and written in batches
//     (recvmmsg/sendmmsg). Connection IDs are a keyed pseudo-random
//     function of the client's address under a secret that changes every
//     2 minutes: nothing to remember, nothing to forge.
//   - /stats (text, or JSON with ?format=json) and /metrics (Prometheus).
//
// # Peers
//
// A peer is its address: the connection's IP and the announced port. Its
// kind comes from each announce: a *seed* has left = 0; a *partial seed*
// (BEP 21) has data left and announces event=paused over HTTP, or event 4
// over UDP (what libtorrent sends; BEP 15 defines 0–3, BEP 21 says nothing
// about UDP, and any other unknown value counts as none); anyone else is a
// *downloader*. complete counts seeds, incomplete partial seeds and
// downloaders, downloaders (BEP 21, in scrapes and announce replies)
// downloaders only. A completed announce counts one download per peer.
//
// Downloaders are given every kind of peer; seeds and partial seeds only
// downloaders (the "intelligent peer list"). A reply never lists its own
// announcer. With more peers than wanted, a reply takes every k-th one
// from a random start.
//
// # State
//
// All state is in memory, in 1024 locked shards by info-hash. Each
// torrent keeps sorted lists of 8-byte IPv4 records (address, port,
// flags, epoch) and 20-byte IPv6 ones, downloaders apart from the others,
// split into buckets past 2048 peers. A peer expires two intervals after
// its last announce (epochs of a quarter interval, swept once each). A
// torrent without peers is forgotten, unless it has downloads: then after
// Options.Idle (30 days) without announces. The downloaded counts are
// written to the daemon's bbolt file every 10 s and at stop, and read at
// start; a kill -9 loses at most the last 10 s of them.
//
// # Limits
//
// In whitelist mode only the info-hashes of a file are served, the file
// being read again when it changes (the old list stays if the new one is
// malformed). Each source address may send Options.RatePerIP announces
// and scrapes a second, in bursts of ten seconds' worth, counted in a
// fixed table without memory per address (see limiter); over UDP this is
// checked after the connection ID, so a forged source cannot spend a
// victim's allowance. Beyond it, HTTP gets a failure reason with BEP 31's
// "retry in", UDP no reply.
//
// # Sync
//
// Trackers of a group exchange opentracker's livesync packets over
// unicast UDP (multicast only when asked): every announce is passed on in
// SYNC_LIVE packets, and downloaded counts travel by the scrape sync's
// beacons, inquiries and tells, merged by maximum. With a sync key every
// packet carries a sequence number and an HMAC-SHA256. docs/tracker-sync.md
// has the packet formats.
package tracker
