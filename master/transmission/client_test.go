package transmission_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btslave/btslave/master"
	"github.com/btslave/btslave/master/transmission"
)

// fake41 answers like Transmission 4.1: the classic session-get still
// works (it says rpc-version 18), everything else is expected as JSON-RPC
// 2.0. The replies are recorded from 4.1's RPC documentation and source
// (docs/rpc-spec.md of 4.1.0): no 4.1 binary is available in the lab, so
// the 4.1 form is tested on recorded replies only.
func fake41(t *testing.T, classicSeen, rpc2Seen *atomic.Int32) *httptest.Server {
	session, err := os.ReadFile("testdata/session_get_4.1.json")
	if err != nil {
		t.Fatal(err)
	}
	torrents, err := os.ReadFile("testdata/torrent_get_4.1.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Transmission-Session-Id") != "abc" {
			w.Header().Set("X-Transmission-Session-Id", "abc")
			w.WriteHeader(http.StatusConflict)
			return
		}
		var req map[string]any
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("request %q: %v", body, err)
		}
		switch {
		case req["jsonrpc"] == "2.0" && req["method"] == "session_get":
			rpc2Seen.Add(1)
			w.Write(session)
		case req["jsonrpc"] == "2.0" && req["method"] == "torrent_get":
			rpc2Seen.Add(1)
			fields, _ := req["params"].(map[string]any)["fields"].([]any)
			for _, f := range fields {
				if s := f.(string); strings.ContainsAny(s, "-ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
					t.Errorf("JSON-RPC 2.0 field %q is not snake_case", s)
				}
			}
			w.Write(torrents)
		case req["method"] == "session-get":
			classicSeen.Add(1)
			w.Write([]byte(`{"result":"success","arguments":{"rpc-version":18,"rpc-version-semver":"6.0.0","version":"4.1.0 (6b0ad0fb4e)","peer-port":51413}}`))
		default:
			t.Errorf("unexpected request %s", body)
			w.Write([]byte(`{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":1}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Ensure that a 4.1 server is spoken to in JSON-RPC 2.0 with snake_case
// names, chosen from the rpc-version it reports (recorded replies: no 4.1
// binary here).
func TestTransmission41JSONRPC(t *testing.T) {
	var classic, rpc2 atomic.Int32
	srv := fake41(t, &classic, &rpc2)
	c := transmission.New(transmission.Options{URL: srv.URL})
	ctx := context.Background()
	peer, err := c.PeerAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if peer.String() != "127.0.0.1:51413" {
		t.Errorf("peer = %v", peer)
	}
	ts, err := c.Downloading(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !c.JSONRPC() || !strings.HasPrefix(c.Version(), "4.1.0") {
		t.Errorf("JSONRPC() = %v, version %q; want JSON-RPC 2.0 for 4.1.0", c.JSONRPC(), c.Version())
	}
	if classic.Load() != 1 || rpc2.Load() != 2 {
		t.Errorf("requests: %d classic, %d JSON-RPC; want 1 classic session-get then 2 JSON-RPC", classic.Load(), rpc2.Load())
	}
	if len(ts) != 1 {
		t.Fatalf("downloading %d torrents, want 1 (the complete one is not)", len(ts))
	}
	got := ts[0]
	if got.InfoHash != "0123456789abcdef0123456789abcdef01234567" || got.Name != "show" || got.NumPieces != 16 ||
		got.Category != "tv,hd" || got.Progress != 0.5 || got.Stopped || got.MetaInfo != nil {
		t.Errorf("torrent = %+v", got)
	}
	for i := range 16 {
		if got.HasPiece(i) != (i < 8) {
			t.Errorf("piece %d: has = %v", i, got.HasPiece(i))
		}
	}
	if len(got.Helpers) != 1 || got.Helpers[0].String() != "127.0.0.7" {
		t.Errorf("btslave peers in the master's list = %v, want [127.0.0.7]", got.Helpers)
	}
	f, _ := master.NewFilter("", "", "hd")
	if !f.Match(got) {
		t.Error("category hd does not match labels tv,hd")
	}
}

// Ensure that garbage, a 401 and a daemon that restarts (new session id)
// give the right errors and never a panic.
func TestTransmissionErrors(t *testing.T) {
	var mode atomic.Value
	mode.Store("garbage")
	sid := "one"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case "garbage":
			w.Write([]byte("<html>not json</html>"))
		case "401":
			w.WriteHeader(http.StatusUnauthorized)
		case "restart":
			if r.Header.Get("X-Transmission-Session-Id") != sid {
				w.Header().Set("X-Transmission-Session-Id", sid)
				w.WriteHeader(http.StatusConflict)
				return
			}
			w.Write([]byte(`{"result":"success","arguments":{"rpc-version":17,"version":"4.0.6","peer-port":6881,"torrents":[]}}`))
		}
	}))
	defer srv.Close()
	c := transmission.New(transmission.Options{URL: srv.URL, HTTP: &http.Client{Timeout: 2 * time.Second}})
	ctx := context.Background()
	if _, err := c.Downloading(ctx); !errors.Is(err, master.ErrGarbage) {
		t.Errorf("garbage: %v, want ErrGarbage", err)
	}
	mode.Store("401")
	if _, err := c.Downloading(ctx); !errors.Is(err, master.ErrAuth) {
		t.Errorf("401: %v, want ErrAuth", err)
	}
	mode.Store("restart")
	if _, err := c.Downloading(ctx); err != nil {
		t.Errorf("after 409: %v", err)
	}
	sid = "two" // restarted: a new session id
	if ts, err := c.Downloading(ctx); err != nil || len(ts) != 0 {
		t.Errorf("after restart: %v, %v", ts, err)
	}
	if c.JSONRPC() {
		t.Error("rpc-version 17 (4.0) must be spoken to in the classic form")
	}
	srv.Close()
	if _, err := c.Downloading(ctx); !errors.Is(err, master.ErrUnreachable) {
		t.Errorf("closed server: %v, want ErrUnreachable", err)
	}
}
