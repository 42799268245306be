package bench

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
)

func init() {
	scenarios[ScenarioIngestHTTP] = ingestHTTP
	scenarios[ScenarioIngestBatch] = ingestBatch
	scenarios[ScenarioPublish] = publishDirect
}

// ingestPool is the number of users a timed ingest step writes for.
const ingestPool = 256

// Targets of the issue (goals, not assertions).
const (
	targetIngestRatio     = 0.5 // single-command HTTP vs raw sync publish, batch vs raw async
	targetProjectionRatio = 0.7 // projection vs raw Neo4j UNWIND writes (issue 11)
	targetReadP99         = 5 * time.Millisecond
	targetReplayRate      = 10000.0 // events/s into an empty Neo4j (issue 11)
	targetIngestorRSS     = 64 << 20
	targetProjectorRSS    = 128 << 20
)

// ingestHTTP: single-command requests at each concurrency level, each level next to raw
// synchronous publishes of the same messages at the same concurrency.
func ingestHTTP(ctx context.Context, r *runner) error {
	ing, err := r.stack.Service(ServiceIngestor)
	if err != nil {
		return err
	}
	r.quiesceProjector(ctx)
	raw, err := r.rawPublisher(ctx)
	if err != nil {
		return err
	}
	src := newEventSource(r.tenants, groupIngestHTTP, ingestPool, &r.written)
	pool, err := newRequestPool(src, publishPool)
	if err != nil {
		return err
	}
	w := &writer{base: ing.URL, client: httpClient(slices.Max(r.cfg.Concurrency))}
	// The baseline the target compares with is raw publishing from a process of its own, as
	// the ingestor publishes (baseline_process.go); the driver's publishes inside the
	// embedded server's process are measured beside it.
	exe, exeErr := r.stack.Memctl(ctx)
	var relay *writer
	if exeErr == nil {
		proc, err := r.startRelay(ctx, exe, raw)
		if err != nil {
			return err
		}
		defer func() { _ = proc.stop() }()
		relay = &writer{base: proc.URL, client: httpClient(slices.Max(r.cfg.Concurrency))}
	}
	for _, c := range r.cfg.Concurrency {
		rate, s := raw.sync(ctx, c, r.cfg.Warmup, r.cfg.Duration)
		inproc := latencyResult("baseline", fmt.Sprintf("jetstream sync publish in-process c=%d", c), "events/s", rate, s)
		inproc = withNote(inproc, fmt.Sprintf("raw PublishMsg of %d-byte Engram messages from the driver's process, which holds the embedded NATS", raw.avgSize))
		base := inproc
		if exeErr == nil {
			rate, s, err := raw.syncFromProcess(ctx, exe, r.stack.NATSURL, r.stack.Dir, c, r.cfg.Warmup, r.cfg.Duration)
			if err != nil {
				return err
			}
			base = latencyResult("baseline", fmt.Sprintf("jetstream sync publish c=%d", c), "events/s", rate, s)
			base = withNote(base, fmt.Sprintf("raw PublishMsg of %d-byte Engram messages from a process of its own (memctl bench-publish), as the ingestor publishes", raw.avgSize))
		} else {
			r.report.Note("ingest-http c=%d compared with publishes inside the driver's process: %v", c, exeErr)
		}
		r.report.Add(inproc)
		if base != inproc {
			r.report.Add(base)
		}
		var floor Result
		if relay != nil {
			rate, s := closedLoop(ctx, c, r.cfg.Warmup, r.cfg.Duration, func(ctx context.Context) (int, error) {
				return 1, pool.send(ctx, relay)
			})
			floor = latencyResult("baseline", fmt.Sprintf("http relay c=%d", c), "events/s", rate, s)
			floor = withNote(floor, "the same requests to an HTTP server that publishes each body as it is with one sync publish, nothing else (memctl bench-publish -relay)")
			r.report.Add(floor)
		}
		rate, s = closedLoop(ctx, c, r.cfg.Warmup, r.cfg.Duration, func(ctx context.Context) (int, error) {
			return 1, pool.send(ctx, w)
		})
		res := ratioTo(latencyResult(ScenarioIngestHTTP, fmt.Sprintf("c=%d", c), "events/s", rate, s), base, targetIngestRatio)
		if base != inproc && inproc.Value > 0 {
			res = withNote(res, fmt.Sprintf("%.2f× the in-process publishes", res.Value/inproc.Value))
		}
		if floor.Value > 0 {
			res = withNote(res, fmt.Sprintf("%.2f× the HTTP relay", res.Value/floor.Value))
		}
		r.report.Add(res)
		r.log.Info("measured", "row", res.Name(), "events_per_s", int(res.Value), "ratio", fmt.Sprintf("%.2f", res.Ratio))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if r.cfg.Profile {
		if err := r.profileIngest(ctx, ScenarioIngestHTTP, false); err != nil {
			r.report.Note("profile of %s not taken: %v", ScenarioIngestHTTP, err)
		}
	}
	return r.purge(ctx, groupIngestHTTP)
}

// ingestBatch: POST /v1/batch with BatchSize commands at each concurrency level, next to raw
// asynchronous publishes of the same messages.
func ingestBatch(ctx context.Context, r *runner) error {
	ing, err := r.stack.Service(ServiceIngestor)
	if err != nil {
		return err
	}
	r.quiesceProjector(ctx)
	base, err := r.rawAsync(ctx)
	if err != nil {
		return err
	}
	src := newEventSource(r.tenants, groupIngestBatch, ingestPool, &r.written)
	w := &writer{base: ing.URL, client: httpClient(slices.Max(r.cfg.Concurrency))}
	for _, c := range r.cfg.Concurrency {
		rate, s := closedLoop(ctx, c, r.cfg.Warmup, r.cfg.Duration, func(ctx context.Context) (int, error) {
			cmds := make([]ingest.Command, r.cfg.BatchSize)
			for i := range cmds {
				cmd, err := Command(src.Next())
				if err != nil {
					return 0, err
				}
				cmds[i] = cmd
			}
			_, err := w.batch(ctx, cmds)
			return len(cmds), err
		})
		res := ratioTo(latencyResult(ScenarioIngestBatch, fmt.Sprintf("c=%d batch=%d", c, r.cfg.BatchSize), "events/s", rate, s), base, targetIngestRatio)
		res = withNote(res, "latency is per batch request")
		r.report.Add(res)
		r.log.Info("measured", "row", res.Name(), "events_per_s", int(res.Value), "ratio", fmt.Sprintf("%.2f", res.Ratio))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if r.cfg.Profile {
		if err := r.profileIngest(ctx, ScenarioIngestBatch, true); err != nil {
			r.report.Note("profile of %s not taken: %v", ScenarioIngestBatch, err)
		}
	}
	return r.purge(ctx, groupIngestBatch)
}

// publishPool is how many events of the mix the publish scenario prepares and cycles.
const publishPool = 4096

// publishDirect: the Go client's asynchronous publisher (internal/ingest) straight to NATS, as
// agents publish fire-and-forget, next to raw asynchronous publishes with the same bound in
// flight.
func publishDirect(ctx context.Context, r *runner) error {
	r.quiesceProjector(ctx)
	base, err := r.rawAsync(ctx)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(r.stack.NATSURL, nats.Name("memctl-bench-publish"))
	if err != nil {
		return err
	}
	defer nc.Close()
	pub, err := ingest.NewAsyncPublisher(nc, ingest.Settings{MultiTenant: true, Source: EventSource, Actor: "bench-agent"},
		ingest.WithMaxInFlight(AsyncWindow))
	if err != nil {
		return err
	}
	// The workload is made before the clock runs, as the baseline's messages are: a pool of
	// the mix cycled, each event again under a new id (so none is a duplicate). Made inside
	// the timed loop, the scripts' texts and ids cost the driver about a fifth of this row's
	// time on two cores (session 10: 0.56× with them, docs/BENCHMARKS.md).
	src := newEventSource(r.tenants, groupPublish, ingestPool, &r.written)
	pool := make([]*events.Event, publishPool)
	for i := range pool {
		pool[i] = src.Next()
	}
	run := func(d time.Duration) (float64, Summary, error) {
		var sent atomic.Int64
		start := time.Now()
		end := start.Add(d)
		for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
			ev := *pool[i%len(pool)]
			ev.ID = events.NewID()
			cmd, err := Command(&ev)
			if err != nil {
				return 0, Summary{}, err
			}
			if _, err := pub.Publish(ctx, cmd); err != nil {
				return 0, Summary{}, fmt.Errorf("async publish: %w", err)
			}
			sent.Add(1)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		failed := ingest.Failures(pub.Wait(wctx))
		s := Summary{Count: int(sent.Load()) - len(failed), Errors: len(failed)}
		if len(failed) > 0 {
			s.First = failed[0]
		}
		return float64(s.Count) / time.Since(start).Seconds(), s, nil
	}
	if r.cfg.Warmup > 0 {
		if _, _, err := run(r.cfg.Warmup); err != nil {
			return err
		}
	}
	rate, s, err := run(r.cfg.Duration)
	if err != nil {
		return err
	}
	res := ratioTo(latencyResult(ScenarioPublish, fmt.Sprintf("async in-flight=%d", AsyncWindow), "events/s", rate, s), base, 0)
	res = withNote(res, "ingest.AsyncPublisher: build, validate, encode, PublishMsgAsync; no target in the issue")
	r.report.Add(res)
	r.log.Info("measured", "row", res.Name(), "events_per_s", int(res.Value), "ratio", fmt.Sprintf("%.2f", res.Ratio))
	return r.purge(ctx, groupPublish)
}

// rawAsync measures (again, in this scenario) raw asynchronous publishing and adds its row.
func (r *runner) rawAsync(ctx context.Context) (Result, error) {
	raw, err := r.rawPublisher(ctx)
	if err != nil {
		return Result{}, err
	}
	rate, s, err := raw.async(ctx, r.stack.NC, AsyncWindow, r.cfg.Warmup, r.cfg.Duration)
	if err != nil {
		return Result{}, err
	}
	base := latencyResult("baseline", fmt.Sprintf("jetstream async publish in-flight=%d", AsyncWindow), "events/s", rate, s)
	base = withNote(base, fmt.Sprintf("raw PublishMsgAsync of %d-byte Engram messages", raw.avgSize))
	// The same variant may be measured by several scenarios; keep each, told apart by order.
	if _, dup := r.report.Find(base.Name()); dup {
		base.Variant += fmt.Sprintf(" (#%d)", r.rawAsyncRuns+1)
	}
	r.rawAsyncRuns++
	r.report.Add(base)
	return base, nil
}

// latencyResult fills a row from a rate and a latency summary.
func latencyResult(scenario, variant, metric string, value float64, s Summary) Result {
	res := Result{Scenario: scenario, Variant: variant, Metric: metric, Value: value, Count: s.Count, Errors: s.Errors}
	if s.P50 > 0 {
		res.P50, res.P99 = ms(s.P50), ms(s.P99)
	}
	if s.First != nil {
		res.Note = "first error: " + clip(firstLine(s.First.Error()), 200)
	}
	return res
}

// withNote appends a note to a row's.
func withNote(res Result, note string) Result {
	if res.Note == "" {
		res.Note = note
	} else {
		res.Note += "; " + note
	}
	return res
}
