package repeater

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/time/rate"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/buildinfo"
	"github.com/btslave/btslave/repeater/wire"
)

// ClientOptions is what NewClient needs besides the [peer] section.
type ClientOptions struct {
	Peer    config.Peer
	Storage storage.ClientImpl // where piece data lives
	Logger  *slog.Logger
	// Trackers enables anacrolix's own announcer. The repeater runs its own
	// (BEP 21 rules), so this is only for plain downloads and tests.
	Trackers bool
	// BareTCP leaves the wire layer out and lets anacrolix use its own TCP
	// sockets: only for measuring what the wire layer costs.
	BareTCP bool
	// Pieces answers the wire layer's questions (do we hold a piece, is a
	// torrent a partial seed). Nil means "ask the client": a piece is held
	// when the client has it complete, and no torrent is a partial seed.
	Pieces wire.Pieces
	// CachedZstd says the storage holds pieces as zstd frames (cache.compress)
	// and Pieces hands them out (wire.Frames): we advertise cp = zstd and
	// send those frames as they are.
	CachedZstd bool
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
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		// Announce from the address we listen on, so that trackers list
		// us where peers can reach us.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
		cc.TrackerDialContext = d.DialContext
		cc.TrackerListenPacket = func(network, _ string) (net.PacketConn, error) {
			return net.ListenPacket(network, net.JoinHostPort(host, "0"))
		}
	}
	cc.DefaultStorage = o.Storage
	// A repeater uploads to everyone interested; without Seed, anacrolix
	// serves a peer only while our upload <= download + 100 KiB.
	cc.Seed = true
	cc.NoDHT = !p.DHT
	cc.DisablePEX = !p.PEX
	cc.NoDefaultPortForwarding = !p.PortForwarding
	cc.DisableUTP = !p.UTP
	// TCP goes through the wire layer (NewClient adds its listener and
	// dialers); the built-in TCP dialers would race ours.
	cc.DisableTCP = !o.BareTCP
	cc.DisableTrackers = !o.Trackers
	cc.DisableWebtorrent = true
	cc.DisableWebseeds = true
	cc.EstablishedConnsPerTorrent = p.MaxPeersPerTorrent
	// anacrolix v1.61's peer writer can miss a wake-up and then sleep until
	// its keep-alive timer (1 minute by default), stalling downloads from
	// a peer that is unchoking us. A short timer bounds the stall; the cost
	// is a 4-byte keep-alive every few idle seconds.
	cc.KeepAliveTimeout = 5 * time.Second
	// A partial seed may hold nothing for a while and still wants to hear
	// who needs what.
	cc.AlwaysWantConns = true
	// With "allow" and "prefer" the wire layer does incoming MSE itself
	// (see NewClient), so the library sees every incoming stream as
	// plaintext and must accept it. Outgoing, the library encrypts only
	// when told to prefer it; such connections are opaque to the wire
	// layer, as is everything under "require", which the library alone
	// can enforce both ways.
	switch p.Encryption {
	case "off", "allow":
		cc.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{Preferred: false}
	case "prefer":
		cc.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{Preferred: true}
	case "require":
		// The library must accept the incoming connections the wire layer
		// decrypted (they look plaintext to it), so it is told to prefer;
		// the layer refuses every plaintext connection itself.
		cc.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{Preferred: true, RequirePreferred: o.BareTCP}
	default:
		return nil, fmt.Errorf("peer.encryption %q: unknown", p.Encryption)
	}
	cc.UploadRateLimiter = limiter(p.UploadLimit)
	// nil, not an infinite limiter: anacrolix opens no connections while
	// the download limiter has no tokens, and rate.Inf with burst 0 has none.
	cc.DownloadRateLimiter = nil
	if !p.DownloadLimit.Unlimited() {
		cc.DownloadRateLimiter = limiter(p.DownloadLimit)
	}
	cc.Bep20 = buildinfo.PeerIDPrefix
	cc.ExtendedHandshakeClientVersion = buildinfo.ClientName()
	cc.HTTPUserAgent = buildinfo.ClientName()
	if o.Logger != nil {
		cc.Slogger = guardLogger(o.Logger.With("component", "torrent"))
	}
	// A connection's request window starts deep instead of at one request
	// (see requestwindow.go); chained, so callbacks set before stay.
	installRequestWindow(cc, o.Logger)
	return cc, nil
}

// Client is the daemon's BitTorrent client with the wire layer under it.
type Client struct {
	*torrent.Client
	Wire     *wire.Layer
	listener *wire.Listener
}

// NewClient starts an anacrolix client for the [peer] section, with every
// TCP connection passing through the wire layer.
func NewClient(o ClientOptions) (*Client, error) {
	cc, err := ClientConfig(o)
	if err != nil {
		return nil, err
	}
	c := &Client{}
	if o.BareTCP {
		if c.Client, err = torrent.NewClient(cc); err != nil {
			return nil, fmt.Errorf("start BitTorrent client on %s: %w", o.Peer.Listen, err)
		}
		c.Wire = wire.New(clientPieces{c}) // sees nothing: no conn passes through it
		return c, nil
	}
	pieces := o.Pieces
	if pieces == nil {
		pieces = clientPieces{c}
	}
	c.Wire = wire.New(pieces)
	comp := wire.CompressOptions{Zstd: o.Peer.CompressZstd, LZ4: o.Peer.CompressLZ4}
	if _, frames := pieces.(wire.Frames); frames && o.CachedZstd && comp.Zstd > 0 {
		comp.Preferred = "zstd"
	}
	if err := c.Wire.Compress(comp); err != nil {
		return nil, fmt.Errorf("peer compression: %w", err)
	}
	switch o.Peer.Encryption {
	case "off":
		c.Wire.RefuseEncrypted(true)
	case "require":
		c.Wire.RequireEncrypted(true)
		fallthrough
	case "allow", "prefer":
		c.Wire.Decrypt(func(yield func(skey []byte) bool) {
			for _, t := range c.Client.Torrents() {
				ih := t.InfoHash()
				if !yield(ih[:]) {
					return
				}
			}
		})
	}

	host := cc.ListenHost("tcp")
	network := "tcp"
	switch {
	case cc.DisableIPv6:
		network = "tcp4"
	case cc.DisableIPv4:
		network = "tcp6"
	}
	// Listen first, so that a taken port fails before anything starts.
	c.listener, err = c.Wire.Listen(network, net.JoinHostPort(host, strconv.Itoa(cc.ListenPort)))
	if err != nil {
		return nil, fmt.Errorf("listen for peers on %s: %w", o.Peer.Listen, err)
	}
	port := c.listener.Addr().(*net.TCPAddr).Port
	if cc.ListenPort == 0 && !cc.DisableUTP {
		cc.ListenPort = port // keep uTP on the same port as TCP
	}
	// Connections the layer cannot read (the library's own outgoing MSE,
	// uTP) still reach the library's handshake parser: it is shown only
	// the extensions it implements (it records every name in a
	// process-wide map), and never a metadata size, so that it never
	// fetches metadata itself: it decodes metadata before checking its
	// hash, with a recursive decoder (see repeater/wire/metadata.go).
	cc.Callbacks.ReadExtendedHandshake = func(_ *torrent.PeerConn, d *pp.ExtendedHandshakeMessage) {
		d.MetadataSize = 0
		for name := range d.M {
			if !wire.LibraryExtension(string(name)) {
				delete(d.M, name)
			}
		}
		if len(d.V) > 64 {
			d.V = d.V[:64]
		}
	}
	// Why the library dropped a peer, for the debug log: it says so
	// nowhere else (a close is otherwise silent).
	peerLog := cmp.Or(o.Logger, slog.Default()).With("component", "torrent")
	cc.Callbacks.StatusUpdated = append(cc.Callbacks.StatusUpdated, func(e torrent.StatusUpdatedEvent) {
		if e.Event == torrent.PeerDisconnected && e.Error != nil {
			peerLog.Debug("peer connection closed", "peer_id", fmt.Sprintf("%q", e.PeerId[:8]), "err", e.Error)
		}
	})
	c.Client, err = torrent.NewClient(cc)
	if err != nil {
		c.listener.Close()
		return nil, fmt.Errorf("start BitTorrent client on %s: %w", o.Peer.Listen, err)
	}
	c.AddListener(c.listener)
	// Metadata from peers reaches the library only once checked (see
	// repeater/wire/metadata.go).
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	c.Wire.OnInfo(func(ih metainfo.Hash, info []byte) {
		t, ok := c.Client.Torrent(ih)
		if !ok || t.Info() != nil {
			return
		}
		if err := t.SetInfoBytes(info); err != nil {
			log.Warn("metadata from peers", "infohash", ih.HexString(), "err", err)
		}
	})
	var local net.IP
	if host != "" {
		local = net.ParseIP(host)
	}
	if !cc.DisableIPv4 {
		c.AddDialer(c.Wire.Dialer("tcp4", localTCP(local, true)))
	}
	if !cc.DisableIPv6 {
		c.AddDialer(c.Wire.Dialer("tcp6", localTCP(local, false)))
	}
	return c, nil
}

// Close stops the client and its listener.
func (c *Client) Close() {
	c.Client.Close()
	if c.listener != nil {
		c.listener.Close()
	}
}

// LocalPort is the TCP port peers reach us on.
func (c *Client) LocalPort() int {
	if c.listener == nil {
		return c.Client.LocalPort()
	}
	return c.listener.Addr().(*net.TCPAddr).Port
}

// localTCP is the address outgoing connections of one family leave from:
// the listen address when it is of that family, so peers (and trackers)
// see the address we listen on.
func localTCP(ip net.IP, v4 bool) net.Addr {
	if ip == nil || ip.IsUnspecified() || (ip.To4() != nil) != v4 {
		return nil
	}
	return &net.TCPAddr{IP: ip}
}

// clientPieces answers the wire layer from the client's own view, for
// torrents stored outside the bounded cache.
type clientPieces struct{ c *Client }

func (p clientPieces) torrent(ih metainfo.Hash) *torrent.Torrent {
	if p.c.Client == nil {
		return nil
	}
	t, ok := p.c.Torrent(ih)
	if !ok || t.Info() == nil {
		return nil
	}
	return t
}

func (p clientPieces) Has(ih metainfo.Hash, piece int) bool {
	t := p.torrent(ih)
	return t != nil && piece >= 0 && piece < t.NumPieces() && t.Piece(piece).State().Complete
}
func (clientPieces) Requested(metainfo.Hash, int)   {}
func (clientPieces) PartialSeed(metainfo.Hash) bool { return false }
func (p clientPieces) NumPieces(ih metainfo.Hash) int {
	if t := p.torrent(ih); t != nil {
		return t.NumPieces()
	}
	return 0
}

func limiter(r config.Rate) *rate.Limiter {
	if r.Unlimited() {
		return rate.NewLimiter(rate.Inf, 0)
	}
	// Burst 0 lets anacrolix size it (one request's worth, 1 MiB up).
	return rate.NewLimiter(rate.Limit(math.Max(float64(r), 1)), 0)
}

// PieceLength implements wire.PieceLengths.
func (p clientPieces) PieceLength(ih metainfo.Hash, piece int) (lib, v1 int64) {
	return pieceLength(ih, func() *torrent.Torrent { return p.torrent(ih) }, piece)
}
