package repeater

import (
	"fmt"
	"log/slog"
	"math"
	"net/netip"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/time/rate"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/buildinfo"
)

// ClientOptions is what NewClient needs besides the [peer] section.
type ClientOptions struct {
	Peer    config.Peer
	Storage storage.ClientImpl // where piece data lives
	Logger  *slog.Logger
	// Trackers enables anacrolix's own announcer. The repeater runs its own
	// (BEP 21 rules), so this is only for plain downloads and tests.
	Trackers bool
}

// ClientConfig translates [peer] into an anacrolix client configuration.
func ClientConfig(o ClientOptions) (*torrent.ClientConfig, error) {
	p := o.Peer
	cc := torrent.NewDefaultClientConfig()
	host, port := p.Listen.Host(), p.Listen.Port()
	cc.ListenPort = port
	cc.DisableIPv6 = !p.IPv6
	// anacrolix listens once per address family with the same host, so a
	// host of one family turns the other off; "" or "::" means all.
	switch ip, err := netip.ParseAddr(host); {
	case host == "" || host == "::":
		host = ""
	case host == "localhost":
		host, cc.DisableIPv6 = "127.0.0.1", true
	case err == nil && ip.Is4():
		if ip.IsUnspecified() {
			host = ""
		}
		cc.DisableIPv6 = true
	case err == nil && ip.Is6():
		cc.DisableIPv4 = true
		if !p.IPv6 {
			return nil, fmt.Errorf("peer.listen %q is IPv6 but peer.ipv6 is false", p.Listen)
		}
	}
	cc.ListenHost = func(string) string { return host }
	cc.DefaultStorage = o.Storage
	// A repeater uploads to everyone interested; without Seed, anacrolix
	// serves a peer only while our upload <= download + 100 KiB.
	cc.Seed = true
	cc.NoDHT = !p.DHT
	cc.DisablePEX = !p.PEX
	cc.NoDefaultPortForwarding = !p.PortForwarding
	cc.DisableUTP = !p.UTP
	cc.DisableTrackers = !o.Trackers
	cc.DisableWebtorrent = true
	cc.DisableWebseeds = true
	cc.EstablishedConnsPerTorrent = p.MaxPeersPerTorrent
	switch p.Encryption {
	case "allow":
		// Plaintext first: the wire layer can only read unencrypted streams.
		cc.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{Preferred: false}
	case "prefer":
		cc.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{Preferred: true}
	case "require":
		cc.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{Preferred: true, RequirePreferred: true}
	default:
		return nil, fmt.Errorf("peer.encryption %q: unknown", p.Encryption)
	}
	cc.UploadRateLimiter = limiter(p.UploadLimit)
	cc.DownloadRateLimiter = limiter(p.DownloadLimit)
	cc.Bep20 = buildinfo.PeerIDPrefix
	cc.ExtendedHandshakeClientVersion = buildinfo.ClientName()
	cc.HTTPUserAgent = buildinfo.ClientName()
	if o.Logger != nil {
		cc.Slogger = o.Logger.With("component", "torrent")
	}
	return cc, nil
}

// NewClient starts an anacrolix client for the [peer] section.
func NewClient(o ClientOptions) (*torrent.Client, error) {
	cc, err := ClientConfig(o)
	if err != nil {
		return nil, err
	}
	cl, err := torrent.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("start BitTorrent client on %s: %w", o.Peer.Listen, err)
	}
	return cl, nil
}

func limiter(r config.Rate) *rate.Limiter {
	if r.Unlimited() {
		return rate.NewLimiter(rate.Inf, 0)
	}
	// Burst 0 lets anacrolix size it (one request's worth, 1 MiB up).
	return rate.NewLimiter(rate.Limit(math.Max(float64(r), 1)), 0)
}
