// Package feeds fetches torrent feeds on schedules — RSS/Atom/torznab,
// plain lists of .torrent URLs, magnets and a watch folder — validates what
// they bring and keeps the deduplicated catalog of torrents in the daemon's
// database.
//
// It is empty until the autopilot work lands; the [feeds] configuration
// section already parses and validates.
package feeds
