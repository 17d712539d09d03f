package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/cache"
	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/friendsvc"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/ledger"
	"github.com/btslave/btslave/master"
)

// logBuf is a goroutine-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testAppLog is testAppWith logging into the returned buffer.
func testAppLog(t *testing.T, mutate func(*config.Config)) (*App, *logBuf) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Peer.Listen, cfg.Peer.IPv6 = "127.0.0.1:0", false
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Cache.Size = 8 << 20
	cfg.Friends.Enabled, cfg.Friends.Listen = true, config.Addr(freeAddr(t))
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	lb := &logBuf{}
	a, err := newApp(cfg, slog.New(slog.NewTextHandler(lb, nil)), appOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return a, lb
}

// Ensure that a friend's help request that would break our caps or
// filters (max_swarms, the cache, the upload limit, a feed's exclude
// pattern) is refused with its reason in the reply and in the log, joins
// nothing and leaves the ledger unchanged.
func TestFriendHelpRespectsCaps(t *testing.T) {
	feedDir := t.TempDir()
	a, lb := testAppLog(t, func(c *config.Config) {
		c.Repeater.MaxSwarms = 1
		c.Peer.UploadLimit = 100 << 10
		c.Feeds.Feed = []config.Feed{{Name: "mine", Dir: feedDir, Exclude: "(?i)\\bcam\\b"}}
	})
	friend, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	big, _, bigIH, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 12 << 20, Name: "big.iso"})
	bigRaw, _ := os.ReadFile(big)
	ask := func(r friends.HelpRequest) friends.HelpReply {
		t.Helper()
		r.Master = "127.0.0.1:9"
		if r.InfoHash == "" {
			r.InfoHash = strings.Repeat("7c", 20)
		}
		return a.friends.svc.HelpRequest(ctx, friend, r)
	}
	refused := func(what string, rep friends.HelpReply, want string) {
		t.Helper()
		if rep.Accept || !strings.Contains(rep.Reason, want) {
			t.Errorf("%s: %+v, want refused for %q", what, rep, want)
		}
		if !strings.Contains(lb.String(), want) {
			t.Errorf("%s: the log lacks %q", what, want)
		}
	}
	// The cache: a torrent larger than the cache is fine (the cache
	// evicts as it streams) while no piece must stay; the room left by
	// pinned pieces and our own swarms' is TestCacheRoom's, the refusal
	// ledger.TestDecide's.
	if l := a.friendLimits(ledgerRequest(t, bigIH, bigRaw)); l.CacheFree != 8<<20 || l.SwarmCache != 8<<20 {
		t.Errorf("cache limits %+v, want all 8 MiB free, one swarm up to 8 MiB", l)
	}
	refused("filters", ask(friends.HelpRequest{Magnet: "magnet:?xt=urn:btih:" + strings.Repeat("7c", 20) + "&dn=Film.2026.CAM.x264"}), "Film.2026.CAM.x264")
	refused("no name", ask(friends.HelpRequest{Magnet: "magnet:?xt=urn:btih:" + strings.Repeat("7c", 20)}), "gives no name")
	refused("wrong metainfo", ask(friends.HelpRequest{InfoHash: strings.Repeat("7d", 20), Metainfo: bigRaw}), "metainfo is of")
	a.friends.up.sample(time.Now().Add(-5*time.Second), 0)
	a.friends.up.sample(time.Now(), 5*200<<10) // 200 KiB/s against a 100 KiB/s limit
	refused("upload", ask(friends.HelpRequest{Magnet: "magnet:?xt=urn:btih:" + strings.Repeat("7c", 20) + "&dn=Linux.iso"}), "upload limit reached")
	a.friends.up.sample(time.Now().Add(5*time.Second), 5*200<<10)
	if rep := ask(friends.HelpRequest{Magnet: "magnet:?xt=urn:btih:" + strings.Repeat("7c", 20) + "&dn=Linux.iso"}); !rep.Accept {
		t.Fatalf("a request within the caps: %+v", rep)
	}
	refused("max_swarms", ask(friends.HelpRequest{InfoHash: strings.Repeat("7e", 20), Magnet: "magnet:?xt=urn:btih:" + strings.Repeat("7e", 20) + "&dn=Other.iso"}), "max_swarms 1 reached")
	if n := len(a.rep.Swarms()); n != 1 {
		t.Errorf("%d swarms joined, want only the accepted one", n)
	}
	if b, err := a.friends.ledger.BalanceOf(friend); err != nil || b.Given != 0 || b.Taken != 0 {
		t.Errorf("ledger changed: %+v %v", b, err)
	}
}

// Ensure that a friend comes before free repeating: at max_swarms, a
// friend's help request is accepted and takes the slot of the swarm the
// autopilot joined, which is left; with no such swarm it is refused.
func TestFriendHelpBeforeFreeRepeating(t *testing.T) {
	a, lb := testAppLog(t, func(c *config.Config) { c.Repeater.MaxSwarms = 1 })
	friend, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	free, _, _, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 1 << 20, Name: "public.iso"})
	freeRaw, _ := os.ReadFile(free)
	freeIH, err := a.joinEntry(&feeds.Entry{Torrent: freeRaw})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ih := strings.Repeat("7f", 20)
	rep := a.friends.svc.HelpRequest(ctx, friend, friends.HelpRequest{InfoHash: ih, Magnet: "magnet:?xt=urn:btih:" + ih + "&dn=Friend.iso", Master: "127.0.0.1:9"})
	if !rep.Accept {
		t.Fatalf("a friend's request at max_swarms with a free swarm: %+v", rep)
	}
	if a.rep.Swarm(freeIH) != nil {
		t.Error("the autopilot's swarm is still served")
	}
	var want metainfo.Hash
	_ = want.FromHexString(ih)
	if sw := a.rep.Swarms(); len(sw) != 1 || sw[0].InfoHash() != want {
		t.Errorf("swarms after the friend's request: %v, want only %s", sw, ih)
	}
	if !strings.Contains(lb.String(), "gives its slot to a friend's master") {
		t.Error("the log does not say why the free swarm was left")
	}
	// The slot is the friend's now, not free: the next friend is refused.
	other := strings.Repeat("80", 20)
	if rep := a.friends.svc.HelpRequest(ctx, friend, friends.HelpRequest{InfoHash: other, Magnet: "magnet:?xt=urn:btih:" + other + "&dn=Other.iso", Master: "127.0.0.1:9"}); rep.Accept || !strings.Contains(rep.Reason, "max_swarms 1 reached") {
		t.Errorf("a second request at max_swarms: %+v", rep)
	}
}

// Ensure that with auto_cashin on, a poll of our master showing a starved
// torrent cashes in once with a friend at the master's address, and that
// torrents not starved (or with unknown figures) are not cashed in.
func TestAutoCashinStarved(t *testing.T) {
	helper, _ := testAppLog(t, nil)
	asker, lb := testAppLog(t, func(c *config.Config) { c.Friends.AutoCashin, c.Friends.StarvedRatio = true, 4 })
	inv, _ := friends.NewInvite(helper.friends.id, helper.friends.ln.Addr().String(), time.Hour, time.Now())
	if _, err := asker.friends.book.AddInvite(inv); err != nil {
		t.Fatal(err)
	}
	starved := master.Torrent{InfoHash: strings.Repeat("8a", 20), Name: "starved", Magnet: "magnet:?xt=urn:btih:" + strings.Repeat("8a", 20), Seeders: 1, Leechers: 9}
	fine := master.Torrent{InfoHash: strings.Repeat("8b", 20), Name: "fine", Seeders: 5, Leechers: 9}
	unknown := master.Torrent{InfoHash: strings.Repeat("8c", 20), Name: "unknown", Seeders: -1, Leechers: -1}
	peer := netip.MustParseAddrPort("127.0.0.1:9")
	ctx := context.Background()
	for range 3 { // a poll every few seconds: one cash-in
		asker.autoCashin(ctx, []master.Torrent{starved, fine, unknown}, peer)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(lb.String(), "auto_cashin: friends help") {
		if time.Now().After(deadline) {
			t.Fatalf("no auto cash-in; log:\n%s", lb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := map[string]bool{}
	for _, s := range helper.rep.Swarms() {
		got[s.InfoHash().HexString()] = true
	}
	if !got[starved.InfoHash] || got[fine.InfoHash] || got[unknown.InfoHash] || len(got) != 1 {
		t.Fatalf("the helper joined %v, want only the starved swarm", got)
	}
	if n := strings.Count(lb.String(), "auto_cashin:"); n != 1 {
		t.Errorf("%d auto cash-ins logged, want 1", n)
	}
	if w := asker.friends.meter.Arrivals(); len(w) != 1 || w[0].InfoHash != starved.InfoHash {
		t.Errorf("the meter watches %+v, want the starved swarm", w)
	}
}

func ledgerRequest(t *testing.T, ih string, raw []byte) ledger.Request {
	t.Helper()
	r, err := friendsvc.Describe(nil, friends.HelpRequest{InfoHash: ih, Metainfo: raw})
	if err != nil || r.Size != 12<<20 || r.Name != "big.iso" {
		t.Fatalf("describe: %+v %v", r, err)
	}
	return r
}

// Ensure that the cache room for a friend's swarm leaves out pinned
// pieces and the pieces of every swarm but free repeating ones.
func TestCacheRoom(t *testing.T) {
	var own, auto metainfo.Hash
	own[0], auto[0] = 1, 2
	st := cache.Stats{Budget: 100, Pinned: 10, Torrents: map[metainfo.Hash]int64{own: 50, auto: 30}}
	free := func(ih metainfo.Hash) bool { return ih == auto }
	if got := cacheRoom(st, free); got != 40 {
		t.Fatalf("room %d, want 100 - 10 pinned - 50 own", got)
	}
	st.Torrents[own] = 95
	if got := cacheRoom(st, free); got != 0 {
		t.Fatalf("room %d, want 0", got)
	}
}
