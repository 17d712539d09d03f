// Package announce is the repeater's own tracker announcer: it announces
// one torrent to every tracker of its announce-list, over HTTP(S) and UDP,
// with the BEP 21 rules for a partial seed.
//
// # Rules
//
//   - The first announce to a tracker is "started" (repeated until one
//     succeeds), then periodic announces follow; at shutdown (Run's context
//     done, which is also how a torrent is left) "stopped" goes to every
//     tracker that was announced to, in parallel, all within StopTimeout
//     (3 s by default), so shutdown stays bounded.
//   - While the torrent is a partial seed (Options.PartialSeed), every HTTP
//     announce that would carry no event carries event=paused (BEP 21),
//     periodic ones included; started and stopped take precedence, as in
//     libtorrent. So a tracker sees the repeater as a leecher until the
//     second announce.
//   - If a tracker answers an announce carrying paused with a "failure
//     reason" or HTTP 400, the announce is retried at once without paused.
//     When that retry succeeds, the tracker URL is remembered for the life
//     of the Announcer (Announcer.PausedRefused) and paused is never sent
//     to it again. When the retry fails too, the refusal was about
//     something else: nothing is remembered and the failure backs off.
//   - Over UDP (BEP 15: 0 none, 1 completed, 2 started, 3 stopped) event 4
//     is never sent: a partial seed announces none.
//   - uploaded, downloaded and left are the caller's honest figures
//     (Options.Stats): left is the bytes actually missing, > 0 for a
//     partial seed, never 0 to pose as a seed. "completed" is never sent.
//   - The next announce follows the tracker's interval, or its min interval
//     if larger, 30 min if it gives none, clamped to [30 s, 1 h]. A failed
//     announce (error, timeout, garbage, failure reason) backs off per
//     tracker: 15 s, doubling up to 30 min, reset by a success.
//   - Tiers (BEP 12) are simplified: every URL of every tier is announced
//     to independently, each with its own schedule and backoff; a failing
//     tracker never delays another. Status reports each tier number.
//   - Announces leave from Options.LocalIP (TCP and UDP), without a proxy,
//     so the trackers list the address peers reach the repeater on; port,
//     key, peer_id, numwant and compact=1 are sent as usual. The
//     repeater's own address is removed from the peers handed to OnPeers.
//
// # Real trackers
//
// No tracker seen emits BEP 21 "downloaders". opentracker ignores
// event=paused (a paused peer with left > 0 counts as incomplete), answers
// compact=0 with HTTP 400, refuses non-whitelisted hashes with a failure
// reason and lists the caller in its own peer list. chihaya, aquatic and
// Torrust reject an announce with event=paused, hence the retry above.
// anacrolix's own tracker/http/server answers 400 to paused.
//
// # Wire formats
//
// The HTTP announce is made here with net/http and anacrolix's bencode
// package, because anacrolix's tracker/http client neither exposes the
// failure reason as a value nor caps the reply size; bodies are capped at
// 1 MiB and at most 2000 peers are taken from a reply. The UDP announce
// uses the message types of anacrolix's tracker/udp package on its own
// socket (bound to LocalIP), with retransmissions bounded by the
// announce's deadline and the announce URL's path sent as a BEP 41 option.
package announce
