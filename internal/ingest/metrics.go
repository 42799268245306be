package ingest

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the write path's Prometheus metrics, all named and described here.
type Metrics struct {
	requests  *prometheus.CounterVec
	published *prometheus.CounterVec
}

// NewMetrics registers the write path's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "engram", Subsystem: "ingest", Name: "requests_total",
			Help: "HTTP write requests by operation and status code.",
		}, []string{"op", "code"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "engram", Subsystem: "ingest", Name: "events_stored_total",
			Help: "Events JetStream acknowledged, by kind; duplicates (same event id) counted apart.",
		}, []string{"kind", "duplicate"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.published} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) request(op string, code int) {
	if m != nil {
		m.requests.WithLabelValues(op, strconv.Itoa(code)).Inc()
	}
}

func (m *Metrics) stored(kind string, duplicate bool) {
	if m != nil {
		m.published.WithLabelValues(kind, strconv.FormatBool(duplicate)).Inc()
	}
}
