package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/daemon"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater/announce"
)

// chromium is Debian's browser, installed by internal/lab/install-deps.sh
// (lab.Require checks it is in PATH).
const chromium = "chromium"

// runDaemon starts a daemon on loopback with the embedded tracker on and
// the autopilot ranking every second, and no feed.
func runDaemon(t *testing.T, trackerPort int) *daemon.App {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Peer.Listen, cfg.Peer.IPv6 = "127.0.0.1:0", false
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Cache.Size = 8 << 20
	cfg.Tracker.Enabled, cfg.Tracker.Open = true, true
	cfg.Tracker.HTTPListen, cfg.Tracker.UDPListen = fmt.Sprintf("127.0.0.1:%d", trackerPort), ""
	cfg.Auto.Interval, cfg.Auto.ScrapeMaxAge = config.Duration(time.Second), 0
	cfg.Auto.MinScore = 0.1 // a fresh feed item scores low on age
	cfg.Feeds.Jitter = 0
	cfg.Publish.Listen = "127.0.0.1:0"
	cfg.Friends.Enabled, cfg.Friends.Accept = true, "ask"
	cfg.Friends.Listen = config.Addr(fmt.Sprintf("127.0.0.1:%d", lab.FreePort(t, lab.Loopback)))
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	return a
}

func announceFake(t *testing.T, base string, ih metainfo.Hash, port int, left int64, event string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/announce?info_hash=%s&peer_id=-XX0001-%012d&port=%d&uploaded=0&downloaded=0&left=%d&event=%s",
		base, announce.EscapeBytes(ih[:]), port, port, left, event))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// screenshotDir is where the screenshots go: docs/ with
// BTSLAVE_SCREENSHOTS=docs (to refresh the README's), else a temp dir.
func screenshotDir(t *testing.T) string {
	if os.Getenv("BTSLAVE_SCREENSHOTS") == "docs" {
		return filepath.Join("..", "docs", "screenshots")
	}
	return t.TempDir()
}

// Ensure the dashboard works in a real browser: Debian's chromium, driven
// by chromedp, logs in through the one-time URL, adds a feed through the
// form (after testing it: one item kept, one excluded, and why) and sees
// its items, sees the swarm the autopilot joined with its score, sees the
// charts draw, and is refused without the cookie and from a foreign
// Origin. It publishes a directory through the publish form and sees it
// listed with its magnet, and accepts and denies friend requests that
// two repeaters met in a swarm made, on the friends page. It saves
// screenshots, at desktop and phone width.
func TestBrowserDashboard(t *testing.T) {
	lab.Require(t, "chromium")
	port := lab.FreePort(t, lab.Loopback)
	trackerBase := fmt.Sprintf("http://127.0.0.1:%d", port)
	var ih, other metainfo.Hash
	copy(ih[:], "btslave browser test")
	copy(other[:], "btslave browser beta")
	mux := http.NewServeMux()
	mux.HandleFunc("/rss", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/rss+xml")
		item := func(title string, h metainfo.Hash) string {
			return fmt.Sprintf(`<item><title>%s</title><link>magnet:?xt=urn:btih:%s&amp;dn=%s&amp;tr=%s</link></item>`,
				title, h.HexString(), strings.ReplaceAll(title, " ", "+"), trackerBase+"/announce")
		}
		fmt.Fprintf(w, `<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>%s%s</channel></rss>`,
			item("Ubuntu test image", ih), item("Ubuntu beta image", other))
	})
	var attackerHits atomic.Int32
	mux.HandleFunc("/evil", func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		w.Header().Set("Content-Type", "text/html")
		dash := r.URL.Query().Get("dash")
		// A page on another origin of the same site posts a feed with the
		// browser's cookies.
		fmt.Fprintf(w, `<!doctype html><body><form id="f" method="post" action="%s/api/v1/feeds" enctype="text/plain">`+
			`<input name='{"url":"http://127.0.0.1:1/x","name":"evil","a":"' value='"}'></form>`+
			`<script>fetch(%q + "/api/v1/feeds", {method: "POST", credentials: "include", mode: "no-cors", body: '{"url":"http://127.0.0.1:1/y","name":"evil2"}'}).finally(() => document.getElementById("f").submit())</script></body>`,
			dash, dash)
	})
	feed := httptest.NewServer(mux)
	defer feed.Close()

	a := runDaemon(t, port)
	announceFake(t, trackerBase, ih, 1001, 0, "completed") // a seed
	announceFake(t, trackerBase, ih, 1002, 50, "started")  // downloaders
	announceFake(t, trackerBase, ih, 1003, 50, "started")
	dash := "http://" + a.APIAddr()
	tok, err := api.ReadToken(a.DB().Dir())
	if err != nil {
		t.Fatal(err)
	}
	client := api.NewClient(a.APIAddr(), tok)

	ctx, cancelT := browser(t)
	defer cancelT()
	fail := func(what string, err error) {
		t.Helper()
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
		t.Fatalf("%s: %v\npage: %.2000s", what, err, body)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			fail(what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			fail("text of "+sel, err)
		}
		return v
	}
	evalBool := func(what, expr string, opts ...chromedp.EvaluateOption) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr, opts...))
		if err != nil {
			fail(what, err)
		}
		return v
	}
	shots := screenshotDir(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			fail("screenshot "+name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Log in with the one-time URL; it works once.
	lc, err := client.LoginCode(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	do("log in", chromedp.Navigate(dash+lc.Path), chromedp.WaitVisible(chromedp.CSS(`#nav a[data-page="overview"]`)),
		chromedp.WaitVisible(chromedp.CSS(`.hint`)))
	if hint := text(`.hint`); !strings.Contains(hint, "btslave feeds add URL") {
		t.Errorf("a new daemon's overview hint is %q", hint)
	}
	cookies, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
		return res.Cookies, err
	})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies {
		if c.Name == api.SessionCookie {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie %+v", session)
	}

	// Test the feed through the form, then add it.
	do("test a feed",
		chromedp.Navigate(dash+"/#feeds"),
		chromedp.WaitVisible(chromedp.ID("feed-url")),
		chromedp.SendKeys(chromedp.ID("feed-url"), feed.URL+"/rss"),
		chromedp.SendKeys(chromedp.ID("feed-exclude"), "beta"),
		chromedp.SendKeys(chromedp.ID("feed-name"), "ubuntu"),
		chromedp.Click(chromedp.ID("feed-test-btn")),
		chromedp.WaitVisible(chromedp.CSS(`#feed-test table`)))
	if tt := text("#feed-test"); !strings.Contains(tt, "2 items, 1 kept") || !strings.Contains(tt, "Ubuntu beta image") || !strings.Contains(tt, "exclude") {
		t.Errorf("feed test shows %q", tt)
	}
	do("add the feed",
		chromedp.Click(chromedp.ID("feed-add-btn")),
		chromedp.WaitVisible(chromedp.CSS(`#feed-list tr[data-feed="ubuntu"]`)),
		chromedp.Poll[chromedp.Void](`(() => { const r = document.querySelector('#feed-list tr[data-feed="ubuntu"]'); return r && r.cells[3].textContent === '2' })()`,
			chromedp.WithPollingTimeout(20*time.Second)))
	if lt := text("#feed-list"); !strings.Contains(lt, feed.URL) {
		t.Errorf("feed list shows %q", lt)
	}
	// The feed just added shows its items: the one kept, not the excluded.
	do("see the feed's items", chromedp.WaitVisible(chromedp.CSS(`#feed-items tr[data-infohash="`+ih.HexString()+`"]`),
		chromedp.RetryInterval(200*time.Millisecond)))
	if it := text("#feed-items"); !strings.Contains(it, "Ubuntu test image") || !strings.Contains(it, "1 item") || strings.Contains(it, "beta") {
		t.Errorf("the added feed's items show %q", it)
	}
	shot("dashboard-feeds.png")

	// The autopilot ranks the feed's torrent (one seed, two downloaders)
	// and joins it; the swarms page shows it served, with its score.
	var rk *api.Ranking
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if rk, err = client.Ranking(context.Background()); err == nil && len(rk.Swarms) > 0 && rk.Swarms[0].Serving {
			break
		}
	}
	if rk == nil || len(rk.Swarms) == 0 || !rk.Swarms[0].Serving {
		t.Fatalf("the autopilot joined nothing: ranking %+v", rk)
	}
	row := fmt.Sprintf(`#page-swarms tr.serving[data-infohash="%s"]`, ih.HexString())
	do("see the joined swarm", chromedp.Navigate(dash+"/#swarms"),
		chromedp.WaitVisible(chromedp.CSS(row), chromedp.RetryInterval(200*time.Millisecond)))
	rowText, score := text(row), text(row+` td:nth-child(3)`)
	if f, err := strconv.ParseFloat(strings.TrimSpace(score), 64); err != nil || f <= 0 {
		t.Errorf("score cell %q in row %q", score, rowText)
	}
	if !strings.Contains(rowText, "yes") {
		t.Errorf("swarm row %q does not say it is served", rowText)
	}
	shot("dashboard-swarms.png")

	// The charts draw once there are samples.
	do("charts", chromedp.Navigate(dash+"/#overview"),
		chromedp.Poll[chromedp.Void](`Number((document.getElementById('chart-rate') || {dataset: {}}).dataset.points) > 2`,
			chromedp.WithPollingTimeout(20*time.Second)))
	if !evalBool("chart pixels", `(() => { const c = document.getElementById('chart-rate'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
		let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n > 500 })()`) {
		t.Error("the rate chart drew nothing")
	}
	shot("dashboard-overview.png")
	do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Sleep(500*time.Millisecond))
	if !evalBool("sideways", `document.documentElement.scrollWidth <= window.innerWidth + 1`) {
		t.Error("the overview scrolls sideways at phone width")
	}
	shot("dashboard-phone.png")
	do("desktop again", chromedp.EmulateViewport(1280, 900))

	publishThroughForm(t, ctx, dash, do, text, shot)
	friendsThroughPage(t, ctx, a, ih, dash, do, text, shot)

	// The other pages draw, and no poll failed on any of them.
	for page, want := range map[string]string{"visits": "No visit has ended yet", "tracker": trackerBase + "/announce", "master": "No [master] configured"} {
		do(page, chromedp.Navigate(dash+"/#"+page), chromedp.WaitVisible(chromedp.ID("page-"+page)),
			chromedp.Poll[chromedp.Void](`document.getElementById('page-`+page+`').textContent.length > 0`, chromedp.WithPollingTimeout(10*time.Second)))
		if got := text("#page-" + page); !strings.Contains(got, want) {
			t.Errorf("%s page shows %q, want %q", page, got, want)
		}
	}
	if evalBool("poll errors", `document.getElementById('live').classList.contains('err')`) {
		t.Errorf("the dashboard's polls failed: %q", text("#live"))
	}
	// Every page fits a phone's width (wide tables scroll in their box).
	do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, page := range []string{"swarms", "visits", "feeds", "tracker", "master", "published", "friends"} {
		do(page+" on a phone", chromedp.Navigate(dash+"/#"+page), chromedp.WaitVisible(chromedp.ID("page-"+page)), chromedp.Sleep(300*time.Millisecond))
		if !evalBool("sideways", `document.documentElement.scrollWidth <= window.innerWidth + 1`) {
			t.Errorf("the %s page scrolls sideways at phone width", page)
		}
	}
	do("desktop again", chromedp.EmulateViewport(1280, 900))

	// Without the cookie, and from a foreign origin, the API refuses.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('/api/v1/status', {credentials: 'omit'}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		fail("fetch without the cookie", err)
	}
	if status != http.StatusUnauthorized {
		t.Errorf("status without the cookie: %d, want 401", status)
	}
	do("a foreign page posts", chromedp.Navigate(feed.URL+"/evil?dash="+dash), chromedp.Sleep(2*time.Second))
	if attackerHits.Load() == 0 {
		t.Fatal("the foreign page was not loaded")
	}
	fs, err := client.Feeds(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if strings.HasPrefix(f.Name, "evil") {
			t.Errorf("a foreign page added feed %q", f.Name)
		}
	}
	req, _ := http.NewRequest("POST", dash+"/api/v1/feeds", strings.NewReader(`{"url":"http://127.0.0.1:1/z"}`))
	req.Header.Set("Cookie", session.Name+"="+session.Value)
	req.Header.Set("Origin", feed.URL)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the browser's cookie with a foreign Origin: %s, want 403", resp.Status)
	}
	// The one-time URL does not work twice.
	do("reuse the code", chromedp.Navigate(dash+lc.Path))
	if again := text("body"); !strings.Contains(again, "used already or has expired") {
		t.Errorf("a used login code shows %q", again)
	}
}

// browser starts Debian's chromium headless with a fresh profile and
// returns a tab's context, good for 90 s.
func browser(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelB := chromedp.NewContext(actx)
	// The first Run starts the browser and must not have a timeout.
	if err := chromedp.Do(bctx); err != nil {
		cancelB()
		cancelA()
		t.Fatalf("start chromium: %v", err)
	}
	// A guard against a hang, not a speed check: the dashboard test alone
	// takes about 55 s, and beside cmd/btslave's daemons in the full suite
	// it ran out of a 90 s budget.
	ctx, cancelT := context.WithTimeout(bctx, 4*time.Minute)
	return ctx, func() { cancelT(); cancelB(); cancelA() }
}

func chromiumPath(t *testing.T) string {
	p, err := exec.LookPath(chromium)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
