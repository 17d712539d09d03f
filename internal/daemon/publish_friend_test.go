package daemon

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/ledger"
)

// loopbackClientConfig is an in-process client's config for these tests:
// loopback only, no DHT, uTP, PEX, port forwarding or trackers, data in a
// temp dir (cc.DataDir); the caller picks the storage.
func loopbackClientConfig(t *testing.T) *torrent.ClientConfig {
	cc := torrent.NewDefaultClientConfig()
	cc.ListenHost = func(string) string { return "127.0.0.1" }
	cc.ListenPort = 0
	cc.DisableIPv6, cc.NoDHT, cc.DisableUTP, cc.DisablePEX, cc.NoDefaultPortForwarding = true, true, true, true, true
	cc.DisableTrackers = true
	cc.DataDir = t.TempDir()
	return cc
}

// fetchFrom downloads the torrent mi with a fresh in-process client that
// knows only the peer at addr, into a temp dir it returns.
func fetchFrom(t *testing.T, mi *metainfo.MetaInfo, addr net.Addr, timeout time.Duration) string {
	t.Helper()
	cc := loopbackClientConfig(t)
	cc.DefaultStorage = storage.NewFileOpts(storage.NewFileClientOpts{ClientBaseDir: cc.DataDir})
	cc.Logger = cc.Logger.WithFilterLevel(alog.Disabled)
	c, err := torrent.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dl, err := c.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	dl.AddPeers([]torrent.PeerInfo{{Addr: addr, Trusted: true}})
	<-dl.GotInfo()
	dl.DownloadAll()
	deadline := time.Now().Add(timeout)
	for !dl.Complete().Bool() {
		if time.Now().After(deadline) {
			t.Fatalf("download from %v: %d of %d bytes", addr, dl.BytesCompleted(), dl.Length())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cc.DataDir
}

// Ensure the second everseed on a friend: the owner asks a friend whose
// everseed_budget fits the torrent; the friend downloads it in full from
// the owner's everseed and seeds it, so that a downloader that knows only
// the friend gets every file once the owner has unpublished; both ledgers
// record the agreement; a friend whose budget is too small refuses and
// says why (the other refusals: TestEverseederBudget); a restarted friend
// still keeps it.
func TestFriendSecondEverseed(t *testing.T) {
	dir := writeFiles(t, map[string]int{"film.mkv": 600000, "notes.txt": 2000})
	friendsOn := func(budget config.Size) func(*config.Config) {
		return func(c *config.Config) {
			c.Auto.Enabled = false
			c.Friends.Enabled = true
			c.Friends.Listen = config.Addr(freeAddr(t))
			c.Friends.EverseedBudget = budget
		}
	}
	owner, _ := testAppWith(t, friendsOn(0))
	keeper, stopKeeper := testAppWith(t, friendsOn(1<<20))
	small, _ := testAppWith(t, friendsOn(100000))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The owner invites both; each dials the owner once (a cash-in for
	// an unknown swarm is enough) so that the owner learns its key, and
	// the owner learns their addresses from their invites.
	for _, f := range []*App{keeper, small} {
		inv, err := friends.NewInvite(f.friends.id, f.friends.ln.Addr().String(), time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := owner.friends.book.AddInvite(inv); err != nil {
			t.Fatal(err)
		}
	}

	p, err := owner.Publish(ctx, api.PublishRequest{Path: dir, PieceLength: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.AskEverseed(ctx, p.InfoHash, "nobody"); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("a bad friend ID: %v, want a bad request", err)
	}
	rep, err := owner.AskEverseed(ctx, p.InfoHash, small.friends.id.ID().String())
	if err != nil || rep.Accepted {
		t.Fatalf("friend with a 100000 B budget: %+v %v, want a refusal", rep, err)
	}
	t.Logf("refused: %s", rep.Reason)
	rep, err = owner.AskEverseed(ctx, p.InfoHash, keeper.friends.id.ID().String())
	if err != nil || !rep.Accepted {
		t.Fatalf("friend with a 1 MiB budget: %+v %v", rep, err)
	}

	var ih metainfo.Hash
	ih.FromHexString(p.InfoHash)
	for {
		kt, ok := keeper.client.Torrent(ih)
		if ok && kt.Info() != nil && kt.Complete().Bool() && keeper.rep.Has(ih, 0) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the friend did not download the torrent in full: in client %v", ok)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if total, has := keeper.Kept(p.InfoHash); !has || total != p.Size {
		t.Errorf("kept: %d B, has %v; want %d", total, has, p.Size)
	}
	if _, err := os.Stat(filepath.Join(keeper.keptDir(), p.InfoHash+".torrent")); err != nil {
		t.Errorf("the kept .torrent is not stored: %v", err)
	}

	// Both ledgers hold the agreement.
	checkLedger := func(who string, l *ledger.Store, role string, accepted bool, n int) {
		t.Helper()
		es, err := l.Everseeds()
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, e := range es {
			if e.Role == role && e.InfoHash == p.InfoHash && e.Accepted == accepted {
				got++
			}
		}
		if got != n {
			t.Errorf("%s ledger: %d %s entries accepted=%v, want %d: %+v", who, got, role, accepted, n, es)
		}
	}
	checkLedger("owner", owner.friends.ledger, ledger.EverseedAsked, true, 1)
	checkLedger("owner", owner.friends.ledger, ledger.EverseedAsked, false, 1)
	checkLedger("keeper", keeper.friends.ledger, ledger.EverseedKeeps, true, 1)
	checkLedger("small", small.friends.ledger, ledger.EverseedKeeps, false, 1)

	// The owner stops seeding; the friend alone serves a new downloader.
	b, err := os.ReadFile(filepath.Join(keeper.keptDir(), p.InfoHash+".torrent"))
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Unpublish(ctx, p.InfoHash); err != nil {
		t.Fatal(err)
	}
	out := fetchFrom(t, mi, net.TCPAddrFromAddrPort(keeper.selfAddr()), 30*time.Second)
	sameFiles(t, "from the friend", dir, filepath.Join(out, "release"))

	// A restarted friend resumes keeping it, without asking again.
	dataDir := keeper.cfg.DataDir
	stopKeeper()
	keeper, _ = testAppWith(t, func(c *config.Config) { friendsOn(1 << 20)(c); c.DataDir = dataDir })
	if _, has := keeper.Kept(p.InfoHash); !has {
		t.Error("the restarted friend forgot the kept torrent")
	}
}
