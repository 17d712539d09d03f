package qbittorrent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/btslave/btslave/master"
)

// Options configures a Client.
type Options struct {
	URL                string // the WebUI, e.g. http://127.0.0.1:8080
	Username, Password string
	// PeerAddress overrides the master's peer address ("IP" or "IP:PORT");
	// default the interface address qBittorrent is bound to, else the URL's
	// host, with its listen_port.
	PeerAddress string
	HTTP        *http.Client // default one with a 20s timeout and a cookie jar
}

// Client talks to one qbittorrent-nox.
type Client struct {
	o    Options
	base string

	mu       sync.Mutex
	loggedIn bool
	version  Version
	meta     map[string][]byte // .torrent by info hash, exported once
}

// New makes a Client; nothing is sent until the first call.
func New(o Options) *Client {
	if o.HTTP == nil {
		jar, _ := cookiejar.New(nil)
		o.HTTP = &http.Client{Timeout: 20 * time.Second, Jar: jar}
	} else if o.HTTP.Jar == nil {
		jar, _ := cookiejar.New(nil)
		cp := *o.HTTP
		cp.Jar = jar
		o.HTTP = &cp
	}
	return &Client{o: o, base: strings.TrimRight(o.URL, "/"), meta: map[string][]byte{}}
}

// Kind is "qbittorrent".
func (*Client) Kind() string { return "qbittorrent" }

// WebAPIVersion is the WebAPI version reported at login (zero before).
func (c *Client) WebAPIVersion() Version {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// errRelogin marks a 403 on an API call: the session cookie is gone.
var errRelogin = fmt.Errorf("qbittorrent: session expired")

// send does one request with the Referer and Origin headers and returns
// the body of a 200 reply.
func (c *Client) send(ctx context.Context, method, path string, form url.Values) (int, []byte, error) {
	var body io.Reader
	u := c.base + path
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else if len(form) > 0 {
		u += "?" + form.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil, fmt.Errorf("qbittorrent %q: %w", c.o.URL, err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Referer", c.base+"/")
	req.Header.Set("Origin", c.base)
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		return 0, nil, master.Unreachable(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, master.MaxReply+1))
	if err != nil {
		return 0, nil, master.Unreachable(ctx, err)
	}
	if len(data) > master.MaxReply {
		return 0, nil, master.Garbage("qbittorrent "+path, fmt.Errorf("reply over %d bytes", master.MaxReply))
	}
	return resp.StatusCode, data, nil
}

// login logs in and reads the WebAPI version.
func (c *Client) login(ctx context.Context) error {
	code, body, err := c.send(ctx, http.MethodPost, "/api/v2/auth/login",
		url.Values{"username": {c.o.Username}, "password": {c.o.Password}})
	if err != nil {
		return err
	}
	switch {
	case code == http.StatusForbidden:
		return fmt.Errorf("qbittorrent login: HTTP 403, this address is banned after too many failed logins: %w", master.ErrAuth)
	case code != http.StatusOK:
		return master.Garbage("qbittorrent login", fmt.Errorf("HTTP %d %q", code, trunc(body)))
	case strings.TrimSpace(string(body)) == "Fails.":
		return fmt.Errorf("qbittorrent login as %q: %w (check [master] username and password)", c.o.Username, master.ErrAuth)
	case strings.TrimSpace(string(body)) != "Ok.":
		return master.Garbage("qbittorrent login", fmt.Errorf("reply %q", trunc(body)))
	}
	code, body, err = c.send(ctx, http.MethodGet, "/api/v2/app/webapiVersion", nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return master.Garbage("qbittorrent webapiVersion", fmt.Errorf("HTTP %d", code))
	}
	v, err := ParseVersion(string(body))
	if err != nil {
		return master.Garbage("qbittorrent webapiVersion", err)
	}
	c.mu.Lock()
	c.loggedIn, c.version = true, v
	c.mu.Unlock()
	return nil
}

// api does one API call, logging in first and again once on a 403.
func (c *Client) api(ctx context.Context, method, path string, form url.Values) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		in := c.loggedIn
		c.mu.Unlock()
		if !in {
			if err := c.login(ctx); err != nil {
				return nil, err
			}
		}
		code, body, err := c.send(ctx, method, path, form)
		if err != nil {
			c.mu.Lock()
			c.loggedIn = false // it may restart: log in afresh
			c.mu.Unlock()
			return nil, err
		}
		switch {
		case code == http.StatusForbidden && attempt == 0:
			c.mu.Lock()
			c.loggedIn = false
			c.mu.Unlock()
			continue
		case code == http.StatusForbidden:
			return nil, fmt.Errorf("qbittorrent %s: HTTP 403 right after login: %w", path, master.ErrAuth)
		case code == http.StatusNotFound || code == http.StatusConflict:
			return nil, &StatusError{Path: path, Code: code, Body: trunc(body)}
		case code != http.StatusOK:
			return nil, master.Garbage("qbittorrent "+path, fmt.Errorf("HTTP %d %q", code, trunc(body)))
		}
		return body, nil
	}
}

// StatusError is a 404 or 409 reply: no such torrent, or no metadata yet.
type StatusError struct {
	Path string
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("qbittorrent %s: HTTP %d %q", e.Path, e.Code, e.Body)
}

func trunc(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// PeerAddr is qBittorrent's listen_port on its interface address (or the
// URL's host, or PeerAddress).
func (c *Client) PeerAddr(ctx context.Context) (netip.AddrPort, error) {
	body, err := c.api(ctx, http.MethodGet, "/api/v2/app/preferences", nil)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := DecodePreferences(body)
	if err != nil {
		return netip.AddrPort{}, err
	}
	host := c.o.PeerAddress
	if host == "" {
		if a, err := netip.ParseAddr(p.InterfaceAddress); err == nil && !a.IsUnspecified() {
			host = a.String()
		}
	}
	return master.PeerAddress(ctx, master.HostOf(c.o.URL, host), p.ListenPort)
}

// Downloading lists the torrents qBittorrent downloads, with their
// .torrent and pieces.
func (c *Client) Downloading(ctx context.Context) ([]master.Torrent, error) {
	body, err := c.api(ctx, http.MethodGet, "/api/v2/torrents/info", url.Values{"filter": {"downloading"}})
	if err != nil {
		return nil, err
	}
	ts, err := DecodeTorrents(body)
	if err != nil {
		return nil, err
	}
	out := ts[:0]
	seen := map[string]bool{}
	for _, t := range ts {
		seen[t.InfoHash] = true
		if t.Stopped {
			out = append(out, t)
			continue
		}
		h := url.Values{"hash": {t.InfoHash}}
		body, err := c.api(ctx, http.MethodGet, "/api/v2/torrents/pieceStates", h)
		if _, gone := err.(*StatusError); gone {
			continue // removed meanwhile
		} else if err != nil {
			return nil, err
		}
		if t.Pieces, t.Downloading, t.NumPieces, err = DecodePieceStates(body); err != nil {
			return nil, err
		}
		body, err = c.api(ctx, http.MethodGet, "/api/v2/sync/torrentPeers", url.Values{"hash": {t.InfoHash}, "rid": {"0"}})
		if _, gone := err.(*StatusError); gone {
			continue
		} else if err != nil {
			return nil, err
		}
		if t.Helpers, err = DecodeBtslavePeers(body); err != nil {
			return nil, err
		}
		t.MetaInfo, err = c.export(ctx, t.InfoHash, t.NumPieces > 0)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	c.mu.Lock()
	for h := range c.meta {
		if !seen[h] {
			delete(c.meta, h)
		}
	}
	c.mu.Unlock()
	return out, nil
}

// Received is the torrent's downloaded bytes (master.Counter).
func (c *Client) Received(ctx context.Context, infoHash string) (int64, error) {
	body, err := c.api(ctx, http.MethodGet, "/api/v2/torrents/info", url.Values{"hashes": {infoHash}})
	if err != nil {
		return 0, err
	}
	return DecodeReceived(body, infoHash)
}

// export fetches a torrent's .torrent once (WebAPI 2.8.14+); nil when it
// has no metadata yet or the API lacks the call.
func (c *Client) export(ctx context.Context, ih string, hasInfo bool) ([]byte, error) {
	c.mu.Lock()
	m, ok := c.meta[ih]
	c.mu.Unlock()
	if ok || !hasInfo {
		return m, nil
	}
	body, err := c.api(ctx, http.MethodGet, "/api/v2/torrents/export", url.Values{"hash": {ih}})
	if _, no := err.(*StatusError); no {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if len(body) == 0 || body[0] != 'd' {
		return nil, master.Garbage("qbittorrent torrents/export", fmt.Errorf("not a bencoded dictionary"))
	}
	c.mu.Lock()
	c.meta[ih] = body
	c.mu.Unlock()
	return body, nil
}

// AddPeers introduces peers to qBittorrent for one torrent.
func (c *Client) AddPeers(ctx context.Context, infoHash string, peers []netip.AddrPort) error {
	ps := make([]string, len(peers))
	for i, p := range peers {
		ps[i] = p.String()
	}
	_, err := c.api(ctx, http.MethodPost, "/api/v2/torrents/addPeers",
		url.Values{"hashes": {infoHash}, "peers": {strings.Join(ps, "|")}})
	return err
}

// Start starts (resumes) a torrent: torrents/start from WebAPI 2.11,
// torrents/resume before.
func (c *Client) Start(ctx context.Context, infoHash string) error {
	return c.startStop(ctx, infoHash, "start", "resume")
}

// Stop stops (pauses) a torrent: torrents/stop from WebAPI 2.11,
// torrents/pause before.
func (c *Client) Stop(ctx context.Context, infoHash string) error {
	return c.startStop(ctx, infoHash, "stop", "pause")
}

func (c *Client) startStop(ctx context.Context, ih, now, before string) error {
	c.mu.Lock()
	in, v := c.loggedIn, c.version
	c.mu.Unlock()
	if !in {
		if err := c.login(ctx); err != nil {
			return err
		}
		v = c.WebAPIVersion()
	}
	verb := before
	if !v.Less(Version{2, 11, 0}) {
		verb = now
	}
	_, err := c.api(ctx, http.MethodPost, "/api/v2/torrents/"+verb, url.Values{"hashes": {ih}})
	return err
}
