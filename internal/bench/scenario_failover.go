package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/replay"
	"github.com/engram-memory/engram/internal/stream"
)

func init() {
	scenarios[ScenarioFailover] = failover
}

const (
	groupFailover = "fo" // tenant group of the failover scenario
	// failoverPool is the number of users of the background load: a few per partition.
	failoverPool = 64
	// failoverLoad is the background load, events/s: every partition gets events several times
	// a second, so each is held by a process when it is killed.
	failoverLoad = 150
	// failoverWait bounds the wait for one probe; a probe not applied by then is an error.
	failoverWait = time.Minute
	// failoverSettle is how long a restarted process competes before the next kill, whose
	// survivor it is: a process that started a moment before is not the common survivor.
	failoverSettle = 2 * time.Second
	// targetFailoverP99 is the target: SIGKILL of the process holding a partition to
	// the other process applying the partition's next event.
	targetFailoverP99 = 3 * time.Second
)

// failover: two projector processes of the run's group share the partitions under a light
// background load (failoverLoad events/s of the realistic mix, published straight to
// JetStream). FailoverKills times, the driver picks a partition, finds the process holding it
// (its partition_active metric), SIGKILLs it, publishes a probe event for a tenant of that
// partition at once and measures from the kill until the partition's checkpoint in Neo4j
// covers the probe; then it starts the killed process again and waits until it competes for
// the partitions. Then FailoverRestarts times, with a single projector: SIGKILL, a probe, an
// immediate restart, and the time from the kill and from the restarted process's readiness to
// the probe applied. Last, with the load stopped and everything applied, it checks that every
// event of the scenario was applied exactly once and in per-tenant order (node counts, the
// probes, the message chains, and the graph against a per-tenant replay of the same events).
func failover(ctx context.Context, r *runner) error {
	first, err := r.projector(ctx)
	if err != nil {
		return err
	}
	if first.Proc == nil {
		return fmt.Errorf("%w: the projector runs outside the driver (PROJECTOR_URL): the failover scenario kills projector processes it started itself", ErrUnavailable)
	}
	second, err := r.secondProjector(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = second.stop() }()
	f := newFailoverRun(r, first.Proc, second)
	dlqBefore, err := streamMsgs(ctx, r.stack.JS, stream.DeadLetterStream)
	if err != nil {
		return err
	}
	// What earlier scenarios left unapplied is applied first: a backlog would be measured as
	// catch-up time.
	if err := f.waitCaughtUp(ctx, 5*time.Minute); err != nil {
		return fmt.Errorf("before the kills: %w", err)
	}

	bgCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); f.background(bgCtx) }()
	stopBackground := func() { stopLoad(); <-loadDone }
	defer stopBackground()
	for p := range natsdeploy.Partitions {
		if _, err := f.holder(ctx, p); err != nil {
			return err
		}
	}

	two, err := f.killHolders(ctx)
	if err != nil {
		return err
	}
	var one, oneReady Result
	if r.cfg.FailoverRestarts > 0 {
		if one, oneReady, err = f.restartSingle(ctx); err != nil {
			return err
		}
	}
	stopBackground()
	check := f.verify(ctx, dlqBefore)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if check.Status != StatusMet {
		two.Errors++
		two = withNote(two, "exactly-once and per-tenant order check FAILED (see the exactly-once row)")
		two.Status = StatusMissed
	} else {
		two = withNote(two, "exactly-once and per-tenant order check passed (see the exactly-once row)")
	}
	r.report.Add(two)
	if r.cfg.FailoverRestarts > 0 {
		r.report.Add(one)
		r.report.Add(oneReady)
	}
	r.report.Add(check)
	r.report.Series = append(r.report.Series, f.series)
	r.log.Info("measured", "row", two.Name(), "p50_ms", two.P50, "p99_ms", two.P99, "exactly_once", check.Status)
	// Like after freshness: the next scenarios run without the projector.
	r.quiesceProjector(ctx)
	return nil
}

// secondProjector starts (or starts again) the run's second projector process, of the same
// group as the first.
func (r *runner) secondProjector(ctx context.Context) (*Process, error) {
	svc, ok := r.stack.services[ServiceProjector2]
	if !ok {
		if err := r.stack.startService(ctx, ServiceProjector2); err != nil {
			return nil, err
		}
		svc = r.stack.services[ServiceProjector2]
		r.report.Processes = append(r.report.Processes, ProcessInfo{Name: svc.Proc.Name, PID: svc.Proc.Pid()})
		r.report.Stack = append(r.report.Stack, fmt.Sprintf("%s: a second subprocess of ./cmd/projector in the same group, listening on %s, started for the %s scenario only",
			ServiceProjector2, svc.Proc.URL, ScenarioFailover))
		return svc.Proc, nil
	}
	if svc.Proc.Pid() == 0 {
		if err := svc.Proc.start(ctx, 2*time.Minute); err != nil {
			return nil, fmt.Errorf("%w: restart %s: %w", ErrUnavailable, ServiceProjector2, err)
		}
	}
	return svc.Proc, nil
}

// published is an event the scenario stored, with its stream sequence.
type published struct {
	seq uint64
	ev  *events.Event
}

// failoverRun is one run of the failover scenario.
type failoverRun struct {
	r     *runner
	procs []*Process // the run's projector and projector-2
	src   *eventSource
	tools []string // the scenario's own Tool names (Tool nodes are global)
	// probeUsers[p] is a user of partition p, written to by the probes alone.
	probeUsers []string
	started    time.Time
	series     Series

	mu     sync.Mutex
	events []published // every event stored, in acknowledgement order
	probes []string    // preference ids of the probes
	lost   int         // events whose publication could not be confirmed
}

func newFailoverRun(r *runner, procs ...*Process) *failoverRun {
	f := &failoverRun{r: r, procs: procs, src: newEventSource(r.tenants, groupFailover, failoverPool, &r.written),
		probeUsers: make([]string, natsdeploy.Partitions), started: time.Now(),
		series: Series{Name: "Failover: SIGKILL of the process holding a partition to its next event applied (two projectors)",
			Unit: "ms from the kill at t"}}
	for n := range 3 {
		f.tools = append(f.tools, f.tool(r.tenants.ToolName(n)))
	}
	// One user per partition for the probes, after the pool's.
	for n, found := failoverPool, 0; found < natsdeploy.Partitions; n++ {
		u := r.tenants.User(groupFailover, n)
		tok, _ := events.TenantToken(u)
		if p := events.Partition(tok, natsdeploy.Partitions); f.probeUsers[p] == "" {
			f.probeUsers[p] = u
			found++
			r.written.used(groupFailover, n+1)
		}
	}
	return f
}

// tool renames one of the run's tools to the scenario's own, so that the Tool aggregates the
// exactly-once check compares count this scenario's calls only.
func (f *failoverRun) tool(name string) string {
	prefix := f.r.tenants.OwnerPrefix()
	return prefix + groupFailover + "-" + strings.TrimPrefix(name, prefix)
}

// next is the next event of the background load.
func (f *failoverRun) next() *events.Event {
	e := f.src.Next()
	if d, ok := e.Data.(events.ToolCallRecorded); ok {
		d.ToolName = f.tool(d.ToolName)
		e.Data = d
	}
	return e
}

// publish stores e and returns its stream sequence. A failed attempt is repeated with the same
// message id, so an event stored whose acknowledgement was lost is stored once and its
// sequence known (JetStream answers a duplicate with the original's sequence).
func (f *failoverRun) publish(ctx context.Context, e *events.Event) (uint64, error) {
	m, err := events.Encode(e)
	if err != nil {
		return 0, err
	}
	var last error
	for attempt := range 10 {
		if attempt > 0 {
			if ctx.Err() != nil {
				break
			}
			sleepCtx(ctx, time.Duration(attempt)*200*time.Millisecond)
		}
		// An attempt is not cut short by ctx: its outcome is wanted either way.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		ack, err := f.r.stack.JS.PublishMsg(pctx, m, jetstream.WithExpectStream(stream.MemoryStream))
		cancel()
		if err == nil {
			f.mu.Lock()
			f.events = append(f.events, published{seq: ack.Sequence, ev: e})
			f.mu.Unlock()
			return ack.Sequence, nil
		}
		last = err
	}
	f.mu.Lock()
	f.lost++
	f.mu.Unlock()
	return 0, fmt.Errorf("publish %s: %w", e.ID, last)
}

// background publishes the load at failoverLoad events/s until ctx ends.
func (f *failoverRun) background(ctx context.Context) {
	interval := time.Second / time.Duration(failoverLoad)
	due := time.Now()
	for ctx.Err() == nil {
		due = due.Add(interval)
		if wait := time.Until(due); wait > 0 {
			sleepCtx(ctx, wait)
		}
		if ctx.Err() != nil {
			return
		}
		if _, err := f.publish(ctx, f.next()); err != nil {
			f.r.log.Warn("failover background publish failed", "err", err)
		}
	}
}

// probe publishes a preference for partition p's probe user and returns its sequence.
func (f *failoverRun) probe(ctx context.Context, p int) (uint64, error) {
	id := events.NewID()
	e := &events.Event{ID: events.NewID(), Source: EventSource, User: f.probeUsers[p], Time: time.Now().UTC(),
		Actor: "bench-failover", Data: events.PreferenceAdded{PreferenceID: id, Category: "failover",
			Preference: fmt.Sprintf("probe of partition %d", p), Context: "failover scenario"}}
	seq, err := f.publish(ctx, e)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	f.probes = append(f.probes, id)
	f.mu.Unlock()
	return seq, nil
}

// waitApplied polls partition p's checkpoint until it covers seq and returns when it saw it.
func (f *failoverRun) waitApplied(ctx context.Context, p int, seq uint64, within time.Duration) (time.Time, error) {
	name := projection.CheckpointName(f.r.stack.ProjectorGroup, p)
	deadline := time.Now().Add(within)
	for {
		cp, err := projection.ReadCheckpoint(ctx, f.r.stack.Neo4j, f.r.stack.Neo4jDB, name)
		now := time.Now()
		if err == nil && cp >= seq {
			return now, nil
		}
		if ctx.Err() != nil {
			return now, ctx.Err()
		}
		if now.After(deadline) {
			return now, fmt.Errorf("partition %d: checkpoint %s at %d, probe at %d not applied within %s (last error: %v)", p, name, cp, seq, within, err)
		}
		sleepCtx(ctx, 10*time.Millisecond)
	}
}

// waitCaughtUp waits until every partition's checkpoint covers the partition's last event in
// the stream now.
func (f *failoverRun) waitCaughtUp(ctx context.Context, within time.Duration) error {
	s, err := f.r.stack.JS.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return err
	}
	heads := map[int]uint64{}
	for p := range natsdeploy.Partitions {
		m, err := s.GetLastMsgForSubject(ctx, fmt.Sprintf("%s.*.*.%d", events.SubjectRoot, p))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("last event of partition %d: %w", p, err)
		}
		heads[p] = m.Sequence
	}
	deadline := time.Now().Add(within)
	for {
		ckpt, err := f.r.checkpoints(ctx, f.r.stack.ProjectorGroup)
		if err != nil {
			return err
		}
		behind := 0
		for p, h := range heads {
			if ckpt[p] < h {
				behind++
			}
		}
		if behind == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d partitions not caught up with the stream within %s", behind, within)
		}
		sleepCtx(ctx, 100*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// holder returns the process holding partition p: the one whose partition_active metric says
// so (of two, the one that committed the partition's later checkpoint). When neither does, the
// partition gets an event and the driver looks again once it is applied.
func (f *failoverRun) holder(ctx context.Context, p int) (*Process, error) {
	for range 3 {
		var best *Process
		bestSeq := -1.0
		for _, proc := range f.procs {
			if proc.Pid() == 0 {
				continue
			}
			m, err := scrapePartitions(ctx, proc.URL+"/metrics", "engram_projector_partition_active", "engram_projector_checkpoint_sequence")
			if err != nil {
				f.r.log.Warn("failover: metrics not read", "process", proc.Name, "err", err)
				continue
			}
			if m["engram_projector_partition_active"][p] == 1 && m["engram_projector_checkpoint_sequence"][p] > bestSeq {
				best, bestSeq = proc, m["engram_projector_checkpoint_sequence"][p]
			}
		}
		if best != nil {
			return best, nil
		}
		seq, err := f.probe(ctx, p)
		if err != nil {
			return nil, err
		}
		if _, err := f.waitApplied(ctx, p, seq, failoverWait); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("partition %d: no projector reports it active, though its events are applied", p)
}

// waitCompeting waits until both processes pull on every partition (two pull requests
// waiting on each consumer: the holder's and the other's), at most within.
func (f *failoverRun) waitCompeting(ctx context.Context, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for p := range natsdeploy.Partitions {
			c, err := f.r.stack.JS.Consumer(ctx, stream.MemoryStream, projection.CheckpointName(f.r.stack.ProjectorGroup, p))
			if err != nil {
				all = false
				break
			}
			info, err := c.Info(ctx)
			if err != nil || info.NumWaiting < 2 {
				all = false
				break
			}
		}
		if all {
			return true
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
	return false
}

// killHolders runs the rounds with two projectors and returns their row.
func (f *failoverRun) killHolders(ctx context.Context) (Result, error) {
	r := f.r
	var lat Latencies
	var notCompeting int
	for i := range r.cfg.FailoverKills {
		p := i % natsdeploy.Partitions
		victim, err := f.holder(ctx, p)
		if err != nil {
			return Result{}, err
		}
		t0 := time.Now()
		victim.kill()
		seq, err := f.probe(ctx, p)
		if err != nil {
			return Result{}, err
		}
		at, err := f.waitApplied(ctx, p, seq, failoverWait)
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		if err != nil {
			lat.Fail(err)
		} else {
			lat.Add(at.Sub(t0))
			f.series.Points = append(f.series.Points, Point{T: t0.Sub(f.started).Seconds(), Value: ms(at.Sub(t0))})
		}
		r.log.Info("failover kill", "round", i+1, "partition", p, "killed", victim.Name, "applied_after", at.Sub(t0).Round(time.Millisecond), "err", err)
		// Back as a competitor before the next round.
		if err := victim.start(ctx, 2*time.Minute); err != nil {
			return Result{}, fmt.Errorf("restart %s after kill %d: %w", victim.Name, i+1, err)
		}
		f.notePID(victim)
		if !f.waitCompeting(ctx, 15*time.Second) {
			notCompeting++
		}
		sleepCtx(ctx, failoverSettle)
	}
	s := lat.Summary()
	res := latencyResult(ScenarioFailover, fmt.Sprintf("two projectors: SIGKILL of the holder → applied (%d kills)", r.cfg.FailoverKills), "ms", ms(s.P99), s)
	res.Target = fmt.Sprintf("p99 ≤ %s", targetFailoverP99)
	res.Status = met(s.Count == r.cfg.FailoverKills && s.Errors == 0 && s.P99 <= targetFailoverP99)
	pin := projection.DefaultPinTimeout.String()
	if v := os.Getenv("PROJECTOR_PIN_TIMEOUT"); v != "" { // the subprocesses inherit it
		pin = v
	}
	res = withNote(res, fmt.Sprintf("value is p99; max %s; from the SIGKILL of the process holding the partition (its partition_active metric) to the partition's checkpoint covering a probe published right after the kill; pin timeout %s; background load %d events/s of the mix; the killed process restarted and competing for %s before the next kill; distribution (ms, sorted): %s",
		fmtMS(s.Max), pin, failoverLoad, failoverSettle, distribution(&lat)))
	if notCompeting > 0 {
		res = withNote(res, fmt.Sprintf("after %d restarts the two processes were not both seen pulling on every partition within 15 s", notCompeting))
	}
	return res, nil
}

// restartSingle runs the rounds with one projector: it stops the second (gracefully), then
// SIGKILLs the first, publishes a probe and restarts it at once. It returns the kill→applied
// and the ready→applied rows.
func (f *failoverRun) restartSingle(ctx context.Context) (Result, Result, error) {
	r := f.r
	if err := f.procs[1].stop(); err != nil {
		return Result{}, Result{}, err
	}
	proc := f.procs[0]
	var fromKill, fromReady, starts Latencies
	for i := range r.cfg.FailoverRestarts {
		p := i % natsdeploy.Partitions
		t0 := time.Now()
		proc.kill()
		seq, err := f.probe(ctx, p)
		if err != nil {
			return Result{}, Result{}, err
		}
		spawned := time.Now()
		if err := proc.start(ctx, 2*time.Minute); err != nil {
			return Result{}, Result{}, fmt.Errorf("restart %s after kill %d: %w", proc.Name, i+1, err)
		}
		ready := time.Now()
		f.notePID(proc)
		starts.Add(ready.Sub(spawned))
		at, err := f.waitApplied(ctx, p, seq, failoverWait)
		if ctx.Err() != nil {
			return Result{}, Result{}, ctx.Err()
		}
		if err != nil {
			fromKill.Fail(err)
			fromReady.Fail(err)
		} else {
			fromKill.Add(at.Sub(t0))
			fromReady.Add(max(0, at.Sub(ready)))
		}
		r.log.Info("single projector restart", "round", i+1, "partition", p, "ready_after", ready.Sub(spawned).Round(time.Millisecond),
			"applied_after_kill", at.Sub(t0).Round(time.Millisecond), "err", err)
	}
	n := r.cfg.FailoverRestarts
	ks, rs, ss := fromKill.Summary(), fromReady.Summary(), starts.Summary()
	kill := latencyResult(ScenarioFailover, fmt.Sprintf("single projector: SIGKILL → applied (%d restarts)", n), "ms", ms(ks.P99), ks)
	kill = withNote(kill, fmt.Sprintf("value is p99; max %s; one projector SIGKILLed, a probe published, the projector started again at once; includes its start-up (process start to /readyz: p50 %s, max %s); distribution (ms, sorted): %s",
		fmtMS(ks.Max), fmtMS(ss.P50), fmtMS(ss.Max), distribution(&fromKill)))
	ready := latencyResult(ScenarioFailover, fmt.Sprintf("single projector: ready → applied (%d restarts)", n), "ms", ms(rs.P99), rs)
	ready = withNote(ready, fmt.Sprintf("value is p99; max %s; from the restarted projector's /readyz answering 200 to the probe applied (0 when applied before); distribution (ms, sorted): %s",
		fmtMS(rs.Max), distribution(&fromReady)))
	return kill, ready, nil
}

// notePID records a restarted process's new pid in the report, so that the check that nothing
// outlives the run covers its last life.
func (f *failoverRun) notePID(p *Process) {
	for i := range f.r.report.Processes {
		if f.r.report.Processes[i].Name == p.Name {
			f.r.report.Processes[i].PID = p.Pid()
		}
	}
}

// distribution lists a step's samples, sorted, in whole milliseconds.
func distribution(l *Latencies) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := slices.Clone(l.samples)
	slices.Sort(s)
	out := make([]string, len(s))
	for i, d := range s {
		out[i] = fmt.Sprintf("%.0f", ms(d))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.0f ms", ms(d)) }

// The exactly-once check's reads: per owner, the nodes each kind of event creates; the probes'
// preferences; every conversation's message chain.
const (
	failoverCounts = `
UNWIND $owners AS o
RETURN o AS owner,
  COUNT { (:Message {owner: o}) } AS messages,
  COUNT { (:Preference {owner: o}) } AS preferences,
  COUNT { (:ReasoningTrace {owner: o}) } AS traces,
  COUNT { (:ReasoningStep {owner: o}) } AS steps,
  COUNT { (:ToolCall {owner: o}) } AS calls`
	failoverProbes = `
UNWIND $ids AS id
RETURN id, COUNT { (:Preference {id: id}) } AS n`
	failoverChains = `
UNWIND $owners AS o
MATCH (c:Conversation {owner: o})
OPTIONAL MATCH (c)-[:FIRST_MESSAGE]->(f:Message)
RETURN c.id AS conv, f.id AS first,
  [(c)-[:HAS_MESSAGE]->(m:Message) | [m.id, [(m)-[:NEXT_MESSAGE]->(n:Message) | n.id]]] AS links`
)

// nodeCounts is what the events of one owner create.
type nodeCounts struct{ messages, preferences, traces, steps, calls int64 }

// verify waits until every event of the scenario is applied and checks that each was applied
// exactly once and in per-tenant order, and returns the check's row.
func (f *failoverRun) verify(ctx context.Context, dlqBefore uint64) Result {
	f.mu.Lock()
	evs := slices.Clone(f.events)
	probes := slices.Clone(f.probes)
	lost := f.lost
	f.mu.Unlock()
	slices.SortFunc(evs, func(a, b published) int { return cmp.Compare(a.seq, b.seq) })
	res := Result{Scenario: ScenarioFailover, Variant: "exactly once, in per-tenant order", Metric: "events",
		Value: float64(len(evs)), Count: len(evs), Target: "every event applied once, in stored order"}
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	finish := func(done string) Result {
		res.Errors = len(problems)
		if len(problems) == 0 {
			res.Status = StatusMet
			return withNote(res, done)
		}
		res.Status = StatusError
		if len(problems) > 5 {
			problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
		}
		return withNote(res, "FAILED: "+strings.Join(problems, "; "))
	}
	if lost > 0 {
		fail("%d publications unconfirmed", lost)
	}
	t0 := time.Now()
	if err := f.waitCaughtUp(ctx, 5*time.Minute); err != nil {
		fail("not caught up: %v", err)
		return finish("")
	}
	f.r.log.Debug("failover: caught up", "elapsed", time.Since(t0).Round(time.Millisecond))
	if n, err := streamMsgs(ctx, f.r.stack.JS, stream.DeadLetterStream); err != nil {
		fail("dead-letter stream: %v", err)
	} else if n > dlqBefore {
		fail("%d events dead-lettered during the scenario", n-dlqBefore)
	}

	// What the events should have created, per owner, and each conversation's messages in
	// stored order.
	want := map[string]*nodeCounts{}
	chains := map[string][]string{}
	perUser := map[string]int{}
	for _, p := range evs {
		perUser[p.ev.User]++
		tok, _ := events.TenantToken(p.ev.User)
		c := want[tok]
		if c == nil {
			c = &nodeCounts{}
			want[tok] = c
		}
		switch d := p.ev.Data.(type) {
		case events.MessageAdded:
			c.messages++
			chains[d.ConversationID] = append(chains[d.ConversationID], d.MessageID)
		case events.PreferenceAdded:
			c.preferences++
		case events.TraceStarted:
			c.traces++
		case events.TraceStepAdded:
			c.steps++
		case events.ToolCallRecorded:
			c.calls++
		}
	}
	owners := make([]any, 0, len(want))
	for tok := range want {
		owners = append(owners, tok)
	}
	q := func(cypher string, params map[string]any) ([]*neo4j.Record, error) {
		res, err := neo4j.ExecuteQuery(ctx, f.r.stack.Neo4j, cypher, params, neo4j.EagerResultTransformer,
			neo4j.ExecuteQueryWithDatabase(f.r.stack.Neo4jDB), neo4j.ExecuteQueryWithReadersRouting())
		if err != nil {
			return nil, err
		}
		return res.Records, nil
	}
	if recs, err := q(failoverCounts, map[string]any{"owners": owners}); err != nil {
		fail("count nodes: %v", err)
	} else {
		for _, rec := range recs {
			tok, _ := rec.Get("owner")
			get := func(k string) int64 { v, _ := rec.Get(k); n, _ := v.(int64); return n }
			got := nodeCounts{get("messages"), get("preferences"), get("traces"), get("steps"), get("calls")}
			if w := want[tok.(string)]; got != *w {
				fail("owner %s: %+v in the graph, %+v published", tok, got, *w)
			}
		}
	}
	probeIDs := make([]any, len(probes))
	for i, id := range probes {
		probeIDs[i] = id
	}
	if recs, err := q(failoverProbes, map[string]any{"ids": probeIDs}); err != nil {
		fail("count probes: %v", err)
	} else {
		for _, rec := range recs {
			id, _ := rec.Get("id")
			n, _ := rec.Get("n")
			if n != int64(1) {
				fail("probe preference %s: %v nodes", id, n)
			}
		}
	}
	if recs, err := q(failoverChains, map[string]any{"owners": owners}); err != nil {
		fail("read message chains: %v", err)
	} else {
		if len(recs) != len(chains) {
			fail("%d conversations in the graph, %d published", len(recs), len(chains))
		}
		for _, rec := range recs {
			conv, _ := rec.Get("conv")
			if got, w := chainOf(rec), chains[conv.(string)]; !slices.Equal(got, w) {
				fail("conversation %s: chain of %d messages in the graph differs from the %d stored", conv, len(got), len(w))
			}
		}
	}
	f.r.log.Debug("failover: counts and chains checked", "elapsed", time.Since(t0).Round(time.Millisecond))
	if err := f.compareWithReplay(ctx, perUser, owners); err != nil {
		fail("%v", err)
	}
	f.r.log.Debug("failover: compared with a replay", "elapsed", time.Since(t0).Round(time.Millisecond))
	return finish(fmt.Sprintf("%d events of %d tenants (%d probes) checked after the kills: the nodes each tenant's events create counted against what was published, every probe once, every conversation's NEXT_MESSAGE chain in stored order, no dead letter, and the tenants' graph equal (internal/fingerprint) to a per-tenant replay of their events (memctl replay --user)",
		len(evs), len(want), len(probes)))
}

// chainOf follows a conversation's FIRST_MESSAGE and NEXT_MESSAGE links; a fork or a loop ends
// it with a marker, so it cannot equal a stored order.
func chainOf(rec *neo4j.Record) []string {
	first, _ := rec.Get("first")
	links, _ := rec.Get("links")
	next := map[string][]string{}
	ls, _ := links.([]any)
	for _, l := range ls {
		pair, _ := l.([]any)
		if len(pair) != 2 {
			continue
		}
		id, _ := pair[0].(string)
		ns, _ := pair[1].([]any)
		for _, n := range ns {
			s, _ := n.(string)
			next[id] = append(next[id], s)
		}
	}
	cur, ok := first.(string)
	if !ok {
		return nil
	}
	out := []string{cur}
	for len(out) <= len(ls) {
		switch ns := next[cur]; len(ns) {
		case 0:
			return out
		case 1:
			cur = ns[0]
			out = append(out, cur)
		default:
			return append(out, "fork")
		}
	}
	return append(out, "loop")
}

// compareWithReplay fingerprints the tenants' graph (with the scenario's Tool nodes), replays
// each tenant from the stream (which deletes its subgraph first), and compares: the projection
// that went through the kills must equal one that applied every event once, in stored order.
func (f *failoverRun) compareWithReplay(ctx context.Context, perUser map[string]int, owners []any) error {
	sc := fingerprint.Scope{Tools: f.tools}
	for _, o := range owners {
		sc.Owners = append(sc.Owners, o.(string))
	}
	before, err := fingerprint.Of(ctx, f.r.stack.Neo4j, f.r.stack.Neo4jDB, sc)
	if err != nil {
		return err
	}
	known, err := consumerNames(ctx, f.r.stack.JS)
	if err != nil {
		return err
	}
	// replay.Run reads through ordered consumers the server removes only after a while; the
	// scenario removes them at once.
	defer func() {
		after, _ := consumerNames(context.Background(), f.r.stack.JS)
		for name := range after {
			if !known[name] && !strings.HasPrefix(name, f.r.stack.ProjectorGroup+"-") {
				_ = f.r.stack.JS.DeleteConsumer(context.Background(), stream.MemoryStream, name)
			}
		}
	}()
	users := slices.Sorted(maps.Keys(perUser))
	for _, u := range users {
		// One batch of all the tenant's events: the replay's fetch then returns as soon as it
		// has them, instead of waiting out its expiry for a batch that never fills.
		if _, err := replay.Run(ctx, f.r.stack.Neo4j, f.r.stack.JS, replay.Options{
			User: u, Group: f.r.tenants.GroupPrefix(groupFailover) + "-verify", LiveGroup: f.r.stack.ProjectorGroup,
			Force: true, BatchSize: max(1, perUser[u]), MultiTenant: true, Database: f.r.stack.Neo4jDB,
		}); err != nil {
			return fmt.Errorf("replay %s: %w", u, err)
		}
	}
	after, err := fingerprint.Of(ctx, f.r.stack.Neo4j, f.r.stack.Neo4jDB, sc)
	if err != nil {
		return err
	}
	if err := fingerprint.Compare(after, before, 10); err != nil {
		f.r.log.Error("failover: the graph after the kills differs from a per-tenant replay (a: replayed, b: after the kills)", "diff", err)
		return fmt.Errorf("the graph after the kills (%s) differs from a per-tenant replay (%s); the differences are in the driver's log", before, after)
	}
	return nil
}

// scrapePartitions reads the named per-partition metrics of a Prometheus text endpoint:
// metric -> partition -> value.
func scrapePartitions(ctx context.Context, url string, names ...string) (map[string]map[int]float64, error) {
	lines, err := scrapeLines(ctx, url)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int]float64{}
	for _, n := range names {
		out[n] = map[int]float64{}
	}
	for _, l := range lines {
		name, rest, ok := strings.Cut(l, "{")
		if !ok || out[name] == nil {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		var p int
		var v float64
		for _, kv := range strings.Split(labels, ",") {
			if k, pv, _ := strings.Cut(kv, "="); k == "partition" {
				if _, err := fmt.Sscanf(strings.Trim(pv, `"`), "%d", &p); err != nil {
					continue
				}
				if _, err := fmt.Sscanf(value, "%g", &v); err == nil {
					out[name][p] = v
				}
			}
		}
	}
	return out, nil
}

// scrapeLines returns the sample lines of a Prometheus text endpoint.
func scrapeLines(ctx context.Context, url string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, clip(string(b), 200))
	}
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}
