package scrape_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater/scrape"
)

// swarm is a torrent the interop test gives peers on the tracker.
type swarm struct {
	seeders, leechers, completed int
	whitelisted                  bool
}

// Ensure that our HTTP and UDP scrapes of real opentracker, in one
// request each and from a LocalIP, give the figures opentracker's own
// scrape gives: for torrents with seeders, leechers and completed
// downloads, a whitelisted torrent without peers, and one that is not
// whitelisted.
func TestInterop_Opentracker(t *testing.T) {
	lab.Require(t, "opentracker")
	ot := lab.StartOpentracker(t)
	swarms := []swarm{
		{seeders: 1, leechers: 2, whitelisted: true},
		{seeders: 3, whitelisted: true},
		{leechers: 1, completed: 2, whitelisted: true},
		{whitelisted: true},
		{},
	}
	hashes := make([]metainfo.Hash, len(swarms))
	var allowed []string
	for i, sw := range swarms {
		rand.Read(hashes[i][:])
		hashes[i][0] = ' ' // sent as %20: opentracker decodes no "+"
		if sw.whitelisted {
			allowed = append(allowed, hashes[i].HexString())
		}
	}
	if err := ot.Whitelist(allowed...); err != nil {
		t.Fatal(err)
	}
	port := 40000
	for i, sw := range swarms {
		hexIH := hashes[i].HexString()
		peer := func(left int64, event string) {
			t.Helper()
			port++
			a := lab.Announce{InfoHash: hexIH, PeerID: fmt.Sprintf("-XX0001-%012d", port), Port: port, Left: left, Event: event}
			if _, err := ot.Announce(a); err != nil {
				t.Fatal(err)
			}
			if event == "started" && left > 0 && sw.completed > 0 {
				sw.completed--
				a.Left, a.Event = 0, "completed"
				if _, err := ot.Announce(a); err != nil {
					t.Fatal(err)
				}
			}
		}
		for range sw.seeders {
			peer(0, "started")
		}
		for range sw.leechers + sw.completed {
			peer(1000, "started")
		}
	}

	want := make([]lab.ScrapeResult, len(hashes))
	for i, h := range hashes {
		r, err := ot.Scrape(h.HexString())
		if err != nil {
			t.Fatal(err)
		}
		want[i] = r
	}
	t.Logf("opentracker's own scrape: %+v", want)
	if w := want[0]; w.Complete != 1 || w.Incomplete != 2 {
		t.Fatalf("setup: %+v, want complete 1, incomplete 2", w)
	}
	if w := want[2]; w.Downloaded != 2 || w.Complete != 2 || w.Incomplete != 1 {
		t.Fatalf("setup: %+v, want 2 completed downloads", w)
	}

	for _, proto := range []string{"http", "udp"} {
		t.Run(proto, func(t *testing.T) {
			trackerURL := ot.HTTPAnnounce
			if proto == "udp" {
				trackerURL = ot.UDPAnnounce
			}
			s, err := scrape.New(scrape.Options{LocalIP: lab.NextAddr(), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := s.Scrape(ctx, trackerURL, hashes)
			if err != nil {
				t.Fatal(err)
			}
			for i, h := range hashes {
				r, ok := got[h]
				if !ok {
					t.Errorf("%s: no result", hex.EncodeToString(h[:4]))
					continue
				}
				w := want[i]
				if r.Complete != int64(w.Complete) || r.Incomplete != int64(w.Incomplete) || r.Downloaded != int64(w.Downloaded) {
					t.Errorf("swarm %d %+v: got %+v, opentracker says %+v", i, swarms[i], r, w)
				}
				if r.HasDownloaders {
					t.Errorf("swarm %d: downloaders from opentracker: %+v", i, r)
				}
				// Over HTTP opentracker lists the torrents it has seen
				// (the whitelisted one without peers, briefly, after the
				// lab's probe) and not the others; over UDP every hash has
				// a row.
				switch {
				case !r.Known && (proto == "udp" || w != lab.ScrapeResult{}):
					t.Errorf("swarm %d: not known", i)
				case r.Known && proto == "http" && !swarms[i].whitelisted:
					t.Errorf("swarm %d: known, but not whitelisted", i)
				}
			}
			st := s.Status()
			if len(st) != 1 || st[0].LastOK.IsZero() || st[0].LastError != "" {
				t.Errorf("status %+v", st)
			}
		})
	}
}
