package daemon

import (
	"github.com/anacrolix/torrent/metainfo"
	"github.com/prometheus/client_golang/prometheus"
)

// swarmCollector reports each swarm being served, read at scrape time.
type swarmCollector struct {
	a                               *App
	swarms, up, down, peers, cached *prometheus.Desc
	threshold, need                 *prometheus.Desc
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
		need:      prometheus.NewDesc("btslave_swarm_need_score", "The swarm's need score at the autopilot's last ranking.", l, nil),
	}
}

func (c *swarmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.swarms, c.up, c.down, c.peers, c.cached, c.threshold, c.need} {
		ch <- d
	}
}

func (c *swarmCollector) Collect(ch chan<- prometheus.Metric) {
	swarms := c.a.rep.Swarms()
	ch <- prometheus.MustNewConstMetric(c.swarms, prometheus.GaugeValue, float64(len(swarms)))
	held := c.a.rep.Cache().Stats().Torrents
	w := c.a.client.Wire
	var scores map[metainfo.Hash]float64
	if c.a.auto != nil {
		scores = c.a.auto.lastScores()
	}
	for _, s := range swarms {
		ih := s.InfoHash()
		labels := []string{ih.HexString(), s.Torrent().Name()}
		tot := w.Totals(ih)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.CounterValue, float64(tot.BytesUp), labels...)
		ch <- prometheus.MustNewConstMetric(c.down, prometheus.CounterValue, float64(tot.BytesDown), labels...)
		ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(len(w.Conns(ih))), labels...)
		ch <- prometheus.MustNewConstMetric(c.cached, prometheus.GaugeValue, float64(held[ih]), labels...)
		ch <- prometheus.MustNewConstMetric(c.threshold, prometheus.GaugeValue, float64(s.Stats().Threshold), labels...)
		if v, ok := scores[ih]; ok {
			ch <- prometheus.MustNewConstMetric(c.need, prometheus.GaugeValue, v, labels...)
		}
	}
}

// feedCollector reports each feed's fetches, read at scrape time.
type feedCollector struct {
	a                      *App
	feeds, fetches, errors *prometheus.Desc
}

func newFeedCollector(a *App) *feedCollector {
	l := []string{"feed"}
	return &feedCollector{
		a:       a,
		feeds:   prometheus.NewDesc("btslave_feeds", "Feeds, configured and added.", nil, nil),
		fetches: prometheus.NewDesc("btslave_feed_fetches_total", "Fetches of the feed since the start.", l, nil),
		errors:  prometheus.NewDesc("btslave_feed_errors_total", "Failed fetches of the feed since the start.", l, nil),
	}
}

func (c *feedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.feeds
	ch <- c.fetches
	ch <- c.errors
}

func (c *feedCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.feeds.Status()
	ch <- prometheus.MustNewConstMetric(c.feeds, prometheus.GaugeValue, float64(len(st)))
	for _, f := range st {
		ch <- prometheus.MustNewConstMetric(c.fetches, prometheus.CounterValue, float64(f.Fetches), f.Name)
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(f.FetchErrors), f.Name)
	}
}
