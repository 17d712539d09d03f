// Package feeds fetches torrent feeds on schedules — RSS/Atom/torznab,
// plain lists of .torrent URLs and magnet links, and watch folders —
// validates what they bring and keeps the deduplicated catalog of torrents
// in the daemon's database.
//
// # Feeds
//
// A feed is a config.Feed: a URL (kind "rss" for RSS 2.0, Atom or JSON
// Feed, including torznab/newznab indexers such as Jackett and Prowlarr;
// kind "list" for one .torrent URL, magnet link or info hash per line; ""
// to sniff the body) or a watch folder (kind "watch": *.torrent files and
// *.magnet text files, never modified or deleted). Feeds come from the
// configuration file or are added at run time (Service.Add), which keeps
// them in the database.
//
// Fetching is careful with the network and the machine: http(s) only, at
// most 5 redirects, a timeout per fetch, a User-Agent "btslave/VERSION",
// conditional GET (ETag / Last-Modified; 304 means nothing new), and caps on
// the feed body and each .torrent that stop reading at the cap. A .torrent
// is downloaded once per link, not at every run. A feed that came from a
// public address cannot redirect, or link a .torrent, to a loopback,
// private, link-local, CGNAT or multicast address: the dialer refuses the
// address a connection would reach (so a DNS name re-resolved to
// 127.0.0.1 is refused too), and the item or feed fails with
// ErrPrivateAddress. A feed served from a private address — the owner's
// own — may link anywhere; config.Feeds.AllowPrivateRedirects turns the
// check off.
//
// # Items and filters
//
// Each item of a feed is filtered on its title (include/exclude regular
// expressions), size, category and age, first with what the feed says and
// again once its .torrent or magnet link is known. Every decision carries
// a reason ("excluded by exclude /beta/ ...", "size 12 GiB over max
// 10 GiB"); Test reports them for a feed without storing anything. An item
// whose .torrent is bad fails alone, with the reason.
//
// # Catalog
//
// The Catalog holds one Entry per torrent, keyed by its v1 info hash (or
// v2 for a v2-only torrent): sightings of the same hybrid torrent by v1
// and by v2 hash are merged into one entry. An entry keeps the validated
// .torrent when one was fetched, so the daemon can join without fetching
// metadata from peers. Every change is a committed bbolt transaction; a
// kill -9 loses nothing committed.
//
// # Scheduler
//
// Service.Run fetches each feed on its cron schedule plus a random jitter,
// the first time within the jitter after the start. A failing feed is
// logged and retried with exponential backoff (1, 2, 4 ... minutes, at most
// its schedule interval or an hour) while the other feeds go on.
// Service.Status tells each feed's last fetch, item counts, last error and
// next run; Options.OnNew learns of each new catalog entry.
package feeds
