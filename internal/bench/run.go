package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

// runner carries one run's state through the scenarios.
type runner struct {
	cfg     Config
	stack   *Stack
	report  *Report
	tenants Tenants
	log     *slog.Logger
	written tenantLog // tenants with events in the memory stream

	raw          *rawPublisher // the raw publish baseline's stream, made on first use
	rawAsyncRuns int

	notedLiveProjector bool
	lastProjected      int  // events the projection scenario wrote (replay reuses them)
	profiledProjection bool // an in-process projector of the run's profiling group ran
	// seal, when it has keys, seals what project publishes, as the ingestor does (the
	// encryption scenario).
	seal events.Codec
}

// rawPublisher returns the run's raw publish baseline, creating its stream on first use.
func (r *runner) rawPublisher(ctx context.Context) (*rawPublisher, error) {
	if r.raw != nil {
		return r.raw, nil
	}
	sample := Mix(r.tenants, groupRawPublish, 2*EventsPerUser*16, time.Now().UTC())
	raw, err := newRawPublisher(ctx, r.stack, sample)
	if err != nil {
		return nil, err
	}
	r.raw = raw
	return raw, nil
}

// quiesceProjector stops the run's own projector while the write scenarios measure, so that
// it does not compete for the CPUs with what they measure; the events they write are purged
// before it starts again. A projector of a running stack keeps running (noted in the report).
func (r *runner) quiesceProjector(context.Context) {
	svc, err := r.stack.Service(ServiceProjector)
	if err != nil {
		return
	}
	if svc.Proc == nil {
		if !r.notedLiveProjector {
			r.report.Note("the running stack's projector applied the write scenarios' events while they were measured")
			r.notedLiveProjector = true
		}
		return
	}
	if svc.Proc.Pid() != 0 {
		r.log.Info("stopping the projector while the write scenarios run")
		_ = svc.Proc.stop()
	}
}

// projector returns the projector, starting the run's own again when it was quiesced.
func (r *runner) projector(ctx context.Context) (*Service, error) {
	svc, ok := r.stack.services[ServiceProjector]
	if !ok {
		return r.stack.Service(ServiceProjector)
	}
	if svc.Proc != nil && svc.Proc.Pid() == 0 {
		if err := svc.Proc.start(ctx, 2*time.Minute); err != nil {
			return nil, fmt.Errorf("%w: restart projector: %w", ErrUnavailable, err)
		}
	}
	return r.stack.Service(ServiceProjector)
}

// purge removes a group's events from the memory stream now, so that the projector, when it
// starts again, has only the next scenario's events to apply. Cleanup purges the group again
// at the end: a request the driver gave up on may still have been stored after this purge.
func (r *runner) purge(ctx context.Context, group string) error {
	return PurgeTenants(ctx, r.stack.JS, r.tenants, group, r.written.get(group))
}

// scenario runs one scenario, adding its rows (and its baselines' rows) to the report.
type scenario func(ctx context.Context, r *runner) error

var scenarios = map[string]scenario{}

// Run validates c, brings up the stack, runs the selected scenarios, removes the run's data,
// stops everything it started, and returns the report. It writes the table to out and the
// files c names. Whatever happens — an error, a cancelled ctx (Ctrl-C) — nothing the driver
// started keeps running after Run returns.
func Run(ctx context.Context, c Config, out io.Writer, log *slog.Logger) (rep *Report, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	started := time.Now()
	rep = &Report{Date: started.UTC(), Command: c.Command, Machine: DescribeMachine(ctx), Params: params(c)}
	stack, err := StartStack(ctx, c, log)
	if err != nil {
		return rep, fmt.Errorf("start the stack: %w", err)
	}
	r := &runner{cfg: c, stack: stack, report: rep, tenants: Tenants{RunID: stack.RunID}, log: log}
	rep.RunID, rep.Stack = stack.RunID, stack.Described
	rep.Machine.Neo4j = stack.Neo4jVersion(ctx)
	for _, p := range stack.Processes() {
		rep.Processes = append(rep.Processes, ProcessInfo{Name: p.Name, PID: p.Pid()})
	}
	defer func() {
		if cerr := r.cleanup(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
		if cerr := stack.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stop the stack: %w", cerr))
		}
	}()
	var failed []error
	for _, name := range Scenarios {
		if !c.Has(name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		log.Info("scenario", "name", name)
		t0 := time.Now()
		run, ok := scenarios[name]
		if !ok {
			rep.Add(Result{Scenario: name, Status: StatusNA, Note: "not implemented"})
			continue
		}
		err := run(ctx, r)
		switch {
		case err == nil:
			log.Info("scenario done", "name", name, "elapsed", time.Since(t0).Round(time.Millisecond))
		case ctx.Err() != nil:
		case errors.Is(err, ErrUnavailable) || errors.Is(err, ErrProcessExited):
			rep.Add(Result{Scenario: name, Status: StatusNA, Note: firstLine(err.Error())})
			log.Warn("scenario not run", "name", name, "err", err)
		default:
			// A broken scenario does not hide the others' figures; the run fails at the end.
			rep.Add(Result{Scenario: name, Status: StatusError, Note: clip(firstLine(err.Error()), 300)})
			log.Error("scenario failed", "name", name, "err", err)
			failed = append(failed, fmt.Errorf("scenario %s: %w", name, err))
		}
	}
	rep.Machine.LoadEnd = loadavg()
	rep.Elapsed = time.Since(started).Seconds()
	if err := rep.WriteTable(out); err != nil {
		return rep, err
	}
	if ctx.Err() != nil {
		// Interrupted: the table shows what was measured; the files keep the last full run.
		return rep, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if len(failed) > 0 {
		return rep, errors.Join(failed...)
	}
	if c.JSON != "" {
		if err := rep.WriteJSON(c.JSON); err != nil {
			return rep, err
		}
	}
	if c.Out != "" {
		if err := rep.WriteMarkdown(c.Out); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// cleanup stops the services (so nothing writes any more), then removes the run's nodes from
// Neo4j and its tenants' messages from the stream.
func (r *runner) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var errs []error
	for _, p := range r.stack.Processes() {
		p.sample()
		if err := p.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if r.raw != nil {
		if err := r.raw.delete(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := r.deleteConsumers(ctx); err != nil {
		errs = append(errs, err)
	}
	t0 := time.Now()
	n, err := DeleteGraph(ctx, r.stack.Neo4j, r.stack.Neo4jDB, r.tenants.OwnerPrefix())
	if err != nil {
		errs = append(errs, err)
	}
	for group, users := range r.written.all() {
		if err := PurgeTenants(ctx, r.stack.JS, r.tenants, group, users); err != nil {
			errs = append(errs, err)
		}
		// And their data keys (the ingestor and the encryption scenario seal).
		if err := destroyKeys(ctx, r.stack.JS, r.tenants, group, users); err != nil {
			errs = append(errs, err)
		}
	}
	r.log.Info("cleanup done", "nodes_deleted", n, "elapsed", time.Since(t0).Round(time.Millisecond))
	return errors.Join(errs...)
}

func params(c Config) map[string]any {
	return map[string]any{
		"scenarios": c.Scenarios, "duration": c.Duration.String(), "warmup": c.Warmup.String(), "events": c.Events,
		"concurrency": c.Concurrency, "batch_size": c.BatchSize, "rate": c.Rate, "users": c.Users,
		"prefs_per_user": c.PrefsPerUser, "read_workers": c.ReadWorkers, "unwind_batch": c.UnwindBatch,
		"replay_events": c.ReplayEvents,
	}
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// deleteConsumers removes the durable consumers of the projector groups the run started
// (its own group, and the group of an in-process profiling run).
func (r *runner) deleteConsumers(ctx context.Context) error {
	if svc, ok := r.stack.services[ServiceProjector]; (!ok || svc.Proc == nil) && !r.profiledProjection {
		return nil
	}
	s, err := r.stack.JS.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return err
	}
	var errs []error
	names := s.ConsumerNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, r.tenants.OwnerPrefix()) {
			if err := s.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				errs = append(errs, fmt.Errorf("delete consumer %s: %w", name, err))
			}
		}
	}
	if err := names.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
