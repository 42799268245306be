package projection

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// Group commit. A process runs at most PROJECTOR_IN_FLIGHT transactions at once over all its
// partitions, and the partitions whose steps are ready when a transaction can start share it:
// their checkpoints are locked in one statement, their events applied in one Apply, their
// checkpoints written in one statement, one commit. On two cores, eight partitions each
// running a transaction of a few events spent most of the machine on what every transaction
// costs whatever its size (round trips, planning look-ups, the commit and its log force), and
// each transaction took several times as long as it does alone (issue 11: 226 ms for 14
// events with seven partitions busy at once). Combined, the events of all partitions share
// those costs, and a partition's step waits at most for the transaction in flight.
//
// It changes nothing the projection promises. Each partition's checkpoint moves in the
// transaction of its effects, as before; a transaction that fails leaves every partition in
// it where it was; the partitions' tenants share no node but the Tool aggregates, whose
// updates commute, so applying partitions' events in one batch gives the graph their separate
// transactions give (Apply's contract holds for any batch in each tenant's stored order).
// Checkpoints are locked in name order and Tools (Apply's last statement) in name order
// after them, so concurrent transactions, of this process or another holding a partition for
// a moment during a failover, queue instead of deadlocking.
//
// A combined transaction that Neo4j refuses for an event's data (or that panics) is run again
// partition by partition: only the partition whose event is at fault then sees the refusal
// and isolates the event (worker.process), and the others are applied. A step that isolates
// (one event) always runs alone.

// The commit interval. With one transaction in flight and no wait, a transaction started as
// soon as the one before it committed, carrying what had arrived meanwhile: at 500 offered
// events/s on two cores, 90–120 transactions a second of 4–6 events each. What a transaction
// costs Neo4j whatever its size — the commit and its log force, a refresh of each full-text
// index it touched (eventually consistent indexes refresh once per transaction, docs/
// projector.md), its round trips — was then most of Neo4j's CPU: 2.0 ms per offered write,
// half the machine, and everything else waited for the cores (ack→visible p99 52–118 ms). The
// interval spaces the starts of transactions (PROJECTOR_COMMIT_INTERVAL, 20 ms): a step that
// finds the last transaction started longer ago starts at once — so an idle projector applies
// an event without a wait, and one that has work only now and then never waits — while under
// load the steps ready within the interval, and the events that arrive meanwhile (each step's
// topUp), share one transaction. At 500/s that halved the transactions and cut Neo4j's CPU by
// 21–42 % with the read-your-writes tail unchanged within the noise (docs/BENCHMARKS.md,
// "Issue 11, session 18"). A transaction that takes longer than the interval is followed at
// once, as before: at 2000/s the interval changes nothing.

// committer runs the process's steps, combining those ready at once.
type committer struct {
	slots    chan struct{} // one per transaction in flight
	interval time.Duration // least time between the starts of two transactions
	log      *slog.Logger
	commit   func(context.Context, []*stepMember) error // commitSteps; tests replace it
	pause    func(context.Context, time.Duration) bool  // waits out the interval (sleep); tests replace it

	mu        sync.Mutex
	queue     []*stepRequest
	nextStart time.Time // the earliest start of the next transaction
}

func newCommitter(inFlight int, interval time.Duration, log *slog.Logger) *committer {
	return &committer{slots: make(chan struct{}, inFlight), interval: interval, log: log, commit: commitSteps, pause: sleep}
}

// space waits, holding a transaction slot, until the interval since the start of the last
// transaction has passed, and books the start of this one. With several slots each start is
// booked in turn, so the starts stay an interval apart.
func (c *committer) space(ctx context.Context) {
	if c.interval <= 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	start := c.nextStart
	if start.Before(now) {
		start = now
	}
	c.nextStart = start.Add(c.interval)
	c.mu.Unlock()
	if wait := start.Sub(now); wait > 0 {
		c.pause(ctx, wait) // ends early when ctx does
	}
}

// stepRequest is a worker's step waiting to run.
type stepRequest struct {
	member stepMember
	solo   bool            // run alone (isolating an event)
	topUp  func()          // takes what arrived meanwhile into the worker's batch
	done   chan stepResult // buffered: the result, once
}

type stepResult struct {
	plan *stepPlan
	st   stepStats
	err  error
}

// step runs a step of w over at most limit events, alone or with the steps of other
// partitions ready at the same time, and returns when it is committed or has failed. The
// worker that takes a free transaction slot runs every step queued at that moment, its own
// included if no other has taken it; the workers are blocked in step meanwhile, so their
// state is the running worker's to read.
func (c *committer) step(ctx context.Context, w *worker, limit int, topUp func()) (*stepPlan, stepStats, error) {
	req := &stepRequest{member: stepMember{w: w, limit: limit}, solo: limit == 1, topUp: topUp, done: make(chan stepResult, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, req)
	c.mu.Unlock()
	for {
		select {
		case r := <-req.done:
			return r.plan, r.st, r.err
		default:
		}
		select {
		case r := <-req.done:
			return r.plan, r.st, r.err
		case c.slots <- struct{}{}:
			c.lead(ctx)
			<-c.slots
		case <-ctx.Done():
			if c.withdraw(req) {
				return nil, stepStats{}, ctx.Err()
			}
			r := <-req.done // a running worker took it: its result comes
			return r.plan, r.st, r.err
		}
	}
}

// withdraw removes req from the queue; false when a running worker took it already.
func (c *committer) withdraw(req *stepRequest) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.queue {
		if r == req {
			c.queue = slices.Delete(c.queue, i, i+1)
			return true
		}
	}
	return false
}

// lead runs every queued step, once the commit interval since the last transaction's start
// has passed (unless every step isolates an event): those that must run alone one by one, the
// others in one transaction.
func (c *committer) lead(ctx context.Context) {
	// Steps that isolate an event (one event per transaction, after Neo4j refused a batch) are
	// not spaced: isolating a batch of 500 would take 10 s of waits.
	c.mu.Lock()
	spaced := slices.ContainsFunc(c.queue, func(r *stepRequest) bool { return !r.solo })
	c.mu.Unlock()
	if spaced {
		c.space(ctx)
	}
	c.mu.Lock()
	queued := c.queue
	c.queue = nil
	c.mu.Unlock()
	var group []*stepRequest
	for _, r := range queued {
		if r.solo {
			c.runAlone(ctx, r)
			continue
		}
		group = append(group, r)
	}
	switch len(group) {
	case 0:
		return
	case 1:
		c.runAlone(ctx, group[0])
		return
	}
	members := make([]*stepMember, len(group))
	for i, r := range group {
		r.topUp()
		members[i] = &r.member
	}
	err := c.commitRecovering(ctx, members)
	if err != nil && (isRejection(err) || errors.Is(err, errPanicked)) {
		// An event's fault, but whose is not known: each partition alone.
		c.log.Info("neo4j refused a combined transaction, applying its partitions one by one", "partitions", len(group), "err", err)
		for _, r := range group {
			r.member.plan, r.member.st = nil, stepStats{}
			c.runAlone(ctx, r)
		}
		return
	}
	for _, r := range group {
		r.done <- stepResult{plan: r.member.plan, st: r.member.st, err: err}
	}
}

// runAlone runs one step in a transaction of its own.
func (c *committer) runAlone(ctx context.Context, r *stepRequest) {
	r.topUp()
	m := &r.member
	err := c.commitRecovering(ctx, []*stepMember{m})
	if errors.Is(err, errPanicked) {
		err = errors.Join(errRejectedByGraph, err)
	}
	r.done <- stepResult{plan: m.plan, st: m.st, err: err}
}

// commitRecovering is commitSteps with a panic turned into an error (errPanicked): the steps
// of other workers run in this goroutine, and their panics must reach them, not stop the
// process.
func (c *committer) commitRecovering(ctx context.Context, members []*stepMember) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("batch panicked", "panic", r, "stack", string(debug.Stack()))
			err = errors.Join(errPanicked, fmt.Errorf("panic: %v", r))
		}
	}()
	return c.commit(ctx, members)
}

// stepMember is one partition's part of a transaction: its worker and the most events it
// applies; commitSteps fills in what it planned and did.
type stepMember struct {
	w     *worker
	limit int
	plan  *stepPlan
	st    stepStats
}

// commitSteps runs one transaction over the steps of members, each of another partition of
// this process: lock their checkpoints, plan each (drop what its checkpoint covers, close
// gaps from the stream), dead-letter what cannot be applied, apply the rest in one Apply,
// move the checkpoints, commit. It changes no worker state; worker.finish does, after the
// commit. On an error the transaction is rolled back and the plans made are kept in the
// members (a lone step's plan drives the isolation of its events).
func commitSteps(ctx context.Context, members []*stepMember) error {
	began := time.Now()
	slices.SortFunc(members, func(a, b *stepMember) int { return cmp.Compare(a.w.consumer, b.w.consumer) })
	first := members[0].w // the workers of a process share the driver, warm-up and dead letters
	if err := first.warm.ensure(ctx); err != nil {
		return errors.Join(errWarmUp, err)
	}
	sess := first.driver.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite, DatabaseName: first.database})
	defer func() { _ = sess.Close(context.WithoutCancel(ctx)) }()
	tx, err := sess.BeginTransaction(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() { _ = tx.Close(context.WithoutCancel(ctx)) }()

	locks := make([]checkpointLock, len(members))
	for i, m := range members {
		locks[i] = checkpointLock{name: m.w.consumer, partition: m.w.partition}
	}
	var records []Record
	var byEntry map[uint64]*stepMember // stream sequence → its partition's member
	var entryOf map[uint64]*entry
	var letters map[*stepMember][]DeadLetter
	applying := 0
	// plan plans every member's step from its checkpoint cps[i].
	plan := func(cps []uint64) error {
		records, applying = nil, 0
		byEntry, entryOf, letters = map[uint64]*stepMember{}, map[uint64]*entry{}, map[*stepMember][]DeadLetter{}
		for i, m := range members {
			p, err := m.w.planStep(ctx, cps[i], m.limit)
			m.plan = p
			if err != nil {
				return err
			}
			if err := m.w.markRefused(ctx, cps[i], p); err != nil {
				return err
			}
			m.st = stepStats{skipped: len(p.done)}
			applying += len(p.apply)
			for _, e := range p.apply {
				if e.msg == nil {
					m.st.gapFilled++
				}
				byEntry[e.seq], entryOf[e.seq] = m, e
				if e.refused {
					m.st.refused++ // acknowledged with the step; no dead letter keeps it
					continue
				}
				if e.rejection != nil && e.rejection.Reason == ReasonShredded {
					m.st.refused++ // its key destroyed with the user's erasure: no dead letter either
					continue
				}
				if e.rejection != nil {
					letters[m] = append(letters[m], e.deadLetter(nil))
					continue
				}
				records = append(records, e.record)
			}
		}
		return nil
	}
	pre, moved, err := lockAndPlan(ctx, tx, members, locks, plan, func() []Record { return records })
	if err != nil {
		return err
	}
	if applying == 0 {
		return tx.Commit(ctx)
	}
	out, err := applyPrefetched(ctx, tx, records, pre)
	if err != nil {
		return err
	}
	status := map[uint64]bool{} // sequences that wrote nothing
	for _, rej := range out.Rejected {
		m := byEntry[rej.Sequence]
		letters[m] = append(letters[m], entryOf[rej.Sequence].deadLetter(rej))
		status[rej.Sequence] = true
	}
	for _, seq := range out.DuplicateSequences {
		byEntry[seq].st.duplicates++
		status[seq] = true
	}
	for _, r := range records {
		if !status[r.Sequence] {
			m := byEntry[r.Sequence]
			if m.st.applied == nil {
				m.st.applied = map[events.Kind]int{}
			}
			m.st.applied[r.Event.Kind]++
		}
	}
	if err := purgeErased(ctx, first, records, status, letters); err != nil {
		return err
	}
	var writes []checkpointWrite
	for _, m := range members {
		m.st.deadLettered = map[Reason]int{}
		for _, d := range letters[m] {
			// Inside the transaction: if it fails, the dead letters are sent again (their
			// message ids make JetStream store each once within its duplicate window).
			if err := m.w.dlq.Send(ctx, d); err != nil {
				return err
			}
			m.st.deadLettered[d.Reason]++
			// The kind and partition, not the subject: a stored subject names the tenant, and
			// the log keeps no identifier or token at info level (the dead letter has them).
			kind, partition := subjectKind(d.Subject)
			m.w.log.Warn("event dead-lettered", "seq", d.Sequence, "kind", kind, "partition", partition, "reason", d.Reason)
		}
		if n := len(m.plan.apply); n > 0 {
			last := m.plan.apply[n-1]
			writes = append(writes, checkpointWrite{name: m.w.consumer, seq: last.seq, updated: last.stored})
		}
	}
	if !moved {
		if err := writeCheckpoints(ctx, tx, writes); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for _, m := range members {
		if len(m.plan.apply) > 0 {
			m.w.announce(m.plan.last)
		}
	}
	committed := time.Now()
	for _, m := range members {
		m.w.observeCommitted(committed, m.plan.apply)
	}
	if first.metrics != nil {
		first.metrics.Partitions.Observe(float64(len(members)))
	}
	for _, m := range members {
		if n := len(m.plan.apply); n > 0 {
			m.st.entries = n
			m.st.checkpoint = m.plan.last
			m.w.log.Debug("batch committed", "first", m.plan.apply[0].seq, "last", m.plan.last, "events", n,
				"skipped", len(m.plan.done), "partitions", len(members), "events_in_transaction", applying, "elapsed", time.Since(began))
		}
	}
	return nil
}

// lockAndPlan locks the members' checkpoints and plans their steps (plan; records then
// returns what the plans apply). When every member's worker knows where its checkpoint stood
// after its last commit (the common case: one process holds a partition for a long time),
// the plans are made from there before the lock, and one statement locks the checkpoints,
// moves them to where the plans end, and looks up the first segment of the records
// (lockAndLookup): moved is true and pre answers Apply's first look-up. A checkpoint found
// elsewhere (another process applied the partition meanwhile, or this one's step failed
// after a commit it did not see) moves nothing and the steps are planned again from the
// checkpoints found, as without a plan: pre is nil and the checkpoints are written after the
// effects. Either way the step applies every event after the checkpoint it locked, once.
func lockAndPlan(ctx context.Context, tx neo4j.ManagedTransaction, members []*stepMember, locks []checkpointLock,
	plan func(cps []uint64) error, records func() []Record) (pre *prefetched, moved bool, err error) {
	expected := make([]uint64, len(members))
	known := true
	for i, m := range members {
		expected[i], known = m.w.committedAt()
		if !known {
			break
		}
	}
	if !known {
		cps, err := lockCheckpoints(ctx, tx, locks)
		if err != nil {
			return nil, false, err
		}
		return nil, false, plan(cps)
	}
	if err := plan(expected); err != nil {
		return nil, false, err
	}
	spec := make([]speculativeLock, len(members))
	for i, m := range members {
		spec[i] = speculativeLock{checkpointLock: locks[i], expected: expected[i]}
		if n := len(m.plan.apply); n > 0 {
			last := m.plan.apply[n-1]
			spec[i].move, spec[i].seq, spec[i].updated = true, last.seq, last.stored
		}
	}
	keys, err := segmentKeys(firstSegment(records()))
	if err != nil {
		keys = &lookupKeys{} // Apply's own look-up meets the error
	}
	cps, st, err := lockAndLookup(ctx, tx, spec, keys)
	if err != nil {
		return nil, false, err
	}
	if slices.Equal(cps, expected) {
		return &prefetched{keys: keys, st: st}, true, nil
	}
	members[0].w.log.Debug("a checkpoint moved since this process last committed it; planning again", "partitions", len(members))
	return nil, false, plan(cps)
}

// purgeErased keeps the dead letters of an erased user from outliving the erasure. For every
// tombstone the step applies, it purges the tenant's dead letters (those earlier steps wrote
// after the ingestor's purge: the projector had fetched the events already), and drops from
// letters the tenant's events stored before the tombstone, so they are never written. The
// tenant's events after the tombstone are dropped before this (erased.go), or follow a
// re-creation and keep their dead letters. It runs inside the transaction, before the letters are sent: a step that fails
// after it runs it again, and purging twice is purging once.
func purgeErased(ctx context.Context, w *worker, records []Record, wroteNothing map[uint64]bool, letters map[*stepMember][]DeadLetter) error {
	tombstones := map[string]uint64{} // tenant token → the last tombstone's sequence
	for _, r := range records {
		if r.Event.Kind != events.KindUserErased || wroteNothing[r.Sequence] {
			continue
		}
		if err := w.dlq.PurgeTenant(ctx, r.Event.User); err != nil {
			return fmt.Errorf("purge the dead letters of an erased tenant: %w", err)
		}
		if token, _, err := events.ParseSubject(r.Subject); err == nil {
			tombstones[token] = max(tombstones[token], r.Sequence)
		}
	}
	if len(tombstones) == 0 {
		return nil
	}
	dropped := 0
	for m, ds := range letters {
		kept := ds[:0]
		for _, d := range ds {
			if token, _, err := events.ParseSubject(d.Subject); err == nil && d.Sequence < tombstones[token] {
				dropped++
				continue
			}
			kept = append(kept, d)
		}
		letters[m] = kept
	}
	if dropped > 0 {
		// No identifier or token in the log: the tenant is gone.
		w.log.Info("dead letters of an erased tenant not written", "count", dropped)
	}
	return nil
}

// subjectKind returns the kind and partition of a stored subject (mem.<token>.<kind>.<p>),
// "" for what is not one: what a log line may say of an event without naming its tenant.
func subjectKind(subject string) (kind, partition string) {
	parts := strings.Split(subject, ".")
	if len(parts) == 4 {
		return parts[2], parts[3]
	}
	return "", ""
}
