package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/internal/torrentfile"
)

// deepNesting is a .torrent whose one key holds n nested lists.
func deepNesting(n int) []byte {
	return []byte("d3:zzz" + strings.Repeat("l", n) + strings.Repeat("e", n) + "e")
}

// Ensure that "btslave repeat" on issue #17's .torrent (8,000,000 nested
// lists, 16 MB) exits 2 with a message naming the file and the problem,
// instead of dying of a stack overflow; no daemon is needed to refuse it.
func TestRepeatDeepTorrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deep.torrent")
	if err := os.WriteFile(path, deepNesting(8_000_000), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, testEnv(t), "repeat", path)
	if code != exitUsage || out != "" || !strings.Contains(errOut, path+": bad .torrent") || !strings.Contains(errOut, "nests deeper than 64 levels") {
		t.Errorf("repeat deep.torrent: exit %d, stdout %q, stderr %q; want 2 and a clear message", code, out, errOut)
	}
}

// FuzzRepeatRequest feeds arbitrary .torrent files (and, with no file
// bytes, magnet links and info hashes) to the CLI's request parser: it
// never panics, every refusal is a usage error (exit 2), and an accepted
// file is sent as it is and is a valid .torrent.
func FuzzRepeatRequest(f *testing.F) {
	path, _, ih, _ := lab.MakeTorrent(f, lab.TorrentOptions{Size: 1 << 20})
	good, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "")
	f.Add(deepNesting(10_000), "")
	f.Add([]byte("d4:info"+strings.Repeat("l", 100)+strings.Repeat("e", 100)+"e"), "")
	f.Add([]byte("d4:infod6:lengthi-1eee"), "")
	f.Add([]byte("d8:announce3:url4:infod4:name1:x12:piece lengthi0e6:pieces0:ee"), "")
	f.Add([]byte(nil), "magnet:?xt=urn:btih:"+ih)
	f.Add([]byte(nil), "magnet:?xt=urn:btih:zz")
	f.Add([]byte(nil), ih)
	f.Fuzz(func(t *testing.T, file []byte, arg string) {
		if len(file) > 0 || !(strings.HasPrefix(arg, "magnet:") || hexHash.MatchString(arg)) {
			// A file: never a path the fuzzer made up.
			arg = filepath.Join(t.TempDir(), "x.torrent")
			if err := os.WriteFile(arg, file, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		req, err := repeatRequest(arg)
		if err != nil {
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage {
				t.Fatalf("refusal is not a usage error: %v", err)
			}
			return
		}
		switch {
		case req.Torrent != nil:
			if string(req.Torrent) != string(file) {
				t.Fatal("the request does not carry the file as it is")
			}
			if _, err := torrentfile.Parse(req.Torrent); err != nil {
				t.Fatalf("accepted a .torrent that does not parse: %v", err)
			}
		case req.Magnet == "" && req.InfoHash == "":
			t.Fatalf("accepted %q as an empty request", arg)
		}
	})
}
