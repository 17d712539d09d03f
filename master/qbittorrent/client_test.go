package qbittorrent_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/btslave/btslave/master"
	"github.com/btslave/btslave/master/qbittorrent"
)

// fakeQBT is a WebUI of the given WebAPI version, with recorded replies
// (qBittorrent 5.0's WebAPI 2.11 is not installed here). It checks the
// Referer and the cookie like the real one, and expires the session once.
type fakeQBT struct {
	version string
	mu      sync.Mutex
	calls   []string
	expired bool
}

func (f *fakeQBT) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.URL.Path)
	if r.Header.Get("Referer") == "" || r.Header.Get("Origin") == "" {
		http.Error(w, "CSRF", http.StatusUnauthorized)
		return
	}
	if r.URL.Path == "/api/v2/auth/login" {
		r.ParseForm()
		if r.Form.Get("password") != "pw" {
			w.Write([]byte("Fails."))
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "SID", Value: "s1", Path: "/"})
		w.Write([]byte("Ok."))
		return
	}
	if c, err := r.Cookie("SID"); err != nil || c.Value != "s1" || f.expired {
		f.expired = false
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte("Forbidden"))
		return
	}
	switch r.URL.Path {
	case "/api/v2/app/webapiVersion":
		w.Write([]byte(f.version))
	case "/api/v2/torrents/info":
		w.Write([]byte(`[{"hash":"0123456789abcdef0123456789abcdef01234567","name":"a","category":"tv","tags":"","progress":0.25,"state":"stoppedDL","amount_left":100,"magnet_uri":"magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"},` +
			`{"hash":"89abcdef0123456789abcdef0123456789abcdef","name":"b","category":"","tags":"x","progress":0.5,"state":"downloading","amount_left":100,"magnet_uri":""}]`))
	case "/api/v2/torrents/pieceStates":
		w.Write([]byte(`[2,2,1,0,0,0,0,0,2]`))
	case "/api/v2/sync/torrentPeers":
		w.Write([]byte(`{"full_update":true,"rid":1,"show_flags":true,"peers":{` +
			`"127.0.0.9:7000":{"client":"btslave/0.9","ip":"127.0.0.9","port":7000},` +
			`"127.0.0.3:6881":{"client":"Transmission 3.00","ip":"127.0.0.3","port":6881},` +
			`"[::ffff:127.0.0.4]:7001":{"client":"BTSlave/1.0","ip":"::ffff:127.0.0.4","port":7001},` +
			`"bad":{"client":"btslave/x","ip":"not an address"}}}`))
	case "/api/v2/torrents/export":
		w.WriteHeader(http.StatusConflict) // no metadata yet
	case "/api/v2/torrents/start", "/api/v2/torrents/stop", "/api/v2/torrents/resume", "/api/v2/torrents/pause":
		w.Write(nil)
	default:
		http.NotFound(w, r)
	}
}

// Ensure that WebAPI 2.11 (qBittorrent 5) states stopped* count as
// stopped, start/stop use the new endpoints (resume/pause before 2.11),
// and an expired session logs in again.
func TestQBittorrent211(t *testing.T) {
	for _, tc := range []struct{ version, start, stop string }{
		{"2.11.2", "/api/v2/torrents/start", "/api/v2/torrents/stop"},
		{"2.8.19", "/api/v2/torrents/resume", "/api/v2/torrents/pause"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			f := &fakeQBT{version: tc.version}
			srv := httptest.NewServer(f)
			defer srv.Close()
			c := qbittorrent.New(qbittorrent.Options{URL: srv.URL, Username: "admin", Password: "pw"})
			ctx := context.Background()
			ts, err := c.Downloading(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != 2 || !ts[0].Stopped || ts[1].Stopped {
				t.Fatalf("torrents = %+v; want a stopped then a downloading one", ts)
			}
			b := ts[1]
			if b.NumPieces != 9 || !b.HasPiece(0) || !b.HasPiece(1) || b.HasPiece(2) || !b.HasPiece(8) || b.MetaInfo != nil ||
				b.Category != "x" || b.Magnet == "" {
				t.Errorf("torrent b = %+v", b)
			}
			if len(b.Downloading) != 2 || b.Downloading[0] != 0x20 || b.Downloading[1] != 0 {
				t.Errorf("torrent b downloading %08b, want piece 2 only", b.Downloading)
			}
			if want := []netip.Addr{netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("127.0.0.9")}; !slices.Equal(b.Helpers, want) {
				t.Errorf("torrent b helpers %v, want %v (the btslave peers, sorted)", b.Helpers, want)
			}
			f.mu.Lock()
			f.expired = true
			f.calls = nil
			f.mu.Unlock()
			if err := c.Start(ctx, b.InfoHash); err != nil {
				t.Fatal(err)
			}
			if err := c.Stop(ctx, b.InfoHash); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			calls := f.calls
			f.mu.Unlock()
			want := []string{tc.start, "/api/v2/auth/login", "/api/v2/app/webapiVersion", tc.start, tc.stop}
			if len(calls) != len(want) {
				t.Fatalf("calls %v, want %v", calls, want)
			}
			for i := range want {
				if calls[i] != want[i] {
					t.Fatalf("calls %v, want %v", calls, want)
				}
			}
		})
	}
}

// Ensure that wrong credentials and garbage are the right errors.
func TestQBittorrentErrors(t *testing.T) {
	srv := httptest.NewServer(&fakeQBT{version: "2.8.19"})
	defer srv.Close()
	c := qbittorrent.New(qbittorrent.Options{URL: srv.URL, Username: "admin", Password: "no"})
	if _, err := c.Downloading(context.Background()); !errors.Is(err, master.ErrAuth) {
		t.Errorf("wrong password: %v, want ErrAuth", err)
	}
	g := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("\x00\xffgarbage")) }))
	defer g.Close()
	c = qbittorrent.New(qbittorrent.Options{URL: g.URL, Password: "pw"})
	if _, err := c.Downloading(context.Background()); !errors.Is(err, master.ErrGarbage) {
		t.Errorf("garbage: %v, want ErrGarbage", err)
	}
}
