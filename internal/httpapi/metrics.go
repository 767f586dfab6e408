package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/muster-registry/muster/internal/registry"
)

// Metrics are the Prometheus metrics of the API, in a registry of their own
// (no global state).
type Metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	heartbeats *prometheus.CounterVec
	watchers   prometheus.Gauge
	// Expired counts instances expired by this node as leader.
	Expired prometheus.Counter
	// CommitLatency observes how long proposals take to commit and apply.
	CommitLatency prometheus.Histogram

	// The children of the vectors, per label values: a map read per request
	// instead of hashing label values in the vector (and formatting the code).
	byRoute  childCache[routeCode, routeMetrics]
	byResult childCache[string, prometheus.Counter]
}

type routeCode struct {
	route string
	code  int
}

type routeMetrics struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// childCache remembers the child metric of each combination of label
// values. A child is created on first use, as WithLabelValues would, so
// /metrics shows the same series as without the cache.
//
// Concurrency: safe for concurrent use.
type childCache[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (c *childCache[K, V]) get(k K, create func() V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k]; ok {
		return v
	}
	if c.m == nil {
		c.m = make(map[K]V)
	}
	v = create()
	c.m[k] = v
	return v
}

// NewMetrics returns the metrics, with Go runtime and process collectors,
// and gauges that read the given functions at scrape time.
func NewMetrics(gauges map[string]func() float64) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "muster_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "muster_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "muster_heartbeats_total", Help: "Heartbeats by result (ok, not_found, token_mismatch, not_leader, error).",
		}, []string{"result"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "muster_event_streams", Help: "Open Server-Sent Events streams.",
		}),
		Expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "muster_instances_expired_total", Help: "Instances expired at their deadline by this node.",
		}),
		CommitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "muster_raft_apply_duration_seconds", Help: "Time from proposing a command to its being applied.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.heartbeats, m.watchers, m.Expired, m.CommitLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for name, fn := range gauges {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "See docs/operations.md."}, fn))
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

func (m *Metrics) observeRequest(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	if status == 0 {
		status = http.StatusOK
	}
	rm := m.byRoute.get(routeCode{route, status}, func() routeMetrics {
		return routeMetrics{m.requests.WithLabelValues(route, strconv.Itoa(status)), m.latency.WithLabelValues(route)}
	})
	rm.requests.Inc()
	rm.latency.Observe(d.Seconds())
}

// heartbeatsRenewed counts n heartbeats that renewed, as n calls of
// heartbeat(nil) would.
func (m *Metrics) heartbeatsRenewed(n int) {
	if n > 0 {
		m.byResult.get("ok", func() prometheus.Counter { return m.heartbeats.WithLabelValues("ok") }).Add(float64(n))
	}
}

func (m *Metrics) heartbeat(err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, registry.ErrNotFound):
		result = "not_found"
	case errors.Is(err, registry.ErrTokenMismatch):
		result = "token_mismatch"
	case errors.Is(err, registry.ErrNotLeader):
		result = "not_leader"
	default:
		result = "error"
	}
	m.byResult.get(result, func() prometheus.Counter { return m.heartbeats.WithLabelValues(result) }).Inc()
}
