package tracker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// rateWindow is how many seconds the announce and scrape rates average.
const rateWindow = 10

// workerStats are one UDP socket's counters, written by its reader only
// and padded so that readers do not share cache lines.
type workerStats struct {
	connects, announces, scrapes           atomic.Uint64
	malformed, badConnID, limited, refused atomic.Uint64
	_                                      [64]byte
}

// stats counts what the tracker does and shows it on /stats and as
// Prometheus metrics.
type stats struct {
	t   *Tracker
	udp []workerStats

	httpAnnounces, httpScrapes, httpMalformed, httpLimited, httpRefused atomic.Uint64

	mu                    sync.Mutex
	ring                  [rateWindow + 1][2]uint64 // announces, scrapes at each second
	ringN                 int
	announceRate, scrRate float64

	reg *prometheus.Registry
}

func newStats(t *Tracker) *stats {
	s := &stats{t: t, udp: make([]workerStats, t.o.UDPSockets)}
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(s, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

func (s *stats) udpWorker(i int) *workerStats { return &s.udp[i%len(s.udp)] }

// Snapshot is the tracker's figures, as /stats?format=json gives them.
type Snapshot struct {
	ID          string  `json:"id"`
	AnnounceURL string  `json:"announce_url"`
	Open        bool    `json:"open"`
	Whitelisted int     `json:"whitelisted,omitempty"`
	Uptime      float64 `json:"uptime_seconds"`
	Torrents    int64   `json:"torrents"`
	Seeds       int64   `json:"seeds"`
	Partial     int64   `json:"partial_seeds"`
	Downloaders int64   `json:"downloaders"`

	UDPConnects   uint64  `json:"udp_connects"`
	UDPAnnounces  uint64  `json:"udp_announces"`
	UDPScrapes    uint64  `json:"udp_scrapes"`
	HTTPAnnounces uint64  `json:"http_announces"`
	HTTPScrapes   uint64  `json:"http_scrapes"`
	AnnounceRate  float64 `json:"announces_per_second"`
	ScrapeRate    float64 `json:"scrapes_per_second"`

	Malformed   uint64 `json:"malformed"`
	RateLimited uint64 `json:"rate_limited"`
	NotAllowed  uint64 `json:"not_allowed"`
	BadConnID   uint64 `json:"bad_connection_id"`

	Sync *SyncStats `json:"sync,omitempty"`
}

// Stats returns the tracker's figures now.
func (t *Tracker) Stats() Snapshot { return t.stats.snapshot() }

func (s *stats) snapshot() Snapshot {
	t := s.t
	sn := Snapshot{
		ID: t.idHex, AnnounceURL: t.AnnounceURL(), Open: t.white == nil,
		Uptime:        time.Since(t.started).Seconds(),
		Torrents:      t.state.tot.torrents.Load(),
		Seeds:         t.state.tot.seeds.Load(),
		Partial:       t.state.tot.partials.Load(),
		Downloaders:   t.state.tot.downloaders.Load(),
		HTTPAnnounces: s.httpAnnounces.Load(), HTTPScrapes: s.httpScrapes.Load(),
		Malformed: s.httpMalformed.Load(), RateLimited: s.httpLimited.Load(), NotAllowed: s.httpRefused.Load(),
	}
	if t.white != nil {
		sn.Whitelisted = t.white.len()
	}
	for i := range s.udp {
		w := &s.udp[i]
		sn.UDPConnects += w.connects.Load()
		sn.UDPAnnounces += w.announces.Load()
		sn.UDPScrapes += w.scrapes.Load()
		sn.Malformed += w.malformed.Load()
		sn.RateLimited += w.limited.Load()
		sn.NotAllowed += w.refused.Load()
		sn.BadConnID += w.badConnID.Load()
	}
	s.mu.Lock()
	sn.AnnounceRate, sn.ScrapeRate = s.announceRate, s.scrRate
	s.mu.Unlock()
	if t.sync != nil {
		ss := t.sync.stats()
		sn.Sync = &ss
	}
	return sn
}

// sample records the totals once a second and updates the rates over the
// last rateWindow seconds.
func (s *stats) sample(time.Time) {
	sn := s.snapshot()
	cur := [2]uint64{sn.UDPAnnounces + sn.HTTPAnnounces, sn.UDPScrapes + sn.HTTPScrapes}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ringN < len(s.ring) {
		s.ring[s.ringN] = cur
		s.ringN++
	} else {
		copy(s.ring[:], s.ring[1:])
		s.ring[len(s.ring)-1] = cur
	}
	if s.ringN < 2 {
		return
	}
	first, secs := s.ring[0], float64(s.ringN-1)
	s.announceRate = float64(cur[0]-first[0]) / secs
	s.scrRate = float64(cur[1]-first[1]) / secs
}

// serveStats is the /stats page: plain text, or JSON with ?format=json.
func (s *stats) serveStats(w http.ResponseWriter, r *http.Request) {
	sn := s.snapshot()
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(sn)
		return
	}
	var b strings.Builder
	mode := "open (any torrent)"
	if !sn.Open {
		mode = fmt.Sprintf("whitelist (%d torrents)", sn.Whitelisted)
	}
	fmt.Fprintf(&b, "btslave tracker %s\nannounce URL  %s\nmode          %s\nuptime        %s\n\n",
		sn.ID, sn.AnnounceURL, mode, time.Duration(sn.Uptime*float64(time.Second)).Round(time.Second))
	fmt.Fprintf(&b, "torrents      %d\npeers         %d (seeds %d, partial seeds %d, downloaders %d)\n",
		sn.Torrents, sn.Seeds+sn.Partial+sn.Downloaders, sn.Seeds, sn.Partial, sn.Downloaders)
	fmt.Fprintf(&b, "announces     %d (udp %d, http %d), %.1f/s\nscrapes       %d (udp %d, http %d), %.1f/s\n",
		sn.UDPAnnounces+sn.HTTPAnnounces, sn.UDPAnnounces, sn.HTTPAnnounces, sn.AnnounceRate,
		sn.UDPScrapes+sn.HTTPScrapes, sn.UDPScrapes, sn.HTTPScrapes, sn.ScrapeRate)
	fmt.Fprintf(&b, "refused       malformed %d, rate-limited %d, not allowed %d, bad connection id %d\n",
		sn.Malformed, sn.RateLimited, sn.NotAllowed, sn.BadConnID)
	if ss := sn.Sync; ss != nil {
		fmt.Fprintf(&b, "sync          peers %s, packets in %d out %d, rejected %d (last: %s)\n",
			strings.Join(ss.Peers, " "), ss.PacketsIn, ss.PacketsOut, ss.Rejected, ss.LastReject)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, b.String())
}

func (s *stats) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// Register adds the tracker's metrics to reg (the daemon's registry).
func (t *Tracker) Register(reg prometheus.Registerer) error { return reg.Register(t.stats) }

var (
	descTorrents = prometheus.NewDesc("btslave_tracker_torrents", "Torrents the tracker knows.", nil, nil)
	descPeers    = prometheus.NewDesc("btslave_tracker_peers", "Peers listed, by kind (seed, partial_seed, downloader).", []string{"kind"}, nil)
	descAnn      = prometheus.NewDesc("btslave_tracker_announces_total", "Announces received, by protocol.", []string{"proto"}, nil)
	descScr      = prometheus.NewDesc("btslave_tracker_scrapes_total", "Scrapes received, by protocol.", []string{"proto"}, nil)
	descAnnRate  = prometheus.NewDesc("btslave_tracker_announces_per_second", "Announces per second over the last 10 s.", nil, nil)
	descScrRate  = prometheus.NewDesc("btslave_tracker_scrapes_per_second", "Scrapes per second over the last 10 s.", nil, nil)
	descRefused  = prometheus.NewDesc("btslave_tracker_refused_total", "Requests refused, by reason.", []string{"reason"}, nil)
	descSyncPkts = prometheus.NewDesc("btslave_tracker_sync_packets_total", "Sync packets, by direction.", []string{"direction"}, nil)
	descSyncRej  = prometheus.NewDesc("btslave_tracker_sync_rejected_total", "Sync packets dropped: unknown sender, bad MAC, replay or malformed.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *stats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTorrents, descPeers, descAnn, descScr, descAnnRate, descScrRate, descRefused, descSyncPkts, descSyncRej} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *stats) Collect(ch chan<- prometheus.Metric) {
	sn := s.snapshot()
	g, c := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(descTorrents, g, float64(sn.Torrents))
	ch <- prometheus.MustNewConstMetric(descPeers, g, float64(sn.Seeds), "seed")
	ch <- prometheus.MustNewConstMetric(descPeers, g, float64(sn.Partial), "partial_seed")
	ch <- prometheus.MustNewConstMetric(descPeers, g, float64(sn.Downloaders), "downloader")
	ch <- prometheus.MustNewConstMetric(descAnn, c, float64(sn.UDPAnnounces), "udp")
	ch <- prometheus.MustNewConstMetric(descAnn, c, float64(sn.HTTPAnnounces), "http")
	ch <- prometheus.MustNewConstMetric(descScr, c, float64(sn.UDPScrapes), "udp")
	ch <- prometheus.MustNewConstMetric(descScr, c, float64(sn.HTTPScrapes), "http")
	ch <- prometheus.MustNewConstMetric(descAnnRate, g, sn.AnnounceRate)
	ch <- prometheus.MustNewConstMetric(descScrRate, g, sn.ScrapeRate)
	ch <- prometheus.MustNewConstMetric(descRefused, c, float64(sn.Malformed), "malformed")
	ch <- prometheus.MustNewConstMetric(descRefused, c, float64(sn.RateLimited), "rate_limited")
	ch <- prometheus.MustNewConstMetric(descRefused, c, float64(sn.NotAllowed), "not_allowed")
	ch <- prometheus.MustNewConstMetric(descRefused, c, float64(sn.BadConnID), "bad_connection_id")
	if sn.Sync != nil {
		ch <- prometheus.MustNewConstMetric(descSyncPkts, c, float64(sn.Sync.PacketsIn), "in")
		ch <- prometheus.MustNewConstMetric(descSyncPkts, c, float64(sn.Sync.PacketsOut), "out")
		ch <- prometheus.MustNewConstMetric(descSyncRej, c, float64(sn.Sync.Rejected))
	}
}
