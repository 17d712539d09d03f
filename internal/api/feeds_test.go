package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// Ensure that a feed's items come back through the client and that an
// unknown feed is 404, ErrNotFound to the client.
func TestFeedItems(t *testing.T) {
	s, err := Listen(ServerOptions{
		Listen: "127.0.0.1:0",
		Token:  sessToken,
		Status: func(context.Context) Status { return Status{} },
		FeedItems: func(_ context.Context, name string) ([]FeedItem, error) {
			if name != "ubuntu images" {
				return nil, fmt.Errorf("%w: no feed %q", ErrNotFound, name)
			}
			return []FeedItem{{InfoHash: "ab", Name: "Ubuntu test image"}}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c := NewClient(s.Addr().String(), sessToken)
	items, err := c.FeedItems(context.Background(), "ubuntu images")
	if err != nil || len(items) != 1 || items[0].Name != "Ubuntu test image" {
		t.Fatalf("items: %+v %v", items, err)
	}
	if _, err := c.FeedItems(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown feed: %v", err)
	}
	if r := send(t, "GET", "http://"+s.Addr().String()+"/api/v1/feeds/nope/items", nil, ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("without the token: %s", r.Status)
	}
}
