package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

func init() {
	scenarios[ScenarioProjection] = projectionScenario
}

// rawWriters is the number of concurrent writers of the raw Neo4j baseline: one per core of
// the machine the numbers in docs/BENCHMARKS.md come from.
const rawWriters = 2

// projectionScenario: the raw Neo4j baseline writes a realistic mix of Events events; then the same
// number of events of the same mix (other users) is published to the stream as fast as
// JetStream takes them, and the projector applies them. The lag (events published and not yet
// applied, from the checkpoints) is sampled twice a second.
func projectionScenario(ctx context.Context, r *runner) error {
	if _, err := r.projector(ctx); err != nil {
		return err
	}
	n := r.cfg.Events
	base, err := r.rawNeo4jBaseline(ctx, n)
	if err != nil {
		return err
	}
	proj, err := r.projector(ctx)
	if err != nil {
		return err
	}
	evs := Mix(r.tenants, groupProjection, n, time.Now().UTC().Add(-time.Hour))
	r.written.used(groupProjection, MixUsers(n))
	metricsURL := proj.URL + "/metrics"
	before, merr := scrape(ctx, metricsURL)
	pr, err := r.project(ctx, evs, "projection", r.stack.ProjectorGroup)
	if err != nil {
		return err
	}
	var breakdown string
	if after, err := scrape(ctx, metricsURL); err == nil && merr == nil {
		breakdown = projectorBreakdown(before, after, pr.total)
	}
	res := Result{Scenario: ScenarioProjection, Variant: fmt.Sprintf("%d events", n), Metric: "events/s",
		Value: pr.steady, Count: pr.applied, Errors: pr.deadLettered}
	res = ratioTo(res, base, targetProjectionRatio)
	res = withNote(res, fmt.Sprintf("applied events/s between 10%% and 90%% of the events applied; all %d applied %.1f s after the first was published (%.0f events/s overall); peak lag %d events",
		n, pr.total.Seconds(), float64(n)/pr.total.Seconds(), pr.peakLag))
	if pr.deadLettered > 0 {
		res = withNote(res, fmt.Sprintf("%d events dead-lettered", pr.deadLettered))
	}
	if proj.Proc != nil {
		res = withNote(res, "projector subprocess with its default settings (batch 500, wait 20ms, 8 partitions)")
	}
	if breakdown != "" {
		res = withNote(res, breakdown)
	}
	r.report.Add(res)
	r.log.Info("measured", "row", res.Name(), "events_per_s", int(res.Value), "ratio", fmt.Sprintf("%.2f", res.Ratio))
	r.report.Series = append(r.report.Series, Series{Name: "Projection lag over time", Unit: "events not yet applied", Points: pr.lag})
	r.lastProjected = n
	if r.cfg.Profile && res.Status == StatusMissed {
		if err := r.profileProjection(ctx, n); err != nil {
			r.report.Note("profile of %s not taken: %v", ScenarioProjection, err)
		}
	}
	return nil
}

// rawNeo4jBaseline writes n events of the mix with plain UNWIND batches, adds its row, and
// removes what it wrote, so that the projection starts from the same graph.
func (r *runner) rawNeo4jBaseline(ctx context.Context, n int) (Result, error) {
	evs := Mix(r.tenants, groupRawNeo4j, n, time.Now().UTC().Add(-2*time.Hour))
	r.log.Info("raw neo4j baseline", "events", n, "batch", r.cfg.UnwindBatch, "writers", rawWriters)
	rate, s, err := rawNeo4j(ctx, r.stack.Neo4j, r.stack.Neo4jDB, evs, rawWriters, r.cfg.UnwindBatch)
	if err != nil {
		return Result{}, err
	}
	base := latencyResult("baseline", fmt.Sprintf("raw neo4j UNWIND batch=%d writers=%d", r.cfg.UnwindBatch, rawWriters), "events/s", rate, s)
	base = withNote(base, fmt.Sprintf("%d events of the same mix written by plain Go UNWIND statements, one transaction per batch; latency per transaction", n))
	r.report.Add(base)
	r.log.Info("measured", "row", base.Name(), "events_per_s", int(base.Value))
	if _, err := DeleteGraph(ctx, r.stack.Neo4j, r.stack.Neo4jDB, r.tenants.GroupPrefix(groupRawNeo4j)); err != nil {
		return Result{}, err
	}
	return base, nil
}

// projected is what one projection measured.
type projected struct {
	applied      int
	deadLettered int
	steady       float64       // events/s between 10% and 90% applied
	total        time.Duration // first publish to last applied
	peakLag      int
	lag          []Point
}

// seqIndex keeps the stream sequences of published events by partition, to count those a
// set of checkpoints does not cover yet.
type seqIndex struct {
	mu   sync.Mutex
	byP  [][]uint64
	acks int
}

func (x *seqIndex) add(p int, seq uint64) {
	x.mu.Lock()
	x.byP[p] = append(x.byP[p], seq)
	x.acks++
	x.mu.Unlock()
}

// remaining counts the events above each partition's checkpoint.
func (x *seqIndex) remaining(ckpt map[int]uint64) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for p, seqs := range x.byP {
		if !slices.IsSorted(seqs) {
			slices.Sort(seqs)
		}
		c := ckpt[p]
		n += len(seqs) - sort.Search(len(seqs), func(i int) bool { return seqs[i] > c })
	}
	return n
}

// project publishes evs asynchronously and waits until the projector applied all of them,
// sampling the lag.
func (r *runner) project(ctx context.Context, evs []*events.Event, what, group string) (projected, error) {
	msgs := make([]*nats.Msg, len(evs))
	for i, e := range evs {
		m, err := events.Encode(e)
		if err != nil {
			return projected{}, err
		}
		if err := r.seal.Seal(ctx, e.User, m); err != nil {
			return projected{}, err
		}
		msgs[i] = m
	}
	dlqBefore, err := streamMsgs(ctx, r.stack.JS, stream.DeadLetterStream)
	if err != nil {
		return projected{}, err
	}
	idx := &seqIndex{byP: make([][]uint64, natsdeploy.Partitions)}
	var pubErrs []error
	var mu sync.Mutex
	js, err := jetstream.New(r.stack.NC, jetstream.WithPublishAsyncMaxPending(AsyncWindow),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
			tok, _, _ := events.ParseSubject(m.Subject)
			idx.add(events.Partition(tok, natsdeploy.Partitions), ack.Sequence)
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			mu.Lock()
			pubErrs = append(pubErrs, err)
			mu.Unlock()
		}))
	if err != nil {
		return projected{}, err
	}
	r.log.Info("publishing for projection", "what", what, "events", len(msgs))
	start := time.Now()
	pubDone := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if _, err := js.PublishMsgAsync(m, jetstream.WithExpectStream(stream.MemoryStream), jetstream.WithStallWait(time.Minute)); err != nil {
				pubDone <- err
				return
			}
		}
		select {
		case <-js.PublishAsyncComplete():
			pubDone <- nil
		case <-ctx.Done():
			pubDone <- ctx.Err()
		}
	}()
	var out projected
	n := len(evs)
	var t10, t90 time.Time
	published := false
	lastProgress, lastRemaining := time.Now(), -1
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-pubDone:
			if err != nil {
				return out, fmt.Errorf("publish for %s: %w", what, err)
			}
			published = true
			mu.Lock()
			perr := errors.Join(pubErrs...)
			mu.Unlock()
			if perr != nil {
				return out, fmt.Errorf("publish for %s: %w", what, perr)
			}
			r.log.Info("published", "events", n, "elapsed", time.Since(start).Round(time.Millisecond))
		case <-ctx.Done():
			return out, ctx.Err()
		case <-tick.C:
		}
		ckpt, err := r.checkpoints(ctx, group)
		if err != nil {
			return out, err
		}
		// Not yet acknowledged events are not yet applied either.
		idx.mu.Lock()
		unacked := n - idx.acks
		idx.mu.Unlock()
		rem := idx.remaining(ckpt) + unacked
		now := time.Now()
		out.lag = append(out.lag, Point{T: now.Sub(start).Seconds(), Value: float64(rem)})
		out.peakLag = max(out.peakLag, rem)
		applied := n - rem
		if t10.IsZero() && applied >= n/10 {
			t10 = now
		}
		if t90.IsZero() && applied >= n*9/10 {
			t90 = now
		}
		if rem != lastRemaining {
			lastProgress, lastRemaining = now, rem
		}
		if published && rem == 0 {
			out.total = now.Sub(start)
			break
		}
		if now.Sub(lastProgress) > 2*time.Minute {
			return out, fmt.Errorf("%s: no progress for 2 minutes with %d of %d events not applied", what, rem, n)
		}
	}
	out.applied = n
	if t90.After(t10) {
		out.steady = float64(n*9/10-n/10) / t90.Sub(t10).Seconds()
	} else {
		out.steady = float64(n) / out.total.Seconds()
	}
	dlqAfter, err := streamMsgs(ctx, r.stack.JS, stream.DeadLetterStream)
	if err != nil {
		return out, err
	}
	out.deadLettered = int(dlqAfter - dlqBefore)
	return out, nil
}

const readCheckpoints = `
MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH $prefix
RETURN c.name AS name, c.stream_seq AS seq`

// checkpoints reads a projector group's checkpoint of every partition.
func (r *runner) checkpoints(ctx context.Context, group string) (map[int]uint64, error) {
	prefix := group + "-p"
	res, err := neo4j.ExecuteQuery(ctx, r.stack.Neo4j, readCheckpoints, map[string]any{"prefix": prefix},
		neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(r.stack.Neo4jDB))
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	out := map[int]uint64{}
	for _, rec := range res.Records {
		name, _ := rec.Get("name")
		seq, _ := rec.Get("seq")
		var p int
		if _, err := fmt.Sscanf(name.(string)[len(prefix):], "%d", &p); err != nil {
			continue
		}
		if s, ok := seq.(int64); ok {
			out[p] = uint64(s)
		}
	}
	return out, nil
}

// streamMsgs is the number of messages in a stream.
func streamMsgs(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", name, err)
	}
	return s.CachedInfo().State.Msgs, nil
}
