package transmission

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/btslave/btslave/master"
)

// Options configures a Client.
type Options struct {
	URL                string // e.g. http://127.0.0.1:9091/transmission/rpc
	Username, Password string
	// PeerAddress overrides the master's peer address ("IP" or "IP:PORT");
	// default the URL's host and the peer-port Transmission reports.
	PeerAddress string
	HTTP        *http.Client // default one with a 20s timeout
}

// Client talks to one transmission-daemon.
type Client struct {
	o Options

	mu        sync.Mutex
	sessionID string
	// jsonrpc: speak JSON-RPC 2.0 (4.1+); known once session-get answered.
	jsonrpc bool
	known   bool
	version string
}

// New makes a Client; nothing is sent until the first call.
func New(o Options) *Client {
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 20 * time.Second}
	}
	return &Client{o: o}
}

// Kind is "transmission".
func (*Client) Kind() string { return "transmission" }

// Version is the version the daemon reported ("" before the first reply).
func (c *Client) Version() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// JSONRPC says whether the client speaks JSON-RPC 2.0 to the daemon.
func (c *Client) JSONRPC() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jsonrpc
}

// post sends one request body and returns the reply body of a 200,
// redoing the session-id handshake on 409.
func (c *Client) post(ctx context.Context, body []byte) ([]byte, error) {
	for range 3 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.o.URL, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("transmission rpc %q: %w", c.o.URL, err)
		}
		req.Header.Set("Content-Type", "application/json")
		if c.o.Username != "" || c.o.Password != "" {
			req.SetBasicAuth(c.o.Username, c.o.Password)
		}
		c.mu.Lock()
		if c.sessionID != "" {
			req.Header.Set("X-Transmission-Session-Id", c.sessionID)
		}
		c.mu.Unlock()
		resp, err := c.o.HTTP.Do(req)
		if err != nil {
			return nil, master.Unreachable(ctx, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, master.MaxReply+1))
		resp.Body.Close()
		if err != nil {
			return nil, master.Unreachable(ctx, err)
		}
		switch {
		case resp.StatusCode == http.StatusConflict:
			id := resp.Header.Get("X-Transmission-Session-Id")
			if id == "" {
				return nil, master.Garbage("transmission", fmt.Errorf("409 without X-Transmission-Session-Id"))
			}
			c.mu.Lock()
			c.sessionID = id
			c.mu.Unlock()
			continue
		case resp.StatusCode == http.StatusUnauthorized:
			return nil, fmt.Errorf("transmission rpc: HTTP 401: %w (check [master] username and password)", master.ErrAuth)
		case resp.StatusCode == http.StatusForbidden:
			return nil, fmt.Errorf("transmission rpc: HTTP 403: %w (is this host in rpc-whitelist?)", master.ErrAuth)
		case resp.StatusCode != http.StatusOK:
			return nil, master.Garbage("transmission rpc", fmt.Errorf("HTTP %s", resp.Status))
		case len(data) > master.MaxReply:
			return nil, master.Garbage("transmission rpc", fmt.Errorf("reply over %d bytes", master.MaxReply))
		}
		return data, nil
	}
	return nil, master.Garbage("transmission rpc", fmt.Errorf("no usable X-Transmission-Session-Id after 3 tries"))
}

// call performs one method in the form the daemon speaks; classic is the
// classic method name (its JSON-RPC name has '_' for '-'). args use the
// classic names and are translated.
func (c *Client) call(ctx context.Context, classic string, args map[string]any) (map[string]json.RawMessage, error) {
	if err := c.detect(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	rpc2 := c.jsonrpc
	c.mu.Unlock()
	var body []byte
	if rpc2 {
		body, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "method": Snake(classic), "params": snakeArgs(args), "id": 1})
	} else {
		body, _ = json.Marshal(map[string]any{"method": classic, "arguments": args})
	}
	data, err := c.post(ctx, body)
	if err != nil {
		return nil, err
	}
	if rpc2 {
		return DecodeJSONRPC(data)
	}
	return DecodeClassic(data)
}

// detect asks session-get once in the classic form to learn the version.
func (c *Client) detect(ctx context.Context) error {
	c.mu.Lock()
	known := c.known
	c.mu.Unlock()
	if known {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"method": "session-get", "arguments": map[string]any{}})
	data, err := c.post(ctx, body)
	if err != nil {
		return err
	}
	args, err := DecodeClassic(data)
	if err != nil {
		// A server that dropped the classic form: try JSON-RPC 2.0.
		body, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "session_get", "params": map[string]any{}, "id": 1})
		data, err2 := c.post(ctx, body)
		if err2 != nil {
			return err
		}
		if args, err2 = DecodeJSONRPC(data); err2 != nil {
			return err
		}
	}
	rpc2, version := Speaks(args)
	c.mu.Lock()
	c.known, c.jsonrpc, c.version = true, rpc2, version
	c.mu.Unlock()
	return nil
}

// reset forgets the detected protocol (the daemon may have been upgraded
// across a restart).
func (c *Client) reset() {
	c.mu.Lock()
	c.known = false
	c.mu.Unlock()
}

// PeerAddr is the daemon's peer-port on the URL's host (or PeerAddress).
func (c *Client) PeerAddr(ctx context.Context) (netip.AddrPort, error) {
	args, err := c.call(ctx, "session-get", map[string]any{"fields": []string{"peer-port", "version", "rpc-version"}})
	if err != nil {
		c.reset()
		return netip.AddrPort{}, err
	}
	var port int
	if err := get(args, "peer-port", &port); err != nil {
		return netip.AddrPort{}, err
	}
	return master.PeerAddress(ctx, master.HostOf(c.o.URL, c.o.PeerAddress), port)
}

// torrentFields are the torrent-get fields used, in classic form.
var torrentFields = []string{"hashString", "name", "status", "percentDone", "pieces", "pieceCount",
	"magnetLink", "torrentFile", "labels", "leftUntilDone", "sizeWhenDone", "error", "errorString", "peers", "trackerStats"}

// Downloading lists the torrents that still lack data.
func (c *Client) Downloading(ctx context.Context) ([]master.Torrent, error) {
	args, err := c.call(ctx, "torrent-get", map[string]any{"fields": torrentFields})
	if err != nil {
		c.reset()
		return nil, err
	}
	ts, err := DecodeTorrents(args)
	if err != nil {
		return nil, err
	}
	for i := range ts {
		ts[i].MetaInfo = readTorrentFile(ts[i].metaPath)
	}
	out := make([]master.Torrent, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Torrent)
	}
	return out, nil
}

// Received is the daemon's downloadedEver for one torrent (master.Counter).
func (c *Client) Received(ctx context.Context, infoHash string) (int64, error) {
	args, err := c.call(ctx, "torrent-get", map[string]any{"ids": []string{infoHash}, "fields": []string{"hashString", "downloadedEver"}})
	if err != nil {
		c.reset()
		return 0, err
	}
	return DecodeReceived(args, infoHash)
}

// readTorrentFile reads the daemon's copy of a .torrent when it is on this
// machine; nil otherwise (the helper uses the magnet link then).
func readTorrentFile(path string) []byte {
	if path == "" || !strings.HasSuffix(path, ".torrent") {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 16<<20+1))
	if err != nil || len(data) > 16<<20 {
		return nil
	}
	return data
}

// decodeBitfield decodes the "pieces" field.
func decodeBitfield(s string, n int) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if n > 0 && len(b) != (n+7)/8 {
		return nil, fmt.Errorf("pieces is %d bytes for %d pieces", len(b), n)
	}
	return b, nil
}
