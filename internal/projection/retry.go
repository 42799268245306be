package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// Backoff is the delay policy between attempts of a batch that failed transiently: it doubles
// from Min up to Max, and each delay is drawn uniformly from its upper half (jitter), so
// partitions and processes that failed together do not retry in lockstep.
type Backoff struct {
	Min, Max time.Duration
}

// Delay returns the wait before attempt n+1 after n failed attempts (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// errStopping ends a retry loop when the projector stops; the batch is left to be delivered
// again.
var errStopping = errors.New("projector stopping")

// errRejectedByGraph marks a batch that Neo4j refused with a non-transient error: retrying it
// as a whole cannot succeed, so the worker isolates the event at fault.
var errRejectedByGraph = errors.New("neo4j rejected the batch")

// Neo4j client errors that no event can cause: a bug or a misconfiguration, retried (and
// logged) rather than blamed on an event. EntityNotFound is a node deleted under the
// statement by a concurrent transaction (an erasure deleting a Tool another partition's
// tally had found, cypher.go): the statements only use nodes they have just matched, so a
// retry finds the graph as it now is.
var neo4jFatalPrefixes = []string{
	"Neo.ClientError.Statement.EntityNotFound",
	"Neo.ClientError.Statement.SyntaxError",
	"Neo.ClientError.Statement.ParameterMissing",
	"Neo.ClientError.Security.",
	"Neo.ClientError.Database.",
	"Neo.ClientError.Cluster.",
	"Neo.ClientError.Transaction.",
	"Neo.ClientError.Procedure.",
	"Neo.ClientError.Request.",
}

// isRejection reports whether err is Neo4j refusing the data of the batch (a constraint, a
// type or argument error): not transient, and caused by an event, so the event at fault can
// be isolated and dead-lettered. Everything else (transient errors, lost connections, NATS,
// unknown errors) is retried: an event is never dead-lettered for an infrastructure failure.
func isRejection(err error) bool {
	var n4j *neo4j.Neo4jError
	if !errors.As(err, &n4j) {
		return false
	}
	if n4j.IsRetriable() || !strings.HasPrefix(n4j.Code, "Neo.ClientError.") {
		return false
	}
	for _, p := range neo4jFatalPrefixes {
		if strings.HasPrefix(n4j.Code, p) {
			return false
		}
	}
	return true
}

// isUnreachable reports whether err says Neo4j could not be reached (or was unavailable).
func isUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var ce *neo4j.ConnectivityError
	if errors.As(err, &ce) {
		return true
	}
	var n4j *neo4j.Neo4jError
	return errors.As(err, &n4j) && strings.HasPrefix(n4j.Code, "Neo.TransientError.General.DatabaseUnavailable")
}

// stepFunc applies one batch step: one transaction over a prefix of a partition's pending
// events. The decorators below wrap it.
type stepFunc func(ctx context.Context) (stepStats, error)

// withRetry retries next after transient failures with backoff until it succeeds, until
// stop ends (errStopping), or until the failure is a rejection (returned for isolation).
// Before each wait it calls keepAlive so the batch's events are not redelivered meanwhile.
func withRetry(next stepFunc, b Backoff, stop context.Context, keepAlive func(), m *Metrics, log *slog.Logger) stepFunc {
	return func(ctx context.Context) (stepStats, error) {
		for attempt := 1; ; attempt++ {
			st, err := next(ctx)
			if err == nil || errors.Is(err, errRejectedByGraph) || errors.Is(err, errStopping) {
				return st, err
			}
			if ctx.Err() != nil {
				return st, errors.Join(errStopping, ctx.Err())
			}
			cause := retryNeo4j
			if errors.Is(err, errNATS) {
				cause = retryNATS
			}
			m.Retries.WithLabelValues(cause).Inc()
			delay := b.Delay(attempt)
			level := slog.LevelWarn
			if attempt > 1 {
				level = slog.LevelInfo
			}
			log.Log(ctx, level, "batch failed, retrying", "cause", cause, "attempt", attempt, "delay", delay, "err", err)
			keepAlive()
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-stop.Done():
				t.Stop()
				return stepStats{}, errStopping
			case <-ctx.Done():
				t.Stop()
				return stepStats{}, errors.Join(errStopping, ctx.Err())
			}
		}
	}
}

// withRejectionCheck turns a Neo4j rejection of next into errRejectedByGraph.
func withRejectionCheck(next stepFunc) stepFunc {
	return func(ctx context.Context) (stepStats, error) {
		st, err := next(ctx)
		if err != nil && isRejection(err) && !errors.Is(err, errWarmUp) {
			return st, errors.Join(errRejectedByGraph, err)
		}
		return st, err
	}
}

// errPanicked marks a step that panicked: a bug, which the worker isolates like a rejection so
// that one event cannot stall its partition forever.
var errPanicked = errors.New("projection panicked")

// withRecover turns a panic of next into an error (errRejectedByGraph and errPanicked).
func withRecover(next stepFunc, log *slog.Logger) stepFunc {
	return func(ctx context.Context) (st stepStats, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("batch panicked", "panic", r, "stack", string(debug.Stack()))
				err = errors.Join(errRejectedByGraph, errPanicked, fmt.Errorf("panic: %v", r))
			}
		}()
		return next(ctx)
	}
}

// errWarmUp marks a failed warm-up: never an event's fault, so always retried.
var errWarmUp = errors.New("warm-up failed")

// errNATS marks failures of NATS calls made inside a step (reading the stream, dead letters).
var errNATS = errors.New("nats")

// stepStats is what a committed step did, for the metrics decorator.
type stepStats struct {
	entries      int // events the transaction covered (applied, duplicate or dead-lettered)
	skipped      int // redelivered events at or below the checkpoint, acknowledged only
	applied      map[events.Kind]int
	duplicates   int
	refused      int // stored after the tenant's erasure: dropped (erased.go)
	deadLettered map[Reason]int
	gapFilled    int
	checkpoint   uint64 // 0 when the step committed nothing
}

// withMetrics records the metrics of every committed step of next.
func withMetrics(next stepFunc, m *Metrics, partition int) stepFunc {
	label := partitionLabel(partition)
	return func(ctx context.Context) (stepStats, error) {
		start := time.Now()
		st, err := next(ctx)
		if err != nil {
			return st, err
		}
		if st.entries > 0 {
			m.ApplySeconds.Observe(time.Since(start).Seconds())
			m.BatchSize.Observe(float64(st.entries))
		}
		for k, n := range st.applied {
			m.Applied.WithLabelValues(string(k)).Add(float64(n))
		}
		for r, n := range st.deadLettered {
			m.DeadLettered.WithLabelValues(string(r)).Add(float64(n))
		}
		m.Skipped.WithLabelValues("checkpoint").Add(float64(st.skipped))
		m.Skipped.WithLabelValues("duplicate").Add(float64(st.duplicates))
		m.Skipped.WithLabelValues(skippedErased).Add(float64(st.refused))
		m.GapFilled.Add(float64(st.gapFilled))
		if st.checkpoint > 0 {
			m.Checkpoint.WithLabelValues(label).Set(float64(st.checkpoint))
		}
		return st, nil
	}
}
