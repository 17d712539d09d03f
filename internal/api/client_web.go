package api

import (
	"context"
	"encoding/json"
	"net/http"
)

// LoginCode asks the daemon for a one-time dashboard login code.
func (c *Client) LoginCode(ctx context.Context) (*LoginCode, error) {
	var lc LoginCode
	if err := c.do(ctx, http.MethodPost, "/api/v1/web/login-code", []byte("{}"), &lc); err != nil {
		return nil, err
	}
	return &lc, nil
}

// TestFeed asks the daemon to fetch a feed once and say what its filters
// keep.
func (c *Client) TestFeed(ctx context.Context, req FeedRequest) (*FeedTest, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var ft FeedTest
	if err := c.do(ctx, http.MethodPost, "/api/v1/feeds/test", body, &ft); err != nil {
		return nil, err
	}
	return &ft, nil
}
