package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
)

// deepTorrent is issue #17's .torrent: 8,000,000 nested lists in 16 MB,
// which the recursive bencode decoders overflow their stack on.
func deepTorrent() []byte {
	const n = 8_000_000
	return []byte("d3:zzz" + strings.Repeat("l", n) + strings.Repeat("e", n) + "e")
}

// Ensure that POST /api/v1/swarms with a deeply nested .torrent is
// answered 400 with a message that says what is wrong, and that the
// daemon keeps working: it answers status and joins a good torrent after.
func TestRepeatDeepTorrentAPI(t *testing.T) {
	a, _ := testAppWith(t, func(c *config.Config) { c.Auto.Enabled = false })
	tok, err := api.ReadToken(a.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(api.RepeatRequest{Torrent: deepTorrent()})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body []byte) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+a.APIAddr()+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, reply := call("POST", "/api/v1/swarms", body)
	var e struct{ Error string }
	if err := json.Unmarshal(reply, &e); code != http.StatusBadRequest || err != nil ||
		!strings.Contains(e.Error, "bad .torrent") || !strings.Contains(e.Error, "nests deeper than 64 levels") {
		t.Fatalf("deep .torrent: HTTP %d %.200s, want 400 saying it nests too deep", code, reply)
	}
	// Through the CLI's client: a bad request (exit 2 in the CLI).
	c := api.NewClient(a.APIAddr(), tok)
	if _, err := c.Repeat(context.Background(), api.RepeatRequest{Torrent: deepTorrent()}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("client: %v, want a bad request", err)
	}
	if code, _ := call("GET", "/api/v1/status", nil); code != http.StatusOK {
		t.Fatalf("status after the deep .torrent: HTTP %d", code)
	}
	path, _, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 1 << 20})
	raw, _ := os.ReadFile(path)
	got, err := c.Repeat(context.Background(), api.RepeatRequest{Torrent: raw})
	if err != nil || got.InfoHash != ih {
		t.Fatalf("good .torrent after the deep one: %+v %v", got, err)
	}
	if len(a.rep.Swarms()) != 1 {
		t.Errorf("%d swarms served, want only the good one", len(a.rep.Swarms()))
	}
}
