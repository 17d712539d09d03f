package btslave_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/master"
	"github.com/btslave/btslave/master/btslave"
)

// Ensure that a btslave master's owner swarms it lacks pieces of are
// listed, with its peer address, and a wrong token is ErrAuth. (An
// httptest server answering the daemon's own api.Status type.)
func TestBtslaveMaster(t *testing.T) {
	st := api.Status{Peer: api.PeerState{Listen: "127.0.0.9:6881", Port: 6881}, Torrents: []api.Torrent{
		{InfoHash: "0123456789abcdef0123456789abcdef01234567", Name: "mine", Pieces: 10, PiecesHeld: 4, Origin: "owner"},
		{InfoHash: "89abcdef0123456789abcdef0123456789abcdef", Name: "auto", Pieces: 10, PiecesHeld: 4, Origin: "auto"},
		{InfoHash: "1123456789abcdef0123456789abcdef01234567", Name: "full", Pieces: 10, PiecesHeld: 10, Origin: "owner"},
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	c, err := btslave.New(btslave.Options{URL: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ts, err := c.Downloading(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != "mine" || ts[0].Progress != 0.4 {
		t.Errorf("torrents = %+v", ts)
	}
	peer, err := c.PeerAddr(ctx)
	if err != nil || peer.String() != "127.0.0.9:6881" {
		t.Errorf("peer = %v, %v", peer, err)
	}
	bad, _ := btslave.New(btslave.Options{URL: srv.URL, Token: "nope"})
	if _, err := bad.Downloading(ctx); !errors.Is(err, master.ErrAuth) {
		t.Errorf("wrong token: %v", err)
	}
	srv.Close()
	if _, err := c.Downloading(ctx); !errors.Is(err, master.ErrUnreachable) {
		t.Errorf("stopped: %v", err)
	}
}
