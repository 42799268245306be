package query

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the query service's own metrics, all named and described here.
type Metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	waits       *prometheus.CounterVec
	waitSeconds prometheus.Histogram
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_query_requests_total",
			Help: "HTTP reads answered, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "engram_query_request_duration_seconds",
			Help:    "Time to answer an HTTP read, consistency wait included, by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
		}, []string{"route"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_query_consistency_waits_total",
			Help: "Reads that carried a consistency token, by outcome: covered, timeout, canceled, unavailable or error.",
		}, []string{"outcome"}),
		waitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "engram_query_consistency_wait_seconds",
			Help:    "Time reads spent waiting for their consistency token.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.waits, m.waitSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
