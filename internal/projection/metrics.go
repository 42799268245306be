package projection

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-memory/engram/internal/events"
)

// Metrics are the projector's Prometheus metrics, all named and described here
// (docs/projector.md lists them).
type Metrics struct {
	Applied      *prometheus.CounterVec   // events whose effects were written, by kind
	Skipped      *prometheus.CounterVec   // events acknowledged without effect, by cause
	DeadLettered *prometheus.CounterVec   // events copied to the dead-letter stream, by reason
	Retries      *prometheus.CounterVec   // failed batch attempts that are retried, by cause
	BatchSize    prometheus.Histogram     // events of a partition per committed step
	ApplySeconds prometheus.Histogram     // duration of a committed step
	Partitions   prometheus.Histogram     // partitions per committed transaction (group commit)
	GapFilled    prometheus.Counter       // events read from the stream to close a delivery gap
	Checkpoint   *prometheus.GaugeVec     // committed checkpoint, by partition
	Delay        *prometheus.HistogramVec // from an event's storing to its receipt and to its commit

	// The Delay histogram's two series, looked up once (they are observed per event).
	delayReceived, delayCommitted prometheus.Observer

	registerer prometheus.Registerer
	collectors []prometheus.Collector
}

// skippedErased is the skipped counter's cause of the events dropped for their user's
// erasure (erased.go).
const skippedErased = "user_erased"

// delayBuckets resolve the delay finely where read-your-writes lives (1 ms to 1 s, steps of
// about 25 %) and coarsely beyond, up to a rebuild's minutes.
var delayBuckets = append(prometheus.ExponentialBucketsRange(0.001, 1, 32), 2, 5, 10, 30, 60, 300)

// Retry causes of the retries counter.
const (
	retryNeo4j     = "neo4j"
	retryNATS      = "nats"
	retryIsolation = "isolation"
)

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns, sub = "engram", "projector"
	m := &Metrics{
		Applied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_applied_total",
			Help: "Events whose effects the projector wrote to the graph, by kind."}, []string{"kind"}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_skipped_total",
			Help: "Events acknowledged without writing: at or below the checkpoint (redelivered), already in the graph (duplicate), or stored after their user's erasure and not after a re-creation (user_erased: dropped, no dead letter)."}, []string{"cause"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_lettered_total",
			Help: "Events copied to the dead-letter stream MEM_DLQ, by reason."}, []string{"reason"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "retries_total",
			Help: "Batch attempts that failed and are tried again, by cause (neo4j, nats, isolation)."}, []string{"cause"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_size",
			Help:    "Events of one partition per committed step (a transaction of its own, or its part of a group commit).",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}}),
		ApplySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "apply_duration_seconds",
			Help:    "Duration of a committed step of a partition, from when it was ready (waiting for a transaction included) to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		Partitions: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "transaction_partitions",
			Help:    "Partitions whose events one committed transaction applied (group commit: more than one when several were ready at once).",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16, 32, 64}}),
		GapFilled: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "gap_filled_total",
			Help: "Events read straight from the stream because their delivery went to another process (partition take-over)."}),
		Delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "event_delay_seconds",
			Help: "Time from when the stream stored an event to when this process received it (until=\"received\") and to when the transaction that applied (or dead-lettered) it committed (until=\"committed\"), for first deliveries: how far the graph trails the log. " +
				"Measured against the stream's clock, so across machines it includes their clock difference.",
			Buckets: delayBuckets}, []string{"until"}),
		Checkpoint: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "checkpoint_sequence",
			Help: "Stream sequence of the partition's last applied event, as committed by this process."}, []string{"partition"}),
	}
	m.collectors = []prometheus.Collector{m.Applied, m.Skipped, m.DeadLettered, m.Retries, m.BatchSize,
		m.ApplySeconds, m.Partitions, m.GapFilled, m.Checkpoint, m.Delay}
	for _, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.registerer = reg
	for _, k := range events.Kinds {
		m.Applied.WithLabelValues(string(k))
	}
	for _, r := range Reasons {
		m.DeadLettered.WithLabelValues(string(r))
	}
	for _, c := range []string{retryNeo4j, retryNATS, retryIsolation} {
		m.Retries.WithLabelValues(c)
	}
	m.delayReceived, m.delayCommitted = m.Delay.WithLabelValues("received"), m.Delay.WithLabelValues("committed")
	for _, c := range []string{"checkpoint", "duplicate", skippedErased} {
		m.Skipped.WithLabelValues(c)
	}
	return m, nil
}

// register adds a collector of the projector's own (the lag collector) to the registry, to be
// removed with the others.
func (m *Metrics) register(c prometheus.Collector) error {
	if err := m.registerer.Register(c); err != nil {
		return err
	}
	m.collectors = append(m.collectors, c)
	return nil
}

// Unregister removes the metrics from the registry they were registered on.
func (m *Metrics) Unregister() {
	for _, c := range m.collectors {
		m.registerer.Unregister(c)
	}
}

func partitionLabel(p int) string { return strconv.Itoa(p) }
