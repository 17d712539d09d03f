package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/btslave/btslave/internal/buildinfo"
)

func (a *App) registerMetrics() error {
	stat := func() (up, down float64, peers float64) {
		s := a.client.Stats()
		return float64(s.BytesWrittenData.Int64()), float64(s.BytesReadData.Int64()), float64(s.ActivePeers)
	}
	cs := []prometheus.Collector{
		a.visits,
		newSwarmCollector(a),
		newMasterCollector(a),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "btslave_build_info",
			Help:        "Always 1; the version label tells which btslave runs.",
			ConstLabels: prometheus.Labels{"version": buildinfo.String()},
		}, func() float64 { return 1 }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "btslave_peer_uploaded_bytes_total",
			Help: "Piece data sent to peers.",
		}, func() float64 { up, _, _ := stat(); return up }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "btslave_peer_downloaded_bytes_total",
			Help: "Piece data received from peers.",
		}, func() float64 { _, down, _ := stat(); return down }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "btslave_peers",
			Help: "Connected peers over all torrents.",
		}, func() float64 { _, _, p := stat(); return p }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "btslave_torrents",
			Help: "Torrents the client holds.",
		}, func() float64 { return float64(len(a.client.Torrents())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "btslave_cache_budget_bytes",
			Help: "The piece cache's byte budget.",
		}, func() float64 { return float64(a.cfg.Cache.Size) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "btslave_cache_held_bytes",
			Help: "Bytes the piece cache holds now (never above the budget).",
		}, func() float64 { return float64(a.rep.Cache().Stats().Held) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "btslave_cache_evictions_total",
			Help: "Pieces evicted from the cache.",
		}, func() float64 { return float64(a.rep.Cache().Stats().Evictions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "btslave_catalog_entries",
			Help: "Torrents in the feeds' catalog.",
		}, func() float64 { n, _ := a.feeds.Catalog().Len(); return float64(n) }),
		newFeedCollector(a),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "btslave_bep56_saved_bytes_total",
			Help:        "Bytes BEP 56 stream compression kept off the wire (plain minus wire), by direction.",
			ConstLabels: prometheus.Labels{"direction": "up"},
		}, func() float64 { return float64(a.client.Wire.Stats().SavedUp) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "btslave_bep56_saved_bytes_total",
			Help:        "Bytes BEP 56 stream compression kept off the wire (plain minus wire), by direction.",
			ConstLabels: prometheus.Labels{"direction": "down"},
		}, func() float64 { return float64(a.client.Wire.Stats().SavedDown) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "btslave_bep56_connections_total",
			Help: "Peer connections compressed one way or both (BEP 56).",
		}, func() float64 { return float64(a.client.Wire.Stats().Compressed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "btslave_bep56_refused_total",
			Help: "Connections closed for a malformed or over-expanding compressed stream.",
		}, func() float64 { return float64(a.client.Wire.Stats().CompressRefused) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "btslave_bep56_frames_spliced_total",
			Help: "Cached blocks sent as the zstd frames the cache holds, without compressing them again.",
		}, func() float64 { return float64(a.client.Wire.Stats().FramesSpliced) }),
	}
	if a.auto != nil {
		cs = append(cs, a.auto.collectors()...)
	}
	for _, c := range cs {
		if err := a.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
