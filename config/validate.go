package config

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Validation: what each key may hold, checked once, every error reported
// with its key.

// Validate checks a configuration built in code (tests, defaults).
func (c *Config) Validate() error {
	if errs := c.prepare(); len(errs) > 0 {
		return errs
	}
	return nil
}

// prepare normalises and checks the configuration, returning every problem.
// Values that only make sense within others are clamped, not refused.
func (c *Config) prepare() Errors {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	oneOf := func(key, v string, allowed ...string) {
		for _, a := range allowed {
			if v == a {
				return
			}
		}
		bad(key, "%q is not one of %s", v, strings.Join(quoteAll(allowed), ", "))
	}

	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "text", "json")

	if c.Peer.Listen == "" {
		bad("peer.listen", "must be set, e.g. \"0.0.0.0:6881\"")
	}
	if c.Peer.UploadLimit < 0 || c.Peer.DownloadLimit < 0 {
		bad("peer.upload_limit", "rates must not be negative")
	}
	oneOf("peer.encryption", c.Peer.Encryption, "off", "allow", "prefer", "require")
	if c.Peer.MaxPeersPerTorrent < 1 || c.Peer.MaxPeersPerTorrent > 10000 {
		bad("peer.max_peers_per_torrent", "%d is outside 1..10000", c.Peer.MaxPeersPerTorrent)
	}
	for key, v := range map[string]int{"peer.compress_zstd": c.Peer.CompressZstd, "peer.compress_lz4": c.Peer.CompressLZ4} {
		if v < 0 || v > 255 {
			bad(key, "%d is outside 0..255 (0 turns it off)", v)
		}
	}

	if c.Cache.Size < 1<<20 {
		bad("cache.size", "%v is below the minimum of 1MiB", c.Cache.Size)
	}
	oneOf("cache.backend", c.Cache.Backend, "memory", "file")

	if c.Feeds.MaxFeedSize <= 0 {
		bad("feeds.max_feed_size", "must be positive")
	}
	if c.Feeds.MaxTorrentSize <= 0 {
		bad("feeds.max_torrent_size", "must be positive")
	}
	if c.Feeds.Timeout <= 0 {
		bad("feeds.timeout", "must be positive")
	}
	names := map[string]int{}
	for i := range c.Feeds.Feed {
		f := &c.Feeds.Feed[i]
		k := fmt.Sprintf("feeds.feed[%d].", i)
		switch {
		case f.URL == "" && f.Dir == "":
			bad(k+"url", "a feed needs url (RSS/Atom/torznab or a list of .torrent URLs) or dir (a watch folder)")
		case f.URL != "" && f.Dir != "":
			bad(k+"dir", "set url or dir, not both")
		case f.URL != "":
			if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(k+"url", "%q is not an http(s) URL", f.URL)
			}
		}
		if f.Kind == "" {
			f.Kind = "rss"
			if f.Dir != "" {
				f.Kind = "watch"
			}
		}
		oneOf(k+"kind", f.Kind, "rss", "list", "watch")
		if f.Name == "" {
			f.Name = f.URL + f.Dir
		}
		if j, dup := names[f.Name]; dup {
			bad(k+"name", "%q is already the name of feeds.feed[%d]", f.Name, j)
		}
		names[f.Name] = i
		if f.Schedule == "" {
			f.Schedule = c.Feeds.Schedule
		}
		for _, re := range []struct{ key, expr string }{{"include", f.Include}, {"exclude", f.Exclude}} {
			if _, err := regexp.Compile(re.expr); err != nil {
				bad(k+re.key, "bad regular expression: %v", err)
			}
		}
		if f.MaxSize > 0 && f.MinSize > f.MaxSize {
			bad(k+"min_size", "%v is larger than max_size %v", f.MinSize, f.MaxSize)
		}
	}

	if c.Repeater.MaxSwarms < 0 || c.Repeater.MaxSwarms > 1000 {
		bad("repeater.max_swarms", "%d is outside 0..1000", c.Repeater.MaxSwarms)
	}
	if c.Repeater.SwarmCache <= 0 {
		bad("repeater.swarm_cache", "must be positive")
	} else if c.Repeater.SwarmCache > c.Cache.Size {
		c.Repeater.SwarmCache = c.Cache.Size
	}
	if c.Repeater.TargetRatio <= 0 {
		bad("repeater.target_ratio", "must be positive, e.g. 4.0")
	}
	if c.Repeater.MinRatio < 0 {
		bad("repeater.min_ratio", "must not be negative")
	}
	if c.Repeater.VisitTime <= 0 {
		bad("repeater.visit_time", "must be positive, e.g. \"6h\"")
	}

	c.prepareAuto(bad)
	c.prepareTracker(bad)

	oneOf("master.kind", c.Master.Kind, "", "transmission", "qbittorrent", "btslave")
	if c.Master.Kind != "" {
		if u, err := url.Parse(c.Master.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("master.url", "%q is not an http(s) URL; master.kind %q needs one", c.Master.URL, c.Master.Kind)
		}
	}
	c.prepareMaster(bad)
	c.prepareFriends(bad)
	c.prepareMount(bad)

	if c.API.Listen == "" {
		bad("api.listen", "must be set, e.g. \"127.0.0.1:7979\"")
	} else if !c.API.Listen.IsLoopback() && c.API.Token == "" {
		bad("api.listen", "%q is not a loopback address; set api.token to expose the API beyond this machine", c.API.Listen)
	}
	if c.API.Token != "" && len(c.API.Token) < 16 {
		bad("api.token", "is %d characters; use at least 16", len(c.API.Token))
	}
	return errs
}

// prepareMaster checks [master] beyond kind and url.
func (c *Config) prepareMaster(bad func(key, format string, args ...any)) {
	m := &c.Master
	if m.Password != "" && m.PasswordFile != "" {
		bad("master.password_file", "is set together with master.password; keep one of them")
	}
	for _, re := range []struct{ key, v string }{{"master.include", m.Include}, {"master.exclude", m.Exclude}} {
		if _, err := regexp.Compile(re.v); err != nil {
			bad(re.key, "%q is not a regular expression: %v", re.v, err)
		}
	}
	if a := m.PeerAddress; a != "" {
		if _, err := netip.ParseAddr(a); err != nil {
			if _, err := netip.ParseAddrPort(a); err != nil {
				bad("master.peer_address", "%q is neither an IP nor IP:PORT, e.g. \"192.168.1.10\" or \"192.168.1.10:51413\"", a)
			}
		}
	}
	if m.Linger < 0 {
		bad("master.linger", "must not be negative, e.g. \"10m\"")
	}
}

// prepareAuto checks [auto].
func (c *Config) prepareAuto(bad func(key, format string, args ...any)) {
	a := &c.Auto
	if a.Interval.Std() < time.Second {
		bad("auto.interval", "%v is below the minimum of 1s; e.g. \"5m\"", a.Interval)
	}
	if a.MinScore < 0 || math.IsNaN(a.MinScore) {
		bad("auto.min_score", "must not be negative, e.g. 0.5")
	}
	if a.Hysteresis < 1 || math.IsNaN(a.Hysteresis) {
		bad("auto.hysteresis", "%v is below 1; 1 switches on any better score, 1.5 needs a newcomer 50%% needier", a.Hysteresis)
	}
	if a.Candidates < 1 || a.Candidates > 100000 {
		bad("auto.candidates", "%d is outside 1..100000", a.Candidates)
	}
	if a.ScrapeTimeout <= 0 {
		bad("auto.scrape_timeout", "must be positive, e.g. \"15s\"")
	}
	if a.ScrapeConcurrency < 1 || a.ScrapeConcurrency > 64 {
		bad("auto.scrape_concurrency", "%d is outside 1..64", a.ScrapeConcurrency)
	}
	if a.ScrapeRate < 0 || math.IsNaN(a.ScrapeRate) || math.IsInf(a.ScrapeRate, 0) {
		bad("auto.scrape_rate", "must be a number of requests per second, 0 for no limit")
	}
}

// prepareTracker checks [tracker]. Its listen addresses, URL and sync
// peers are checked even when it is off, so that turning it on later
// brings no surprise.
func (c *Config) prepareTracker(bad func(key, format string, args ...any)) {
	tr := &c.Tracker
	for _, l := range []struct{ key, v string }{{"tracker.http_listen", tr.HTTPListen}, {"tracker.udp_listen", tr.UDPListen}, {"tracker.sync_listen", tr.SyncListen}} {
		if l.v != "" {
			if _, err := ParseAddr(l.v); err != nil {
				bad(l.key, "%v", err)
			}
		}
	}
	if tr.PublicURL != "" {
		if u, err := url.Parse(tr.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "udp") || u.Host == "" {
			bad("tracker.public_url", "%q is not an http(s) or udp announce URL, e.g. \"http://tracker.example.org:6969/announce\"", tr.PublicURL)
		}
	}
	if tr.Interval.Std() < time.Second {
		bad("tracker.interval", "%v is below the minimum of 1s; e.g. \"30m\"", tr.Interval)
	}
	if tr.RatePerIP < 0 || math.IsNaN(tr.RatePerIP) || math.IsInf(tr.RatePerIP, 0) {
		bad("tracker.rate_per_ip", "must be a number of requests per second, 0 for no limit")
	}
	for i, p := range tr.SyncPeers {
		if ap, err := netip.ParseAddrPort(p); err != nil || ap.Port() == 0 {
			bad(fmt.Sprintf("tracker.sync_peers[%d]", i), "%q is not an ip:port, e.g. \"192.0.2.7:9696\"", p)
		}
	}
	if tr.SyncKey != "" && len(tr.SyncKey) < 16 {
		bad("tracker.sync_key", "is %d characters; use at least 16 (every tracker of the group needs the same key)", len(tr.SyncKey))
	}
	syncing := len(tr.SyncPeers) > 0 || tr.SyncMulticast
	if syncing && tr.SyncListen == "" {
		bad("tracker.sync_listen", "must be set to sync with other trackers, e.g. \":9696\"")
	}
	if tr.SyncMulticast && tr.SyncKey == "" && len(tr.SyncPeers) == 0 {
		bad("tracker.sync_multicast", "without sync_key only packets from sync_peers are taken, and there are none; set sync_key")
	}
	if tr.SyncMulticast && tr.SyncListen != "" {
		if a := Addr(tr.SyncListen); a.Port() != 9696 || strings.Contains(a.Host(), ":") {
			bad("tracker.sync_listen", "%q: sync_multicast needs an IPv4 (or empty) host and port 9696, the group's port", tr.SyncListen)
		}
	}
	if !tr.Enabled {
		return
	}
	if tr.HTTPListen == "" && tr.UDPListen == "" {
		bad("tracker.http_listen", "the tracker needs http_listen, udp_listen or both")
	}
	switch {
	case tr.Whitelist == "" && !tr.Open:
		bad("tracker.whitelist", "set a whitelist file of the torrents to serve, or open = true to serve any torrent")
	case tr.Whitelist != "" && tr.Open:
		bad("tracker.open", "set whitelist or open, not both")
	}
}
