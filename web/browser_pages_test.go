package web_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/chromedp/chromedp"
	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/daemon"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/ledger"
)

// The steps TestBrowserDashboard hands its pages' checks.
type (
	doFunc   func(what string, steps ...chromedp.Action[chromedp.Void])
	textFunc func(sel string) string
	shotFunc func(name string)
)

func daemonClient(t *testing.T, a *daemon.App) *api.Client {
	t.Helper()
	tok, err := api.ReadToken(a.DB().Dir())
	if err != nil {
		t.Fatal(err)
	}
	return api.NewClient(a.APIAddr(), tok)
}

// publishThroughForm publishes a small directory through the published
// page's form and sees it listed with its magnet; a path that does not
// exist and a relative one are refused with a clear message.
func publishThroughForm(t *testing.T, ctx context.Context, dash string, do doFunc, text textFunc, shot shotFunc) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dataset")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"a.bin", "b.txt", "sub/c.bin"} {
		b := make([]byte, 100<<10+i*1000)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do("publish a relative path", chromedp.Navigate(dash+"/#published"),
		chromedp.WaitVisible(chromedp.ID("pub-paths")),
		chromedp.SendKeys(chromedp.ID("pub-paths"), "relative/dir"),
		chromedp.Click(chromedp.ID("pub-btn")),
		chromedp.WaitVisible(chromedp.CSS(`#pub-msg.err`)))
	if m := text("#pub-msg"); !strings.Contains(m, "absolute path") {
		t.Errorf("a relative path says %q", m)
	}
	do("publish a missing path",
		chromedp.SetValue(chromedp.ID("pub-paths"), dir+"-missing"),
		chromedp.Click(chromedp.ID("pub-btn")),
		chromedp.Poll[chromedp.Void](`document.getElementById('pub-msg').textContent.includes('no such file')`, chromedp.WithPollingTimeout(10*time.Second)))
	do("publish a directory",
		chromedp.SetValue(chromedp.ID("pub-paths"), dir),
		chromedp.SetValue(chromedp.ID("pub-version"), "v1"),
		chromedp.SetValue(chromedp.ID("pub-piece"), "32768"),
		chromedp.SendKeys(chromedp.ID("pub-name"), "browser-dataset"),
		chromedp.SendKeys(chromedp.ID("pub-comment"), "published from the dashboard"),
		chromedp.Click(chromedp.ID("pub-btn")),
		chromedp.WaitVisible(chromedp.CSS(`#pub-msg.ok`), chromedp.RetryInterval(200*time.Millisecond)),
		chromedp.WaitVisible(chromedp.CSS(`#pub-list tr[data-infohash]`), chromedp.RetryInterval(200*time.Millisecond)))
	if r := text("#pub-results"); !strings.Contains(r, "browser-dataset") || !strings.Contains(r, "magnet:?xt=urn:btih:") || !strings.Contains(r, ".torrent") || !strings.Contains(r, "/t/") {
		t.Errorf("the publish result shows %q", r)
	}
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#pub-results a').href`))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(href); err != nil {
		t.Errorf("the .torrent link %s: %v", href, err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(b, []byte("d")) {
			t.Errorf("the .torrent link %s: %s, %d bytes", href, resp.Status, len(b))
		}
	}
	row := text("#pub-list")
	if !strings.Contains(row, "browser-dataset") || !strings.Contains(row, "magnet:?xt=urn:btih:") || !strings.Contains(row, "v1") || !strings.Contains(row, "seeding") {
		t.Errorf("the published list shows %q", row)
	}
	shot("dashboard-published.png")
}

// friendsThroughPage has two repeaters met in the daemon's swarm ih ask
// to be friends (their swarm hellos over bts_friends), then accepts one
// and denies the other with the friends page's buttons, and makes an
// invite code there.
func friendsThroughPage(t *testing.T, ctx context.Context, a *daemon.App, ih metainfo.Hash, dash string, do doFunc, text textFunc, shot shotFunc) {
	t.Helper()
	client := daemonClient(t, a)
	st, err := client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	peer := fmt.Sprintf("127.0.0.1:%d", st.Peer.Port)
	var ids [2]string
	var keys [2]friends.Identity
	for i := range ids {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		id := friends.Identity{Private: priv}
		ids[i], keys[i] = id.ID().String(), id
		hctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := lab.SayFriendHello(hctx, peer, ih, id, fmt.Sprintf("127.0.0.%d:7980", 2+i))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	pendingRow := func(id string) string { return `#friends-pending tr[data-friend="` + id + `"]` }
	do("see the requests", chromedp.Navigate(dash+"/#friends"),
		chromedp.WaitVisible(chromedp.CSS(pendingRow(ids[0])), chromedp.RetryInterval(200*time.Millisecond)),
		chromedp.WaitVisible(chromedp.CSS(pendingRow(ids[1])), chromedp.RetryInterval(200*time.Millisecond)))
	if h := text("#friends-head"); !strings.Contains(h, "accept = ask") {
		t.Errorf("friends head shows %q", h)
	}
	do("accept one", chromedp.Click(chromedp.CSS(pendingRow(ids[0])+` button.accept`)),
		chromedp.WaitVisible(chromedp.CSS(`#friends-list tr[data-friend="`+ids[0]+`"]`), chromedp.RetryInterval(200*time.Millisecond)),
		chromedp.WaitNotPresent(chromedp.CSS(pendingRow(ids[0]))))
	if row := text(`#friends-list tr[data-friend="` + ids[0] + `"]`); !strings.Contains(row, "127.0.0.2:7980") || !strings.Contains(row, "accepted") {
		t.Errorf("the accepted friend's row is %q", row)
	}
	// The friend and we helped each other's masters: IOUs both signed,
	// stored through the daemon's ledger as the direct channel would.
	seedIOUs(t, a, keys[0], ih)
	do("see the ledger", chromedp.WaitVisible(chromedp.CSS(`#ledger tr[data-account="`+ids[0]+`"]`), chromedp.RetryInterval(200*time.Millisecond)),
		chromedp.Click(chromedp.CSS(`#ledger details[data-why="`+ids[0]+`"] summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#ledger details[data-why="`+ids[0]+`"] table`)))
	if lt := text("#ledger"); !strings.Contains(lt, "+2.0 MiB") || !strings.Contains(lt, "we helped your master") || !strings.Contains(lt, "it helped our master") {
		t.Errorf("the ledger shows %q", lt)
	}
	if row := text(`#friends-list tr[data-friend="` + ids[0] + `"]`); !strings.Contains(row, "+2.0 MiB") {
		t.Errorf("the friend's balance in its row: %q", row)
	}
	do("invite code", chromedp.Click(chromedp.ID("invite-btn")), chromedp.WaitVisible(chromedp.ID("invite-code")))
	if code := text("#invite-code"); !strings.HasPrefix(code, friends.InvitePrefix) {
		t.Errorf("invite code %q", code)
	} else if _, err := friends.ParseInvite(code, time.Now()); err != nil {
		t.Errorf("the page's invite code: %v", err)
	}
	shot("dashboard-friends.png")
	do("deny the other", chromedp.Click(chromedp.CSS(pendingRow(ids[1])+` button.deny`)),
		chromedp.WaitNotPresent(chromedp.CSS(pendingRow(ids[1]))),
		chromedp.WaitVisible(chromedp.CSS(`#friends-msg.ok`)))
	l, err := client.Friends(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Friends) != 1 || l.Friends[0].ID != ids[0] || len(l.Pending) != 0 {
		t.Errorf("after accept and deny the daemon has friends %+v, pending %+v", l.Friends, l.Pending)
	}
	if l.Friends[0].Balance != 2<<20 {
		t.Errorf("the friend's balance is %d, want %d", l.Friends[0].Balance, 2<<20)
	}
}

// seedIOUs stores, through the daemon's ledger, the IOUs of friend having
// helped our master with 3 MiB and of us having helped its master with
// 5 MiB, each signed by both keys.
func seedIOUs(t *testing.T, a *daemon.App, friend friends.Identity, ih metainfo.Hash) {
	t.Helper()
	self, err := friends.LoadIdentity(a.DB().Dir())
	if err != nil {
		t.Fatal(err)
	}
	ours, err := ledger.Open(a.DB().DB, ledger.Options{Identity: self})
	if err != nil {
		t.Fatal(err)
	}
	fdb, err := bolt.Open(filepath.Join(t.TempDir(), "friend.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fdb.Close()
	theirs, err := ledger.Open(fdb, ledger.Options{Identity: friend})
	if err != nil {
		t.Fatal(err)
	}
	// It helped our master: it proposes, we countersign.
	u, err := theirs.Propose(self.Public(), 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	why := fmt.Sprintf("it helped our master 127.0.0.1:51413 with %s", ih.HexString())
	if u, err = ours.Countersign(u, 3<<20, why); err != nil {
		t.Fatal(err)
	}
	if _, _, err := theirs.Accept(u, why); err != nil {
		t.Fatal(err)
	}
	// We helped its master: we propose, it countersigns, we store.
	u, err = ours.Propose(friend.Public(), 5<<20)
	if err != nil {
		t.Fatal(err)
	}
	if u, err = theirs.Countersign(u, 5<<20, "helped"); err != nil {
		t.Fatal(err)
	}
	if stored, _, err := ours.Accept(u, "we helped your master 127.0.0.2:6881 with "+ih.HexString()); err != nil || !stored {
		t.Fatalf("store our IOU: %v %v", stored, err)
	}
}
