package config

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultTOML is the commented default configuration. It is the single
// source of the defaults: Default decodes it, and "btslave config init"
// writes it out.
//
//go:embed default.toml
var DefaultTOML []byte

// Config is the daemon's whole configuration.
type Config struct {
	// DataDir holds the database, the API token and cached pieces. Empty
	// means the XDG data directory.
	DataDir  string   `toml:"data_dir"`
	Log      Log      `toml:"log"`
	Peer     Peer     `toml:"peer"`
	Cache    Cache    `toml:"cache"`
	Feeds    Feeds    `toml:"feeds"`
	Repeater Repeater `toml:"repeater"`
	Auto     Auto     `toml:"auto"`
	Master   Master   `toml:"master"`
	Friends  Friends  `toml:"friends"`
	API      API      `toml:"api"`
	Tracker  Tracker  `toml:"tracker"`
	Publish  Publish  `toml:"publish"`
	Mount    Mount    `toml:"mount"`

	// File is the path the configuration was read from, "" when it is the
	// embedded defaults alone.
	File string `toml:"-"`
}

// Log configures the daemon's log/slog output.
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Peer configures the BitTorrent client.
type Peer struct {
	Listen             Addr   `toml:"listen"`
	UploadLimit        Rate   `toml:"upload_limit"`
	DownloadLimit      Rate   `toml:"download_limit"`
	DHT                bool   `toml:"dht"`
	PEX                bool   `toml:"pex"`
	PortForwarding     bool   `toml:"port_forwarding"`
	UTP                bool   `toml:"utp"`
	IPv6               bool   `toml:"ipv6"`
	Encryption         string `toml:"encryption"`
	MaxPeersPerTorrent int    `toml:"max_peers_per_torrent"`
	// CompressZstd and CompressLZ4 are the BEP 56 priorities (0 = off).
	CompressZstd int `toml:"compress_zstd"`
	CompressLZ4  int `toml:"compress_lz4"`
}

// Cache configures the bounded piece cache.
type Cache struct {
	Size     Size   `toml:"size"`
	Backend  string `toml:"backend"`
	Compress bool   `toml:"compress"`
}

// Feeds configures the torrent feed fetcher.
type Feeds struct {
	Schedule       Cron     `toml:"schedule"`
	Jitter         Duration `toml:"jitter"`
	MaxFeedSize    Size     `toml:"max_feed_size"`
	MaxTorrentSize Size     `toml:"max_torrent_size"`
	Timeout        Duration `toml:"timeout"`
	// AllowPrivateRedirects lets a feed fetched from a public address
	// redirect, and link .torrent files, to loopback, private and other
	// non-public addresses.
	AllowPrivateRedirects bool   `toml:"allow_private_redirects"`
	Feed                  []Feed `toml:"feed"`
}

// Feed is one source of torrents: an RSS/Atom/torznab feed or a list of
// .torrent URLs (URL), or a watch folder (Dir).
type Feed struct {
	Name     string   `toml:"name"`
	Kind     string   `toml:"kind"`
	URL      string   `toml:"url"`
	Dir      string   `toml:"dir"`
	Schedule Cron     `toml:"schedule"`
	Include  string   `toml:"include"`
	Exclude  string   `toml:"exclude"`
	MinSize  Size     `toml:"min_size"`
	MaxSize  Size     `toml:"max_size"`
	Category string   `toml:"category"`
	MaxAge   Duration `toml:"max_age"`
}

// Repeater configures how swarms are joined and left.
type Repeater struct {
	MaxSwarms     int      `toml:"max_swarms"`
	UploadLimit   Rate     `toml:"upload_limit"`
	DownloadLimit Rate     `toml:"download_limit"`
	SwarmCache    Size     `toml:"swarm_cache"`
	TargetRatio   float64  `toml:"target_ratio"`
	MinRatio      float64  `toml:"min_ratio"`
	VisitTime     Duration `toml:"visit_time"`
}

// Auto configures the autopilot: which swarms the daemon serves by itself,
// chosen by need from the feeds' catalog (docs/design.md, "Need score").
type Auto struct {
	Enabled bool `toml:"enabled"`
	// Interval is how often the catalog is scraped and ranked again.
	Interval Duration `toml:"interval"`
	// MinScore is the least need score worth joining.
	MinScore float64 `toml:"min_score"`
	// Hysteresis is how many times its score a newcomer must beat a swarm
	// the autopilot serves by before it takes its place (1 = none).
	Hysteresis float64 `toml:"hysteresis"`
	// MinStay is how long a swarm the autopilot joined is kept before it
	// may be left for a needier one.
	MinStay Duration `toml:"min_stay"`
	// Cooldown is how long a swarm left with nothing to do (or by the
	// owner) is not joined again.
	Cooldown Duration `toml:"cooldown"`
	// Settle is how long a catalog entry takes to reach full weight.
	Settle Duration `toml:"settle"`
	// Candidates is how many catalog entries, newest first, are ranked.
	Candidates int `toml:"candidates"`
	// ScrapeMaxAge is how long a scrape result is reused; 0 = never.
	ScrapeMaxAge Duration `toml:"scrape_max_age"`
	// ScrapeTimeout bounds one scrape request to one tracker.
	ScrapeTimeout Duration `toml:"scrape_timeout"`
	// ScrapeConcurrency is how many requests may be in flight to one
	// tracker; ScrapeRate how many may start per second (0 = no limit).
	ScrapeConcurrency int     `toml:"scrape_concurrency"`
	ScrapeRate        float64 `toml:"scrape_rate"`
}

// Master names the owner's own client.
type Master struct {
	Kind     string `toml:"kind"`
	URL      string `toml:"url"`
	Username string `toml:"username"`
	Password string `toml:"password"`
	// PasswordFile holds the password (or a btslave master's API token)
	// instead of Password; surrounding white space is dropped.
	PasswordFile string `toml:"password_file"`
	// Include and Exclude are regular expressions on torrent names;
	// Category keeps only torrents of that qBittorrent category or
	// Transmission label.
	Include  string `toml:"include"`
	Exclude  string `toml:"exclude"`
	Category string `toml:"category"`
	// PeerAddress is where the master accepts peers ("IP" or "IP:PORT")
	// when that is not the URL's host.
	PeerAddress string `toml:"peer_address"`
	// Linger is how long a helped swarm is kept after the master has
	// completed its torrent.
	Linger Duration `toml:"linger"`
}

// Friends configures friendship with other repeaters.
type Friends struct {
	Enabled bool `toml:"enabled"`
	Listen  Addr `toml:"listen"`
	// Address is what invite codes tell friends to dial; "" means listen.
	Address       string `toml:"address"`
	Accept        string `toml:"accept"` // ask | auto | never
	CreditLimit   Size   `toml:"credit_limit"`
	StarterCredit Size   `toml:"starter_credit"`
	AutoCashin    bool   `toml:"auto_cashin"`
	// CashinHelpers is how many friends a cash-in keeps asking for, best
	// balance first, until that many accepted.
	CashinHelpers int `toml:"cashin_helpers"`
	// StarvedRatio is how many downloaders per seed (as the master's
	// trackers scraped them) make auto_cashin call a swarm starved.
	StarvedRatio float64  `toml:"starved_ratio"`
	InviteTTL    Duration `toml:"invite_ttl"`
	// ReportInterval is how often bytes delivered to friends' masters
	// become IOU proposals.
	ReportInterval Duration `toml:"report_interval"`
	// EverseedBudget is the disk that friends' torrents may take when they
	// ask us to be a second everseed; 0 refuses every such request.
	EverseedBudget Size `toml:"everseed_budget"`
}

// API configures the local HTTP API.
type API struct {
	Listen Addr   `toml:"listen"`
	Token  string `toml:"token"`
}

// Tracker configures the embedded BitTorrent tracker (package tracker),
// which the daemon runs when Enabled and "btslave tracker" runs alone.
type Tracker struct {
	Enabled bool `toml:"enabled"`
	// HTTPListen and UDPListen are listen addresses; "" turns that
	// protocol off.
	HTTPListen string `toml:"http_listen"`
	UDPListen  string `toml:"udp_listen"`
	// PublicURL is the announce URL peers use; "" derives one.
	PublicURL string `toml:"public_url"`
	// Whitelist is a file of info-hashes to serve; Open serves any.
	// Exactly one of them is set when the tracker is enabled.
	Whitelist string `toml:"whitelist"`
	Open      bool   `toml:"open"`
	// Interval is the announce interval; peers expire after two.
	Interval Duration `toml:"interval"`
	// RatePerIP limits announces and scrapes per address and second.
	RatePerIP float64 `toml:"rate_per_ip"`
	// SyncListen, SyncPeers ("ip:port" each), SyncKey and SyncMulticast
	// configure tracker-to-tracker sync (docs/tracker-sync.md).
	SyncListen    string   `toml:"sync_listen"`
	SyncPeers     []string `toml:"sync_peers"`
	SyncKey       string   `toml:"sync_key"`
	SyncMulticast bool     `toml:"sync_multicast"`
}

// Publish is the [publish] section: where published torrents are hosted.
type Publish struct {
	// Listen is the public, read-only HTTP listener serving
	// /t/<infohash>.torrent and /feed.xml; "" turns it off.
	Listen string `toml:"listen"`
	// FeedTitle names the feed.
	FeedTitle string `toml:"feed_title"`
}

// Error is one problem in a configuration file.
type Error struct {
	File   string // "" for the embedded defaults
	Line   int    // 0 when the key is not in the file (a default)
	Key    string // dotted key, e.g. "peer.listen" or "feeds.feed[1].url"
	Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	file := e.File
	if file == "" {
		file = "(defaults)"
	}
	b.WriteString(file)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Reason)
	return b.String()
}

// Errors is every problem found in one file; it is returned whole so that
// the user can fix them all in one go.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Default returns the embedded defaults.
func Default() *Config {
	c := new(Config)
	if _, err := toml.Decode(string(DefaultTOML), c); err != nil {
		panic("config: embedded defaults do not parse: " + err.Error())
	}
	return c
}

// Load reads and validates the file at path on top of the defaults.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes data (named file in errors) on top of the defaults and
// validates the result. Its errors are of type Errors.
func Parse(file string, data []byte) (*Config, error) {
	c := Default()
	c.File = file
	loc := locateKeys(data)
	md, err := toml.Decode(string(data), c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, Errors{{File: file, Line: pe.Position.Line, Key: pe.LastKey, Reason: pe.Message}}
		}
		return nil, Errors{decodeError(file, err)}
	}
	var errs Errors
	unknown := map[string]bool{}
	for _, k := range md.Undecoded() {
		key := k.String()
		unknown[key] = true
		if len(k) > 1 && unknown[k[:len(k)-1].String()] {
			continue // the whole table is unknown; say it once
		}
		errs = append(errs, &Error{File: file, Line: loc.line(key), Key: key, Reason: "unknown key" + suggest(key)})
	}
	for _, p := range c.prepare() {
		p.File, p.Line = file, loc.line(p.Key)
		errs = append(errs, p)
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}
	return c, nil
}

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

// MasterPassword is [master] password, or the content of password_file.
func (m Master) MasterPassword() (string, error) {
	if m.PasswordFile == "" {
		return m.Password, nil
	}
	b, err := os.ReadFile(m.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("master.password_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
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

// Redacted returns a copy with secrets replaced, for printing.
func (c *Config) Redacted() *Config {
	r := *c
	r.Feeds.Feed = append([]Feed(nil), c.Feeds.Feed...)
	if r.API.Token != "" {
		r.API.Token = "(set)"
	}
	if r.Master.Password != "" {
		r.Master.Password = "(set)"
	}
	r.Tracker.SyncPeers = append([]string(nil), c.Tracker.SyncPeers...)
	if r.Tracker.SyncKey != "" {
		r.Tracker.SyncKey = "(set)"
	}
	return &r
}

// Encode writes the configuration as TOML.
func (c *Config) Encode() ([]byte, error) {
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return []byte(b.String()), nil
}

// decodeErrRe matches the errors toml returns as plain text (type
// mismatches): "toml: line 2 (last key "peer.dht"): incompatible types…".
var decodeErrRe = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)

func decodeError(file string, err error) *Error {
	m := decodeErrRe.FindStringSubmatch(err.Error())
	if m == nil {
		return &Error{File: file, Reason: err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	return &Error{File: file, Line: line, Key: m[2], Reason: m[3]}
}

func quoteAll(s []string) []string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return q
}
