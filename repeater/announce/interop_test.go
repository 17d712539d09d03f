package announce_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/lab"
)

// Ensure that real opentracker accepts our announces over HTTP (with
// event=paused, which it ignores) and UDP: the partial seed (left > 0)
// counts as incomplete, another peer gets our LocalIP:Port back, and
// the stopped announce at shutdown removes us.
func TestInterop_Opentracker(t *testing.T) {
	lab.Require(t, "opentracker")
	ot := lab.StartOpentracker(t)
	for _, proto := range []string{"http", "udp"} {
		t.Run(proto, func(t *testing.T) {
			var ih metainfo.Hash
			rand.Read(ih[:])
			hexIH := hex.EncodeToString(ih[:])
			if err := ot.Whitelist(hexIH); err != nil {
				t.Fatal(err)
			}
			trackerURL := ot.HTTPAnnounce
			if proto == "udp" {
				trackerURL = ot.UDPAnnounce
			}
			local := lab.NextAddr()
			o := fastOptions(trackerURL)
			o.InfoHash = ih
			o.LocalIP = local
			o.Port = 40123
			o.MinInterval = 200 * time.Millisecond // opentracker says 1800 s; the cap makes it 300 ms
			o.MaxInterval = 300 * time.Millisecond
			o.StopTimeout = 3 * time.Second
			o.AnnounceTimeout = 3 * time.Second
			a := mustNew(t, o)

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			defer func() { cancel(); <-done }()

			// Wait for a periodic announce (paused over HTTP, none over UDP).
			wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer wcancel()
			for {
				st := a.Status()[0]
				if st.LastError == "" && st.LastEvent != "started" && !st.LastSuccess.IsZero() {
					want := "paused"
					if proto == "udp" {
						want = ""
					}
					if st.LastEvent != want {
						t.Errorf("periodic announce carried %q, want %q", st.LastEvent, want)
					}
					break
				}
				if st.Failures > 0 {
					t.Fatalf("announce failed: %+v", st)
				}
				select {
				case <-wctx.Done():
					t.Fatalf("no periodic announce: %+v", st)
				case <-time.After(20 * time.Millisecond):
				}
			}
			if a.PausedRefused(trackerURL) {
				t.Error("opentracker marked as refusing paused; it ignores paused")
			}
			sr, err := ot.WaitScrape(wctx, hexIH, func(r lab.ScrapeResult) bool { return r.Incomplete == 1 })
			if err != nil {
				t.Fatalf("partial seed not counted as incomplete: %v", err)
			}
			if sr.Complete != 0 {
				t.Errorf("scrape %+v: a partial seed with left > 0 counted as complete", sr)
			}

			// Another peer gets our address (LocalIP, Port) back.
			other := lab.Announce{InfoHash: hexIH, PeerID: "-XX0001-otherpeer000", Port: 50001, Left: 100, Event: "started"}
			rep, err := ot.Announce(other)
			if err != nil {
				t.Fatal(err)
			}
			me := netip.AddrPortFrom(local, 40123)
			if !slices.Contains(rep.Peers, me) {
				t.Errorf("other peer got %v, want it to contain %v", rep.Peers, me)
			}
			other.Event = "stopped"
			if _, err := ot.Announce(other); err != nil {
				t.Fatal(err)
			}

			cancel()
			start := time.Now()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			done <- nil // for the deferred receive
			t.Logf("Run returned %v after cancel", time.Since(start))
			if st := a.Status()[0]; st.LastEvent != "stopped" || st.LastError != "" {
				t.Errorf("stopped announce: %+v", st)
			}
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			if _, err := ot.WaitScrape(sctx, hexIH, func(r lab.ScrapeResult) bool {
				return r.Incomplete == 0 && r.Complete == 0
			}); err != nil {
				t.Errorf("still listed after stopped: %v", err)
			}
		})
	}
}
