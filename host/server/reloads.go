package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wcphall/hall/host"
)

// reloadDesc is hall_reloads_total{result}: every reload of the Hall's
// files (a change on disk, SIGHUP, an enrollment), ok or error.
var reloadDesc = prometheus.NewDesc("hall_reloads_total",
	"Reloads of the rules, configuration, records and artifacts, by result (ok: in force; error: did not load, the previous snapshot kept serving).",
	[]string{"result"}, nil)

// reloadCollector reads the Hall's reload counts at each scrape.
type reloadCollector struct{ stats func() host.ReloadStats }

func (c reloadCollector) Describe(ch chan<- *prometheus.Desc) { ch <- reloadDesc }

func (c reloadCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(reloadDesc, prometheus.CounterValue, float64(s.OK), "ok")
	ch <- prometheus.MustNewConstMetric(reloadDesc, prometheus.CounterValue, float64(s.Failed), "error")
}
