package lab

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/btslave/btslave/repeater/announce"
)

// Opentracker is a running opentracker (Debian's build: whitelist-only,
// chrooted into its root dir, running as nobody).
type Opentracker struct {
	*Process

	HTTPAnnounce string // http://127.0.0.1:P/announce
	UDPAnnounce  string // udp://127.0.0.1:U/announce
	HTTPScrape   string // http://127.0.0.1:P/scrape

	whitelist string
	mu        sync.Mutex // serialises whitelist changes
}

// StartOpentracker starts opentracker on 127.0.0.1 with a free HTTP (TCP)
// and UDP port and an empty whitelist; add info-hashes with Whitelist.
func StartOpentracker(t testing.TB) *Opentracker {
	t.Helper()
	Require(t, "opentracker")
	labFor(t)
	dir := t.TempDir()
	// The tracker chroots into root and drops to nobody: root and the
	// whitelist must be readable by nobody. The chroot itself happens as
	// root, so the (0700) parents do not matter.
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatalf("lab: opentracker: %v", err)
	}
	if err := os.Chmod(root, 0o755); err != nil { // umask
		t.Fatalf("lab: opentracker: %v", err)
	}
	whitelist := filepath.Join(root, "whitelist.txt")
	if err := os.WriteFile(whitelist, nil, 0o644); err != nil {
		t.Fatalf("lab: opentracker: %v", err)
	}
	if err := os.Chmod(whitelist, 0o644); err != nil {
		t.Fatalf("lab: opentracker: %v", err)
	}

	httpPort := FreePort(t, Loopback)
	udpPort := FreeUDPPort(t, Loopback)
	conf := filepath.Join(dir, "opentracker.conf")
	confText := fmt.Sprintf(`listen.tcp 127.0.0.1:%d
listen.udp 127.0.0.1:%d
access.whitelist /whitelist.txt
tracker.rootdir %s
tracker.user nobody
access.stats 127.0.0.1
`, httpPort, udpPort, root)
	if err := os.WriteFile(conf, []byte(confText), 0o644); err != nil {
		t.Fatalf("lab: opentracker: %v", err)
	}

	p := startProcess(t, procSpec{
		name: "opentracker",
		dir:  dir,
		path: "opentracker",
		args: []string{"-f", conf},
	})
	o := &Opentracker{
		Process:      p,
		HTTPAnnounce: fmt.Sprintf("http://127.0.0.1:%d/announce", httpPort),
		UDPAnnounce:  fmt.Sprintf("udp://127.0.0.1:%d/announce", udpPort),
		HTTPScrape:   fmt.Sprintf("http://127.0.0.1:%d/scrape", httpPort),
		whitelist:    whitelist,
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := waitTCP(ctx, p, netip.AddrPortFrom(Loopback, uint16(httpPort))); err != nil {
		t.Fatalf("lab: opentracker did not start: %v", err)
	}
	checkListeners(t, p)
	return o
}

// Whitelist adds info-hashes (hex) to the whitelist, makes the tracker
// reload it (SIGHUP) and waits until it accepts announces for them.
//
// The tracker's first read of the whitelist happens before it chroots and
// fails ("Can't open accesslist file"), so only hashes added with a
// SIGHUP count, which is what Whitelist does.
//
// A scrape cannot tell: opentracker answers an empty "files" dict for a
// hash it refuses and for a known hash without peers alike, and a
// "stopped" announce skips the whitelist check. So each hash is probed
// with a started announce of a dummy peer (127.0.0.1:9, the discard port)
// followed at once by its stopped announce; the dummy peer is listed for
// those few milliseconds only.
func (o *Opentracker) Whitelist(infoHashes ...string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	for _, h := range infoHashes {
		raw, err := hex.DecodeString(h)
		if err != nil || len(raw) != 20 {
			return fmt.Errorf("whitelist %q: not a 40-digit hex info-hash", h)
		}
		b.WriteString(strings.ToLower(h) + "\n")
	}
	f, err := os.OpenFile(o.whitelist, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("whitelist: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("whitelist: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("whitelist: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, h := range infoHashes {
		// A SIGHUP that comes before the tracker has chrooted makes it
		// read the file too early (and fail), so it is sent again with
		// every probe that fails.
		err := poll(ctx, o.Process, func() (bool, error) {
			if err := syscall.Kill(o.PID(), syscall.SIGHUP); err != nil {
				return false, fmt.Errorf("reload: %w", err)
			}
			time.Sleep(50 * time.Millisecond) // the reload is asynchronous
			return o.probe(h)
		})
		if err != nil {
			return fmt.Errorf("whitelist %s: tracker still refuses it: %w", h, err)
		}
	}
	return nil
}

// probe announces a dummy peer for infoHash and removes it again. It
// reports whether the tracker accepted the announce.
func (o *Opentracker) probe(infoHash string) (bool, error) {
	a := Announce{InfoHash: infoHash, PeerID: "-BL0000-whitelistprb", Port: 9}
	if _, err := o.Announce(a); err != nil {
		return false, err
	}
	a.Event = "stopped"
	if _, err := o.Announce(a); err != nil {
		return false, err
	}
	return true, nil
}

// Announce is an HTTP announce made with Opentracker.Announce.
type Announce struct {
	InfoHash string // hex
	PeerID   string // 20 bytes
	Port     int
	Left     int64
	Event    string // "", started, completed, stopped
}

// AnnounceReply is the tracker's answer to an Announce.
type AnnounceReply struct {
	Interval   int
	Complete   int
	Incomplete int
	Peers      []netip.AddrPort
}

// errTrackerFailure is wrapped by errors carrying a tracker's "failure
// reason".
var errTrackerFailure = errors.New("tracker refused")

// Announce makes one HTTP announce from 127.0.0.1, as a fake peer would. A
// "failure reason" reply is returned as an error.
func (o *Opentracker) Announce(a Announce) (AnnounceReply, error) {
	raw, err := hex.DecodeString(a.InfoHash)
	if err != nil || len(raw) != 20 {
		return AnnounceReply{}, fmt.Errorf("announce %q: not a 40-digit hex info-hash", a.InfoHash)
	}
	u := fmt.Sprintf("%s?info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d&compact=1",
		o.HTTPAnnounce, announce.EscapeBytes(raw), announce.EscapeBytes([]byte(a.PeerID)), a.Port, a.Left)
	if a.Event != "" {
		u += "&event=" + a.Event
	}
	var reply struct {
		Failure    string `bencode:"failure reason"`
		Interval   int    `bencode:"interval"`
		Complete   int    `bencode:"complete"`
		Incomplete int    `bencode:"incomplete"`
		Peers      []byte `bencode:"peers"`
	}
	if err := o.get(u, &reply); err != nil {
		return AnnounceReply{}, fmt.Errorf("announce %s: %w", a.InfoHash, err)
	}
	if reply.Failure != "" {
		return AnnounceReply{}, fmt.Errorf("announce %s: %w: %s", a.InfoHash, errTrackerFailure, reply.Failure)
	}
	out := AnnounceReply{Interval: reply.Interval, Complete: reply.Complete, Incomplete: reply.Incomplete}
	for p := reply.Peers; len(p) >= 6; p = p[6:] {
		ip := netip.AddrFrom4([4]byte(p[:4]))
		out.Peers = append(out.Peers, netip.AddrPortFrom(ip, uint16(p[4])<<8|uint16(p[5])))
	}
	return out, nil
}

// ScrapeResult is one torrent's entry in a scrape reply. opentracker never
// sends BEP 21's "downloaders".
type ScrapeResult struct {
	Complete   int `bencode:"complete"`
	Downloaded int `bencode:"downloaded"`
	Incomplete int `bencode:"incomplete"`
}

// Scrape scrapes infoHash (hex) over HTTP. A hash the tracker has no peers
// for (or refuses) gives a zero result.
func (o *Opentracker) Scrape(infoHash string) (ScrapeResult, error) {
	raw, err := hex.DecodeString(infoHash)
	if err != nil || len(raw) != 20 {
		return ScrapeResult{}, fmt.Errorf("scrape %q: not a 40-digit hex info-hash", infoHash)
	}
	var reply struct {
		Files   map[string]ScrapeResult `bencode:"files"`
		Failure string                  `bencode:"failure reason"`
	}
	if err := o.get(o.HTTPScrape+"?info_hash="+announce.EscapeBytes(raw), &reply); err != nil {
		return ScrapeResult{}, fmt.Errorf("scrape %s: %w", infoHash, err)
	}
	if reply.Failure != "" {
		return ScrapeResult{}, fmt.Errorf("scrape %s: tracker: %s", infoHash, reply.Failure)
	}
	return reply.Files[string(raw)], nil
}

// WaitScrape polls Scrape until ok accepts the result.
func (o *Opentracker) WaitScrape(ctx context.Context, infoHash string, ok func(ScrapeResult) bool) (ScrapeResult, error) {
	var last ScrapeResult
	err := poll(ctx, o.Process, func() (bool, error) {
		r, err := o.Scrape(infoHash)
		if err != nil {
			return false, err
		}
		last = r
		return ok(r), nil
	})
	if err != nil {
		return last, fmt.Errorf("scrape %s: last %+v: %w", infoHash, last, err)
	}
	return last, nil
}

// get fetches u and decodes its bencoded body into v.
func (o *Opentracker) get(u string, v any) error {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %q", u, resp.Status, body)
	}
	if err := bencode.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w: %q", u, err, body)
	}
	return nil
}
