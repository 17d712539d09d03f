// Package btslave is the master adapter for another btslave daemon, over
// its local HTTP API (GET /api/v1/status with its token).
//
// The torrents such a master "downloads" are the swarms its owner had it
// join (origin "owner") whose pieces it does not all hold; it gives no
// bitfield over the API, so the helper follows its bitfield on the wire.
package btslave

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/master"
)

// Options configures a Client.
type Options struct {
	URL   string // the daemon's API, e.g. http://127.0.0.1:7979
	Token string // its api.token ([master] password or password_file)
	// PeerAddress overrides the master's peer address ("IP" or "IP:PORT");
	// default the URL's host with the peer port the daemon reports.
	PeerAddress string
}

// Client talks to one btslave daemon.
type Client struct {
	o   Options
	api *api.Client
}

// New makes a Client.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("btslave master url %q: not http://host:port", o.URL)
	}
	return &Client{o: o, api: api.NewClient(u.Host, o.Token)}, nil
}

// Kind is "btslave".
func (*Client) Kind() string { return "btslave" }

func (c *Client) status(ctx context.Context) (*api.Status, error) {
	st, err := c.api.Status(ctx)
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, api.ErrUnauthorized):
		return nil, fmt.Errorf("btslave master: %w (set [master] password to its api.token)", master.ErrAuth)
	case errors.Is(err, api.ErrNotRunning), ctx.Err() != nil:
		return nil, master.Unreachable(ctx, err)
	case strings.Contains(err.Error(), "bad JSON"):
		return nil, master.Garbage("btslave master", err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return nil, master.Unreachable(ctx, err)
	}
	return nil, master.Garbage("btslave master", err)
}

// PeerAddr is the daemon's peer port on the URL's host (or PeerAddress).
func (c *Client) PeerAddr(ctx context.Context) (netip.AddrPort, error) {
	st, err := c.status(ctx)
	if err != nil {
		return netip.AddrPort{}, err
	}
	host := c.o.PeerAddress
	if host == "" {
		if h, _, err := net.SplitHostPort(st.Peer.Listen); err == nil {
			if a, err := netip.ParseAddr(h); err == nil && !a.IsUnspecified() {
				host = a.String()
			}
		}
	}
	return master.PeerAddress(ctx, master.HostOf(c.o.URL, host), st.Peer.Port)
}

// Downloading lists the owner's swarms the daemon does not hold whole.
func (c *Client) Downloading(ctx context.Context) ([]master.Torrent, error) {
	st, err := c.status(ctx)
	if err != nil {
		return nil, err
	}
	return Torrents(st), nil
}

// Torrents picks the owner's incomplete swarms of a status.
func Torrents(st *api.Status) []master.Torrent {
	var out []master.Torrent
	for _, t := range st.Torrents {
		ih := strings.ToLower(t.InfoHash)
		if t.Origin != "owner" || len(ih) != 40 || (t.Pieces > 0 && t.PiecesHeld >= t.Pieces) {
			continue
		}
		p := 0.0
		if t.Pieces > 0 {
			p = float64(t.PiecesHeld) / float64(t.Pieces)
		}
		out = append(out, master.Torrent{InfoHash: ih, Name: t.Name, Magnet: master.Magnet(ih, t.Name),
			NumPieces: t.Pieces, Progress: p})
	}
	return out
}
