package server

import "github.com/prometheus/client_golang/prometheus"

// snapshotCollector reports the digest of the snapshot the node serves,
// read at scrape time: nodes of one database that report different
// digests have not all loaded the newest change yet.
type snapshotCollector struct{ digest func() string }

var snapshotDesc = prometheus.NewDesc("hall_snapshot_info",
	"Always 1; the label digest is the snapshot in force (what the decisions made now name).",
	[]string{"digest"}, nil)

func (c snapshotCollector) Describe(ch chan<- *prometheus.Desc) { ch <- snapshotDesc }

func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(snapshotDesc, prometheus.GaugeValue, 1, c.digest())
}
