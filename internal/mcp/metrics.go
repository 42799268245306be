package mcp

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the MCP server's (on /metrics with the http transport).
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_mcp_tool_calls_total",
			Help: "MCP tool calls by tool and outcome (ok, invalid, unauthenticated, forbidden, not_found, gone, unavailable, error).",
		}, []string{"tool", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "engram_mcp_tool_call_duration_seconds",
			Help:    "How long MCP tool calls took, Engram's answers and the wait for the projector included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"tool"}),
	}
	for _, c := range []prometheus.Collector{m.calls, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(tool, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(tool, outcome).Inc()
	m.duration.WithLabelValues(tool).Observe(d.Seconds())
}

// count counts a call that never reached its handler (arguments refused by the schema).
func (m *Metrics) count(tool, outcome string) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(tool, outcome).Inc()
}
