package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

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
