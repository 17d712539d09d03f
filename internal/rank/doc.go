// Package rank scores BitTorrent swarms by how much one more uploader
// would help them — the need score — and decides which swarms the
// daemon's autopilot serves within its budget.
//
// It is pure: no I/O, no clock, no goroutines. The daemon hands it tracker
// scrapes, its own observations of the peers it is connected to and how
// long each torrent has been in the feeds; [Compute] turns them into a
// [Score] with every part shown, and [Decide] turns scored candidates into
// a [Plan] of joins and leaves.
//
// The package sits in internal/ and not under repeater/ or feeds/: the
// repeater serves the swarms it is given and feeds fills the catalog;
// choosing among them is the daemon's policy, which draws on both (and on
// swarms the owner added by hand, which no feed knows).
//
// # Need score
//
// For a swarm with S seeders and D downloaders (peers that still want
// pieces), after the corrections below:
//
//	need  = D / (S + 1)                  demand per uploader, with us as the +1
//	reach = min(1, D / target_ratio)     few downloaders cannot repay a fetched piece
//	age   = 0.5 + 0.5·min(1, in_feed / settle)
//	score = need · reach · age
//
// S is the tracker's complete count. D is BEP 21's downloaders when the
// tracker sends it ([SourceDownloaders]), else its incomplete count
// ([SourceIncomplete]), which also counts partial seeds. The corrections:
//
//   - Ourselves. While we serve a swarm our own announce makes the tracker
//     count us as incomplete (and as a downloader until our first paused
//     announce reaches a BEP 21 tracker); that one is subtracted.
//   - Our observation. While we serve a swarm we see the bitfields of the
//     peers we are connected to: S is at least the seeds we see, D at
//     least the downloaders we see, and with the incomplete fallback the
//     partial seeds we see are taken out of D.
//   - Torznab. A torrent no tracker answers for may still have the
//     seeders and peers its feed gave ([SourceFeed]).
//
// # Decisions
//
// The autopilot serves the highest scores within its slots: the
// repeater's max_swarms less the swarms the owner added, which it never
// leaves. A swarm it serves is compared at its score times the
// hysteresis factor, is kept for min_stay after joining, and is kept when
// a round has no figures for it. A swarm in cooldown, without figures or
// below min_score is not joined.
package rank
