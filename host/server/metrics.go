package server

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/wcphall/hall/host"
)

// metrics are the server's Prometheus collectors, in a registry of its own.
type metrics struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	dispatch  *prometheus.HistogramVec
	queueWait prometheus.Histogram
	limitHits *prometheus.CounterVec
	inFlight  prometheus.Gauge
	rejected  *prometheus.CounterVec
	requests  *prometheus.CounterVec
}

func newMetrics(online func() bool, workers func() int, pools func() []host.PoolStats, loads func() host.LoadStats) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hall_decisions_total",
			Help: "Routing decisions made over HTTP, by endpoint (route, run), outcome (allowed, denied) and deny code.",
		}, []string{"endpoint", "outcome", "deny_code"}),
		dispatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hall_dispatch_duration_seconds",
			Help: "Wall time of governed dispatches that ran a worker (decide, run, commit the receipt), by outcome (ok or the sandbox code).",
			// From a pooled small worker (~0.5 ms) to the default 10 s ceiling.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hall_dispatch_queue_wait_seconds",
			Help:    "Time governed dispatches that ran a worker waited for a dispatch slot and for cores (shared fairly between tenants), in all.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		limitHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hall_sandbox_limit_hits_total",
			Help: "Dispatches stopped by a sandbox limit, by code (LIMIT_TIMEOUT, LIMIT_MEMORY, LIMIT_INPUT, LIMIT_OUTPUT).",
		}, []string{"code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hall_dispatches_in_flight",
			Help: "Dispatches running now.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hall_dispatch_rejected_total",
			Help: "Dispatches refused before deciding, by reason (saturated: the concurrency bound was reached; offline).",
		}, []string{"reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hall_http_requests_total",
			Help: "HTTP requests by route pattern (\"unmatched\" for none), method (the standard ones, else OTHER) and status.",
		}, []string{"route", "method", "status"}),
	}
	onlineGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hall_online",
		Help: "1 while the Hall accepts dispatches, 0 while it is offline.",
	}, func() float64 {
		if online() {
			return 1
		}
		return 0
	})
	workersGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hall_workers_enrolled",
		Help: "Enrolled worker records.",
	}, func() float64 { return float64(workers()) })
	if loads != nil {
		m.reg.MustRegister(loadCollector{loads})
	}
	m.reg.MustRegister(m.decisions, m.dispatch, m.queueWait, m.limitHits, m.inFlight, m.rejected, m.requests, onlineGauge, workersGauge, poolCollector{pools},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) decision(endpoint string, denied bool, code string) {
	outcome := "allowed"
	if denied {
		outcome = "denied"
	}
	m.decisions.WithLabelValues(endpoint, outcome, code).Inc()
}

func (m *metrics) ran(res *host.RunResult, seconds float64) {
	m.dispatch.WithLabelValues(res.Outcome).Observe(seconds)
	m.queueWait.Observe(res.QueueWait.Seconds())
	if strings.HasPrefix(res.Outcome, "LIMIT_") {
		m.limitHits.WithLabelValues(res.Outcome).Inc()
	}
}

// poolCollector reports the sandbox instances each loaded worker has
// ready, read at scrape time.
type poolCollector struct{ pools func() []host.PoolStats }

var pooledDesc = prometheus.NewDesc("hall_instances_pooled",
	"Sandbox instances ready per loaded worker: state fresh (pre-instantiated, never used) or idle (kept for reuse by one tenant).",
	[]string{"worker_id", "state"}, nil)

var workerMemoryDesc = prometheus.NewDesc("hall_worker_memory_bytes",
	"Memory a loaded worker keeps between dispatches: its ready instances' linear memories, an estimate of their engine objects, and its own state (its share of the compiled module, held once per module, is not counted).",
	[]string{"worker_id"}, nil)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pooledDesc
	ch <- workerMemoryDesc
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	if c.pools == nil {
		return
	}
	for _, p := range c.pools() {
		ch <- prometheus.MustNewConstMetric(pooledDesc, prometheus.GaugeValue, float64(p.Fresh), p.WorkerID, "fresh")
		ch <- prometheus.MustNewConstMetric(pooledDesc, prometheus.GaugeValue, float64(p.Idle), p.WorkerID, "idle")
		ch <- prometheus.MustNewConstMetric(workerMemoryDesc, prometheus.GaugeValue, float64(p.MemoryBytes), p.WorkerID)
	}
}

// loadCollector reports the loaded workers' footprint (host.LoadStats).
type loadCollector struct{ loads func() host.LoadStats }

var (
	loadedDesc = prometheus.NewDesc("hall_workers_loaded",
		"Workers loaded (compiled, with their grant) in this process.", nil, nil)
	sharedDesc = prometheus.NewDesc("hall_compiled_modules",
		"Compiled modules held, each shared by the loaded workers of one module and memory limit.", nil, nil)
	idleMemDesc = prometheus.NewDesc("hall_idle_memory_bytes",
		"Memory loaded workers keep between dispatches, bounded by the Hall's idle memory budget.", nil, nil)
	evictedDesc = prometheus.NewDesc("hall_workers_evicted_total",
		"Idle workers closed to stay within the idle memory budget (loaded again on their next dispatch).", nil, nil)
)

func (c loadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- loadedDesc
	ch <- sharedDesc
	ch <- idleMemDesc
	ch <- evictedDesc
}

func (c loadCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.loads()
	ch <- prometheus.MustNewConstMetric(loadedDesc, prometheus.GaugeValue, float64(st.Loaded))
	ch <- prometheus.MustNewConstMetric(sharedDesc, prometheus.GaugeValue, float64(st.SharedModules))
	ch <- prometheus.MustNewConstMetric(idleMemDesc, prometheus.GaugeValue, float64(st.IdleBytes))
	ch <- prometheus.MustNewConstMetric(evictedDesc, prometheus.CounterValue, float64(st.Evicted))
}

// methodLabel is the method label of hall_http_requests_total: one of the
// standard methods (RFC 9110 and PATCH), else "OTHER". The method is the
// client's to choose; taken as it is, every invented method would be a
// new series held for the life of the process. The route label is the
// route pattern (or "unmatched"), never the path, and the status is the
// server's own: every label of every collector comes from a fixed set.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}
