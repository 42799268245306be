package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-memory/engram/internal/stream"
)

// Lag is measured, not estimated: at every scrape the projector reads each partition's
// checkpoint from Neo4j (whichever process committed it) and asks the stream how many of the
// partition's events lie above it. So the lag is the stream's truth at that instant, the same
// in every process of the group, right after a crash (the dead process's deliveries that it
// never applied count, those it applied but could not acknowledge do not) and while no process
// holds the partition at all. The consumer's pending counts, which the projector reported
// before, are neither: an event applied but not yet acknowledged counts there, and a process
// that does not hold the partition sees nothing.

// lagTimeout bounds the reads of one scrape; a partition whose reads fail is left out of that
// scrape rather than reported with a guess.
const lagTimeout = 2 * time.Second

// partitionProgress is what the process knows about one partition's checkpoint.
type partitionProgress struct {
	seq      uint64    // checkpoint (stream sequence of the last applied event)
	stored   time.Time // when the stream stored that event
	observed time.Time // when this process saw the checkpoint move (its commit, or a scrape)
}

// lagCollector is the prometheus.Collector of the lag and progress metrics.
type lagCollector struct {
	group      string
	partitions []int
	driver     neo4j.DriverWithContext
	database   string
	nc         *nats.Conn
	apiPrefix  string // JetStream API prefix, "$JS.API"

	lag      *prometheus.Desc
	applied  *prometheus.Desc
	storedAt *prometheus.Desc
	active   *prometheus.Desc

	// holds reports whether this process holds a partition now (nil: not reported).
	holds func(ctx context.Context, partition int) bool

	mu    sync.Mutex
	known map[int]partitionProgress
}

func newLagCollector(group string, partitions []int, driver neo4j.DriverWithContext, database string, nc *nats.Conn) *lagCollector {
	const ns, sub = "engram", "projector"
	return &lagCollector{
		group: group, partitions: partitions, driver: driver, database: database, nc: nc, apiPrefix: "$JS.API",
		lag: prometheus.NewDesc(prometheus.BuildFQName(ns, sub, "lag_events"),
			"Events of the partition stored in the stream above its checkpoint (not yet applied), read from the stream and the checkpoint at scrape time.",
			[]string{"partition"}, nil),
		applied: prometheus.NewDesc(prometheus.BuildFQName(ns, sub, "last_applied_timestamp_seconds"),
			"Unix time at which this process last saw the partition's checkpoint move (its own commit, or a scrape that found it moved); 0 if never. Alert on lag_events > 0 while time() minus this grows.",
			[]string{"partition"}, nil),
		storedAt: prometheus.NewDesc(prometheus.BuildFQName(ns, sub, "checkpoint_stored_timestamp_seconds"),
			"Unix time at which the stream stored the partition's last applied event (the checkpoint's updated_at).",
			[]string{"partition"}, nil),
		active: prometheus.NewDesc(prometheus.BuildFQName(ns, sub, "partition_active"),
			"1 while this process holds the partition: the consumer is pinned to this process (read from JetStream at scrape time).",
			[]string{"partition"}, nil),
		known: map[int]partitionProgress{},
	}
}

// setHolds sets how the collector tells which partitions this process holds.
func (c *lagCollector) setHolds(f func(ctx context.Context, partition int) bool) {
	c.mu.Lock()
	c.holds = f
	c.mu.Unlock()
}

// committed records a checkpoint this process just committed.
func (c *lagCollector) committed(partition int, seq uint64, stored time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.known[partition]; seq > p.seq {
		c.known[partition] = partitionProgress{seq: seq, stored: stored, observed: time.Now()}
	}
}

// Describe implements prometheus.Collector.
func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.applied
	ch <- c.storedAt
	ch <- c.active
}

// Collect implements prometheus.Collector.
func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
	defer cancel()
	progress, cpErr := c.refresh(ctx)
	c.mu.Lock()
	holds := c.holds
	c.mu.Unlock()
	for _, p := range c.partitions {
		label := partitionLabel(p)
		pr := progress[p]
		if cpErr == nil {
			if n, err := c.eventsAfter(ctx, p, pr.seq); err == nil {
				ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(n), label)
			}
		}
		var applied, stored float64
		if !pr.observed.IsZero() {
			applied = float64(pr.observed.UnixNano()) / 1e9
		}
		if !pr.stored.IsZero() {
			stored = float64(pr.stored.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, applied, label)
		ch <- prometheus.MustNewConstMetric(c.storedAt, prometheus.GaugeValue, stored, label)
		if holds != nil {
			held := 0.0
			if holds(ctx, p) {
				held = 1
			}
			ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, held, label)
		}
	}
}

const checkpointsOfGroup = `
UNWIND $names AS name
MATCH (c:EngramCheckpoint {name: name})
RETURN c.partition AS partition, c.stream_seq AS seq, c.updated_at AS stored
`

// refresh reads the partitions' checkpoints from Neo4j and returns what is known of each. With
// Neo4j unreachable it returns the error and what this process knew before.
func (c *lagCollector) refresh(ctx context.Context) (map[int]partitionProgress, error) {
	names := make([]any, len(c.partitions))
	for i, p := range c.partitions {
		names[i] = CheckpointName(c.group, p)
	}
	res, err := neo4j.ExecuteQuery(ctx, c.driver, checkpointsOfGroup, map[string]any{"names": names},
		neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(c.database), neo4j.ExecuteQueryWithReadersRouting())
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		now := time.Now()
		for _, r := range res.Records {
			part, _ := r.Get("partition")
			seq, _ := r.Get("seq")
			p, ok1 := part.(int64)
			s, ok2 := seq.(int64)
			if !ok1 || !ok2 || s < 0 {
				continue
			}
			cur := c.known[int(p)]
			if uint64(s) > cur.seq {
				cur.seq = uint64(s)
				cur.observed = now
				if st, ok := asTime(r, "stored"); ok {
					cur.stored = st
				}
				c.known[int(p)] = cur
			}
		}
	}
	out := make(map[int]partitionProgress, len(c.known))
	for k, v := range c.known {
		out[k] = v
	}
	return out, err
}

func asTime(r *neo4j.Record, key string) (time.Time, bool) {
	v, _ := r.Get(key)
	switch t := v.(type) {
	case time.Time:
		return t.UTC(), true
	case neo4j.LocalDateTime:
		return time.Time(t).UTC(), true
	}
	return time.Time{}, false
}

// directGet is the request body of JetStream's direct get: the first message of a subject
// filter at or after a sequence; with a batch, the reply headers count what matches after it.
type directGet struct {
	Seq        uint64 `json:"seq"`
	NextBySubj string `json:"next_by_subj"`
	Batch      int    `json:"batch"`
}

// eventsAfter counts the partition's events stored above seq: the stream's NumPending of the
// partition's subject filter from seq+1, which a batched direct get reports with its first
// message (the count after that message), and a 404 when there is none.
func (c *lagCollector) eventsAfter(ctx context.Context, partition int, seq uint64) (uint64, error) {
	body, err := json.Marshal(directGet{Seq: seq + 1, NextBySubj: PartitionFilter(partition), Batch: 1})
	if err != nil {
		return 0, err
	}
	msg, err := c.nc.RequestWithContext(ctx, c.apiPrefix+".DIRECT.GET."+stream.MemoryStream, body)
	if err != nil {
		return 0, fmt.Errorf("count partition %d after %d: %w", partition, seq, err)
	}
	if status := msg.Header.Get("Status"); status != "" {
		if status == "404" {
			return 0, nil
		}
		return 0, fmt.Errorf("count partition %d after %d: status %s %s", partition, seq, status, msg.Header.Get("Description"))
	}
	np := msg.Header.Get("Nats-Num-Pending")
	if np == "" {
		return 0, errors.New("direct get reply without Nats-Num-Pending")
	}
	n, err := strconv.ParseUint(np, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("direct get reply: Nats-Num-Pending %q: %w", np, err)
	}
	return n + 1, nil
}
