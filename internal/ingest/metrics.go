package ingest

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-memory/engram/internal/stream"
)

// Metrics are the write path's Prometheus metrics, all named and described here.
type Metrics struct {
	requests  *prometheus.CounterVec
	published *prometheus.CounterVec
	erasures  *prometheus.CounterVec
	door      *prometheus.CounterVec
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
		erasures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "engram", Subsystem: "ingest", Name: "erasure_lookups_total",
			Help: "Look-ups of a user's erasures before a write, by where the answer came from: " +
				"cache (remembered; the write is stored on the condition that it still holds) or log (two direct gets).",
		}, []string{"source"}),
		door: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "engram", Subsystem: "ingest", Name: "door_events_total",
			Help: "Agents' events over NATS (production accounts: agent.<token>.<kind>) by outcome: relayed to the memory stream, " +
				"refused at the door (atomic batch headers, a condition on another tenant's subject), or failed to relay (connection lost).",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.published, m.erasures, m.door} {
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

func (m *Metrics) doorEvent(o stream.DoorOutcome) {
	if m != nil {
		m.door.WithLabelValues(string(o)).Inc()
	}
}

func (m *Metrics) erasureLookup(source string) {
	if m != nil {
		m.erasures.WithLabelValues(source).Inc()
	}
}
