package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
)

// swarmCollector reports each swarm being served, read at scrape time.
type swarmCollector struct {
	a                               *App
	swarms, up, down, peers, cached *prometheus.Desc
	threshold                       *prometheus.Desc
}

func newSwarmCollector(a *App) *swarmCollector {
	l := []string{"infohash", "name"}
	return &swarmCollector{
		a:         a,
		swarms:    prometheus.NewDesc("btslave_swarms", "Swarms being served.", nil, nil),
		up:        prometheus.NewDesc("btslave_swarm_uploaded_bytes", "Payload uploaded in this visit.", l, nil),
		down:      prometheus.NewDesc("btslave_swarm_downloaded_bytes", "Payload downloaded in this visit.", l, nil),
		peers:     prometheus.NewDesc("btslave_swarm_peers", "Connected peers.", l, nil),
		cached:    prometheus.NewDesc("btslave_swarm_cached_bytes", "Bytes of this swarm in the piece cache.", l, nil),
		threshold: prometheus.NewDesc("btslave_swarm_fetch_threshold", "Peers that must want a piece before it is fetched.", l, nil),
	}
}

func (c *swarmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.swarms, c.up, c.down, c.peers, c.cached, c.threshold} {
		ch <- d
	}
}

func (c *swarmCollector) Collect(ch chan<- prometheus.Metric) {
	swarms := c.a.rep.Swarms()
	ch <- prometheus.MustNewConstMetric(c.swarms, prometheus.GaugeValue, float64(len(swarms)))
	held := c.a.rep.Cache().Stats().Torrents
	w := c.a.client.Wire
	for _, s := range swarms {
		ih := s.InfoHash()
		labels := []string{ih.HexString(), s.Torrent().Name()}
		tot := w.Totals(ih)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.CounterValue, float64(tot.BytesUp), labels...)
		ch <- prometheus.MustNewConstMetric(c.down, prometheus.CounterValue, float64(tot.BytesDown), labels...)
		ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(len(w.Conns(ih))), labels...)
		ch <- prometheus.MustNewConstMetric(c.cached, prometheus.GaugeValue, float64(held[ih]), labels...)
		ch <- prometheus.MustNewConstMetric(c.threshold, prometheus.GaugeValue, float64(s.Stats().Threshold), labels...)
	}
}
