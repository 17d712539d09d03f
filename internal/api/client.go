package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotRunning is returned by the client when nothing answers at the
// API's address.
var ErrNotRunning = errors.New("btslave daemon is not running")

// ErrUnauthorized is returned when the daemon refuses the token.
var ErrUnauthorized = errors.New("the daemon refused the API token")

// Client talks to a running daemon.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// NewClient returns a client for the API at addr ("host:port"). A call
// lasts as long as its context allows (DefaultTimeout without a
// deadline), so that a long publish is not cut.
func NewClient(addr, token string) *Client {
	return &Client{base: "http://" + addr, token: token, http: &http.Client{}}
}

// DialAddr is where the CLI should reach a daemon configured to listen on
// listen, using dataDir's api.addr file when the daemon wrote one.
func DialAddr(dataDir, listen string) string {
	if b, err := os.ReadFile(filepath.Join(dataDir, AddrFile)); err == nil {
		if a := strings.TrimSpace(string(b)); a != "" {
			return a
		}
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// Status fetches /api/v1/status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.get(ctx, "/api/v1/status", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Repeat asks the daemon to serve a swarm.
func (c *Client) Repeat(ctx context.Context, r RepeatRequest) (*Torrent, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var t Torrent
	if err := c.do(ctx, http.MethodPost, "/api/v1/swarms", body, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Leave asks the daemon to leave a swarm.
func (c *Client) Leave(ctx context.Context, infoHash string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/swarms/"+url.PathEscape(infoHash), nil, nil)
}

// Ranking fetches the autopilot's ranking.
func (c *Client) Ranking(ctx context.Context) (*Ranking, error) {
	var r Ranking
	if err := c.get(ctx, "/api/v1/ranking", &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Feeds lists the feeds.
func (c *Client) Feeds(ctx context.Context) ([]Feed, error) {
	var fs []Feed
	if err := c.get(ctx, "/api/v1/feeds", &fs); err != nil {
		return nil, err
	}
	return fs, nil
}

// AddFeed adds a feed at run time.
func (c *Client) AddFeed(ctx context.Context, req FeedRequest) (*Feed, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var f Feed
	if err := c.do(ctx, http.MethodPost, "/api/v1/feeds", body, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// FeedItems lists what a feed put in the catalog, newest first.
func (c *Client) FeedItems(ctx context.Context, name string) ([]FeedItem, error) {
	var items []FeedItem
	if err := c.get(ctx, "/api/v1/feeds/"+url.PathEscape(name)+"/items", &items); err != nil {
		return nil, err
	}
	return items, nil
}

// RemoveFeed removes a feed added at run time.
func (c *Client) RemoveFeed(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/feeds/"+url.PathEscape(name), nil, nil)
}

func (c *Client) get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, nil, v)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, v any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w (nothing answers at %s)", ErrNotRunning, strings.TrimPrefix(c.base, "http://"))
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	if resp.StatusCode/100 != 2 {
		var e errorBody
		if json.Unmarshal(respBody, &e) == nil && e.Error != "" {
			err := fmt.Errorf("%s", e.Error)
			switch resp.StatusCode {
			case http.StatusBadRequest:
				err = fmt.Errorf("%w: %s", ErrBadRequest, strings.TrimPrefix(e.Error, ErrBadRequest.Error()+": "))
			case http.StatusNotFound:
				err = fmt.Errorf("%w: %s", ErrNotFound, strings.TrimPrefix(e.Error, ErrNotFound.Error()+": "))
			}
			return err
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(respBody, v); err != nil {
		return fmt.Errorf("%s %s: bad JSON: %w", method, path, err)
	}
	return nil
}
