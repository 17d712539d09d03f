// Package lab starts real BitTorrent programs on loopback for interop tests.
//
// Every helper takes a testing.TB, works in t.TempDir() directories, writes
// each program's complete configuration before its first start, and stops
// the program in the test's cleanup. Nothing a program does may leave
// 127.0.0.0/8: DHT, LSD, PEX, UPnP/NAT-PMP and uTP are off, every listener
// is bound to a loopback address, and every program runs under the
// loopback guard.
//
// # Helpers
//
//   - [Require] skips a test when a program is missing, or fails it when
//     the environment variable CI is set.
//   - [NextAddr] hands out distinct loopback addresses (127.A.B.2, .3, …);
//     [FreePort] and [FreeUDPPort] find free ports on one.
//   - [MakeTorrent] writes random or text-like data and a v1 .torrent;
//     [VerifyFile] compares two files by SHA-256.
//   - [StartOpentracker]: HTTP and UDP tracker, with [Opentracker.Whitelist],
//     [Opentracker.Announce] and [Opentracker.Scrape].
//   - [StartTransmission]: transmission-daemon with an RPC client
//     (AddTorrent, Torrent, WaitComplete, SetLimits, Reannounce, Remove).
//   - [StartAria2]: aria2c on one torrent; [Aria2.WaitDone].
//   - [StartLibtorrent]: a python3-libtorrent session on one torrent, which
//     reports its status, the extended handshakes it sees and completion.
//   - [StartQBittorrent]: qbittorrent-nox with a WebUI API v2 client.
//   - [DialPeer] is a scripted raw BitTorrent peer; [SayFriendHello] uses
//     one to play another owner's repeater met in a swarm (bts_friends).
//   - [Listeners] lists the sockets a process listens on; [GuardRefusals]
//     reads a guard log; [GuardCommand] runs any command under the guard.
//
// Rates (UploadLimit, DownloadLimit) are in bytes per second everywhere;
// 0 means no limit. Each helper converts to its program's unit.
//
// # Loopback guard
//
// The guard is a small LD_PRELOAD library (csrc/guard.c), compiled with gcc
// once per test process into the user's cache dir. It wraps connect,
// sendto, sendmsg and sendmmsg: a destination outside 127.0.0.0/8, ::1 and
// ::ffff:127.0.0.0/104 fails with ENETUNREACH and is logged to the file
// named by BTSLAVE_GUARD_LOG. AF_UNIX, AF_UNSPEC, AF_NETLINK and sends on
// connected sockets pass. The test fails if a program's guard log holds a
// refusal its helper was not told to expect (transmission-daemon's IPv6
// probe, [TransmissionProbeAddr], is expected), or if the program listens
// on a non-loopback address, checked at start and again at cleanup. In a
// network namespace of the run's own ([NetnsEnv]) the namespace's prefix
// counts as loopback for both.
// Calls glibc makes internally (its DNS resolver) bypass the guard: the
// lab uses numeric addresses only.
//
// # Processes
//
// Programs run in their own process group, with HOME and the XDG
// directories inside their private directory and proxy variables removed.
// At cleanup all programs of a test get SIGTERM at once, then SIGKILL
// after a few seconds; Pdeathsig kills them if the test binary dies. Each
// program's output goes to files in its directory; when the test failed,
// the last lines of each are logged.
//
// # Caveats
//
//   - Transmission never dials peers in 127.0.0.0/8; it only accepts them.
//     Start it before the peers that should find it, or have them dial it.
//     It keys peers by IP and waits about 10 s before its first unchoke.
//   - libtorrent exempts local peers from rate limits; the session script
//     maps every address to the global peer class so that limits apply.
//   - aria2 speaks the UDP tracker protocol only with DHT on, so here it
//     needs HTTP announce URLs.
//   - opentracker reads its whitelist only on SIGHUP once chrooted, and
//     does not decode "+" in query strings (use [Opentracker.Announce]).
package lab
