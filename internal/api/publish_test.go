package api

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Ensure that a publish hashing for longer than the server's write
// timeout still gets its answer, while another slow endpoint is cut, and
// that GET /api/v1/publishing answers meanwhile.
func TestPublishOutlivesWriteTimeout(t *testing.T) {
	const hashing = 600 * time.Millisecond
	started := make(chan struct{})
	s, err := Listen(ServerOptions{
		Listen:       "127.0.0.1:0",
		Token:        sessToken,
		WriteTimeout: 200 * time.Millisecond,
		Status:       func(context.Context) Status { return Status{} },
		Publish: func(ctx context.Context, req PublishRequest) (Published, error) {
			close(started)
			select {
			case <-time.After(hashing):
			case <-ctx.Done():
				return Published{}, ctx.Err()
			}
			return Published{Name: "big", Magnet: "magnet:?xt=urn:btih:00"}, nil
		},
		Publishing: func(context.Context) []PublishJob { return []PublishJob{{Path: "/big", Done: 5, Total: 10}} },
		Published: func(context.Context) []Published {
			time.Sleep(hashing)
			return []Published{}
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

	res := make(chan error, 1)
	go func() {
		p, err := c.Publish(context.Background(), PublishRequest{Path: "/big"})
		if err == nil && p.Name != "big" {
			err = errFake("got " + p.Name)
		}
		res <- err
	}()
	<-started
	js, err := c.Publishing(context.Background())
	if err != nil || len(js) != 1 || js[0].Done != 5 {
		t.Errorf("publishing: %+v %v", js, err)
	}
	if err := <-res; err != nil {
		t.Fatalf("a publish longer than the write timeout: %v", err)
	}
	// The test could fail: another endpoint as slow is cut.
	if _, err := c.Published(context.Background()); err == nil || !strings.Contains(err.Error(), "EOF") {
		t.Errorf("a slow GET /api/v1/published was not cut by the write timeout: %v", err)
	}
}

type errFake string

func (e errFake) Error() string { return string(e) }
