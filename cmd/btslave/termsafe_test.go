package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/btslave/btslave/internal/api"
)

// hostile is a name a feed, a tracker or a .torrent could carry: a colour
// escape, a bell, a right-to-left override, a C1 CSI, a title-setting OSC
// and a byte that is not UTF-8.
const hostile = "Evil\x1b[31mRed\a\u202etxt.exe\u009b2J\x1b]0;pwned\x07\xff"

func TestTermSafe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"ubuntu-24.04 desktop.iso", "ubuntu-24.04 desktop.iso"},
		{"Ünïcödé 日本語 ✓ …", "Ünïcödé 日本語 ✓ …"},
		{"a\x1b[31mb", `a\x1b[31mb`},
		{"bell\a", `bell\x07`},
		{"tab\tnl\ncr\r", `tab\x09nl\x0acr\x0d`},
		{"del\x7f", `del\x7f`},
		{"c1\u0085\u009b", `c1\u0085\u009b`},
		{"\u202eexe.txt", `\u202eexe.txt`},
		{"\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u2028\u2029",
			`\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u2028\u2029`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{"cut\xe2\x80", `cut\xe2\x80`},
		{"\ufffd stays", "\ufffd stays"},
	} {
		if got := termSafe(tc.in); got != tc.want {
			t.Errorf("termSafe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := termSafeLines("line 1\n\tline 2\x1b[2J"), "line 1\n\tline 2\\x1b[2J"; got != want {
		t.Errorf("termSafeLines = %q, want %q", got, want)
	}
}

// rawControls lists the runes in out that a terminal would act on, besides
// the newlines between lines.
func rawControls(out string) []string {
	var bad []string
	for i, r := range out {
		if r == utf8.RuneError && !strings.HasPrefix(out[i:], "\ufffd") {
			bad = append(bad, fmt.Sprintf("byte %#x at %d", out[i], i))
		} else if r != '\n' && unsafeRune(r) {
			bad = append(bad, fmt.Sprintf("%U at %d", r, i))
		}
	}
	return bad
}

// checkSafe fails when out carries a raw control, and when the hostile
// name did not show at all (escaped).
func checkSafe(t *testing.T, what, out string) {
	t.Helper()
	if bad := rawControls(out); len(bad) > 0 {
		t.Errorf("%s prints raw controls %v:\n%q", what, bad, out)
	}
	if !strings.Contains(out, `Evil\x1b[31mRed\x07\u202etxt`) {
		t.Errorf("%s does not show the escaped name:\n%s", what, out)
	}
}

// fakeDaemon serves the local API with every string field hostile, and
// returns the data dir the CLI finds it through.
func fakeDaemon(t *testing.T) string {
	t.Helper()
	const tok = "0123456789abcdef0123456789abcdef"
	now := time.Now()
	feed := api.Feed{Name: hostile, Kind: hostile, Source: "http://x/" + hostile, Schedule: hostile, Include: hostile,
		LastFetch: now.Add(-time.Minute), LastError: "GET http://x/: " + hostile, Failures: 2}
	tr := api.Torrent{InfoHash: "0123456789abcdef0123456789abcdef01234567", Name: hostile, Origin: hostile}
	s, err := api.Listen(api.ServerOptions{
		Listen: "127.0.0.1:0",
		Token:  tok,
		Status: func(context.Context) api.Status {
			return api.Status{Version: hostile, DataDir: hostile, ConfigFile: hostile, API: hostile,
				Peer: api.PeerState{Listen: hostile}, Cache: api.Cache{Backend: hostile}, Torrents: []api.Torrent{tr},
				Visits: []api.Visit{{InfoHash: hostile, Name: hostile, Reason: hostile, Joined: now.Add(-time.Hour), Left: now}},
				Feeds:  []api.Feed{feed}, Autopilot: api.Autopilot{Enabled: true, LastRank: now, Note: hostile, Error: hostile},
				Compression: api.Compression{Connections: 1, Peers: []api.CompressedPeer{{Addr: hostile, Client: hostile, Up: hostile, Down: "zstd",
					UpPlain: 4 << 20, UpWire: 1 << 20, UpRatio: 0.25, DownRatio: 1}}}}
		},
		Repeat: func(_ context.Context, r api.RepeatRequest) (api.Torrent, error) {
			if r.InfoHash == tr.InfoHash {
				return tr, nil
			}
			return api.Torrent{}, fmt.Errorf("%w: tracker said %s", api.ErrBadRequest, hostile)
		},
		Ranking: func(context.Context) api.Ranking {
			return api.Ranking{Enabled: true, At: now, Note: hostile, Error: hostile, Swarms: []api.RankedSwarm{
				{Rank: 1, InfoHash: hostile, Name: hostile, Source: hostile, Serving: true, Origin: hostile, State: hostile},
				{Rank: 2, InfoHash: hostile, Name: hostile, State: hostile, Error: hostile},
			}}
		},
		Feeds: func(context.Context) []api.Feed { return []api.Feed{feed} },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, api.TokenFile), []byte(tok+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, api.AddrFile), []byte(s.Addr().String()+"\n"), 0o600)
	return dir
}

// Ensure that status, swarms, feeds list and repeat print what the daemon
// relays from the network (names, titles, tracker texts, errors) with its
// terminal controls escaped, and that an error text is escaped on stderr
// too (issue #17, item 7). JSON stays as the API gave it.
func TestCommandsEscapeTerminalControls(t *testing.T) {
	dataDir := fakeDaemon(t)
	env := testEnv(t)
	for _, args := range [][]string{
		{"status"}, {"swarms"}, {"feeds", "list"}, {"repeat", "0123456789abcdef0123456789abcdef01234567"},
	} {
		code, out, errOut := run(t, env, append(args, "--data-dir", dataDir)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		checkSafe(t, strings.Join(args, " "), out)
	}
	code, _, errOut := run(t, env, "repeat", "89abcdef0123456789abcdef0123456789abcdef", "--data-dir", dataDir)
	if code != exitUsage {
		t.Errorf("refused repeat: exit %d, want 2", code)
	}
	checkSafe(t, "repeat's error", errOut)
	if code, out, _ := run(t, env, "status", "--json", "--data-dir", dataDir); code != 0 || !strings.Contains(out, `Evil\u001b[31mRed\u0007`) {
		t.Errorf("status --json: %d %s", code, out)
	}
}

// Ensure that "feeds test" escapes what a feed says: an RSS title with a
// bidi override, a magnet dn= with ESC and BEL, and a .torrent link's
// error.
func TestFeedsTestEscapesTerminalControls(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/list", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=%s\n", strings.ReplaceAll(
			"Evil%1B%5B31mRed%07%E2%80%AEtxt%FF", " ", "+"))
	})
	mux.HandleFunc("/rss", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>`+
			"<item><title>Bidi \u202etxt.exe\u202c and \u2066iso\u2069</title><enclosure url=\"/no\u202e.torrent\" type=\"application/x-bittorrent\"/></item>"+
			`</channel></rss>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	env := testEnv(t)
	code, out, errOut := run(t, env, "feeds", "test", srv.URL+"/list")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	checkSafe(t, "feeds test (magnet dn=)", out)
	code, out, errOut = run(t, env, "feeds", "test", srv.URL+"/rss")
	if code != 0 {
		t.Fatalf("rss: exit %d: %s", code, errOut)
	}
	if bad := rawControls(out); len(bad) > 0 || !strings.Contains(out, `Bidi \u202etxt.exe\u202c and \u2066iso\u2069`) {
		t.Errorf("feeds test (RSS title) prints raw controls %v:\n%s", bad, out)
	}
}

// Ensure status shows each compressed connection's ratio each way, and
// what compression saved.
func TestPrintCompression(t *testing.T) {
	var b strings.Builder
	printCompression(&b, api.Compression{Connections: 3, SavedUp: 3 << 20, SavedDown: 1 << 10, FramesSpliced: 12, Peers: []api.CompressedPeer{
		{Addr: "127.0.0.2:6881", Client: "btslave/0.1", Up: "zstd", UpPlain: 4 << 20, UpWire: 1 << 20, UpRatio: 0.25, DownRatio: 1},
	}})
	for _, want := range []string{"1 peers now, 3 since start; saved 3.0 MiB up, 1.0 KiB down; 12 cached blocks sent as they are",
		"127.0.0.2:6881\tbtslave/0.1: up zstd 25% of 4.0 MiB, down plain"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}
