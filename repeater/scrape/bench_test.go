package scrape_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater/scrape"
)

// benchHashes is the number of torrents BenchmarkScrape10k scrapes.
const benchHashes = 10_000

// BenchmarkScrape10k measures one scrape of 10,000 info-hashes from a
// loopback opentracker with a fresh Scraper (default Options: 4 requests
// in flight, 50 hashes per HTTP GET, 74 per UDP packet, no rate limit),
// so the cache never helps. Every hash is whitelisted; 9 in 10 have a
// leecher and half of those a seeder too, so the tracker looks each one
// up and the HTTP reply lists 9,000 torrents. Goal: <= 1 s over UDP,
// <= 2 s over HTTP. The setup (about 13,500 announces) is not timed.
func BenchmarkScrape10k(b *testing.B) {
	lab.Require(b, "opentracker")
	ot := lab.StartOpentracker(b)
	start := time.Now()
	hashes := benchSwarms(b, ot)
	b.Logf("setup: %d torrents whitelisted and announced in %v", len(hashes), time.Since(start).Round(time.Millisecond))

	for _, proto := range []string{"udp", "http"} {
		b.Run(proto, func(b *testing.B) {
			trackerURL := ot.HTTPAnnounce
			if proto == "udp" {
				trackerURL = ot.UDPAnnounce
			}
			var last map[metainfo.Hash]scrape.Result
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s, err := scrape.New(scrape.Options{})
				if err != nil {
					b.Fatal(err)
				}
				res, err := s.Scrape(context.Background(), trackerURL, hashes)
				s.Close()
				if err != nil {
					b.Fatal(err)
				}
				if len(res) != len(hashes) {
					b.Fatalf("%d results for %d hashes", len(res), len(hashes))
				}
				last = res
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/10k")
			checkBenchResults(b, hashes, last)
		})
	}
}

// benchSwarm gives torrent i its peers: none for every tenth, else a
// leecher, and a seeder for the even ones.
func benchSwarm(i int) (seeders, leechers int) {
	if i%10 == 0 {
		return 0, 0
	}
	return 1 - i%2, 1
}

// benchSwarms whitelists benchHashes random hashes and announces their
// peers. Opentracker.Whitelist probes every hash after a reload (at least
// 50 ms each, over 8 minutes for 10,000), so the hashes are appended to
// the whitelist file directly and one last hash is added with Whitelist:
// once the tracker accepts it, the reload that did has read all the others
// too.
func benchSwarms(b *testing.B, ot *lab.Opentracker) []metainfo.Hash {
	b.Helper()
	hashes := make([]metainfo.Hash, benchHashes)
	var list strings.Builder
	for i := range hashes {
		rand.Read(hashes[i][:])
		list.WriteString(hashes[i].HexString() + "\n")
	}
	f, err := os.OpenFile(filepath.Join(ot.Dir(), "root", "whitelist.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.WriteString(list.String()); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	var last metainfo.Hash
	rand.Read(last[:])
	if err := ot.Whitelist(last.HexString()); err != nil {
		b.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(hashes); i += 4 {
				seeders, leechers := benchSwarm(i)
				for p := range seeders + leechers {
					left := int64(0)
					if p >= seeders {
						left = 1000
					}
					a := lab.Announce{
						InfoHash: hashes[i].HexString(),
						PeerID:   fmt.Sprintf("-XX0001-%012d", p),
						Port:     10000 + p,
						Left:     left,
						Event:    "started",
					}
					if _, err := ot.Announce(a); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return hashes
}

// checkBenchResults fails unless res has every torrent's peers.
func checkBenchResults(b *testing.B, hashes []metainfo.Hash, res map[metainfo.Hash]scrape.Result) {
	b.Helper()
	bad := 0
	for i, h := range hashes {
		seeders, leechers := benchSwarm(i)
		r := res[h]
		if r.Complete != int64(seeders) || r.Incomplete != int64(leechers) {
			if bad++; bad <= 5 {
				b.Errorf("torrent %d: %+v, want %d seeders, %d leechers", i, r, seeders, leechers)
			}
		}
	}
	if bad > 0 {
		b.Fatalf("%d of %d results wrong", bad, len(hashes))
	}
}
