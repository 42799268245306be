package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/stream"
)

// entry is one event of a partition on its way to the graph: delivered by the partition's
// consumer, or read straight from the stream to close a gap.
type entry struct {
	seq     uint64
	subject string
	stored  time.Time
	header  nats.Header
	data    []byte

	msg   jetstream.Msg // nil for an event read from the stream
	dseq  uint64        // consumer delivery sequence
	fresh bool          // first delivery
	// after, when non-zero, is the partition's event just before this one: known when this
	// delivery directly followed the delivery of that event (see receive).
	after uint64

	record    Record
	rejection *Rejection // set when the event cannot be applied
	refused   bool       // stored after its tenant's erasure: dropped (erased.go)
}

// deadLetter is the dead letter of the event for rej (its own rejection when nil).
func (e *entry) deadLetter(rej *Rejection) DeadLetter {
	if rej == nil {
		rej = e.rejection
	}
	return DeadLetter{Subject: e.subject, Sequence: e.seq, Stored: e.stored, Header: e.header, Data: e.data,
		Reason: rej.Reason, Err: rej.Err}
}

// worker applies one partition: it pulls from the partition's durable consumer (pinned to one
// process at a time), batches what arrives, and applies each batch in one transaction that
// also moves the partition's checkpoint.
type worker struct {
	partition  int
	consumer   string // durable name, also the checkpoint name
	filter     string // mem.*.*.<partition>
	cfg        Config
	group      string // the consumer's priority group
	js         jetstream.JetStream
	ccfg       jetstream.ConsumerConfig
	cons       jetstream.Consumer
	stream     jetstream.Stream
	driver     neo4j.DriverWithContext
	database   string
	dlq        *DeadLetters
	warm       *warmer
	metrics    *Metrics
	progress   *lagCollector
	committer  *committer // the process's group commit (nil: each step its own transaction)
	in         *inbox     // the current iterator's deliveries
	log        *slog.Logger
	multiUser  bool
	backoff    Backoff
	pullExpiry time.Duration

	pending   []*entry              // received, not yet acknowledged, in delivery order
	tail      *entry                // the last entry delivered to this worker
	pinID     string                // the pin this process last held on the consumer
	heldPin   atomic.Value          // pinID, for the metrics' goroutine (a string)
	isolateTo uint64                // apply one event per transaction up to this sequence
	forced    map[uint64]*Rejection // events Neo4j refused alone: dead-lettered when next planned
	erasures  *erasures             // which tenants are erased (erased.go)

	// committed is where this worker's last committed step left the checkpoint (known only
	// after one): the next step plans from it before it locks (group.go, lockAndPlan).
	committed      uint64
	committedKnown bool

	apply stepFunc  // step with its decorators (retry, rejection check, metrics)
	limit int       // most events the next step applies
	plan  *stepPlan // what the last attempt of the step planned
}

// init builds the decorated step.
func (w *worker) init(stop context.Context) {
	w.forced = map[uint64]*Rejection{}
	// What arrived since the batch was collected (or while the step waited for a transaction)
	// joins it.
	topUp := func() {
		if n := w.cfg.BatchSize - len(w.pending); n > 0 {
			w.receiveAll(w.in.poll(n))
		}
	}
	step := func(ctx context.Context) (stepStats, error) {
		var plan *stepPlan
		var st stepStats
		var err error
		if w.committer != nil {
			plan, st, err = w.committer.step(ctx, w, w.limit, topUp)
		} else {
			topUp()
			plan, st, err = w.step(ctx, w.limit)
		}
		w.plan = plan
		if isUnreachable(err) {
			w.warm.markCold()
		}
		return st, err
	}
	w.apply = withRetry(withRejectionCheck(withRecover(withMetrics(step, w.metrics, w.partition), w.log)),
		w.backoff, stop, w.keepAlive, w.metrics, w.log)
}

// run consumes until stop ends; the transaction in flight then finishes (or ends with hard).
func (w *worker) run(stop, hard context.Context) error {
	for stop.Err() == nil {
		it, err := w.cons.Messages(
			jetstream.PullMaxMessages(w.cfg.BatchSize),
			jetstream.PullExpiry(w.pullExpiry),
			jetstream.PullPriorityGroup(w.group),
		)
		if err != nil {
			w.log.Warn("cannot consume partition, retrying", "err", err)
			if !sleep(stop, w.backoff.Delay(3)) {
				break
			}
			w.recreate(stop)
			continue
		}
		in := newInbox(it, inboxBatches*w.cfg.BatchSize)
		w.in = in
		err = w.consume(stop, hard, in)
		if errors.Is(err, errStopping) || stop.Err() != nil {
			w.handBack(in)
			break
		}
		w.nakAll(in.close(hard, false))
		w.log.Warn("consumer iterator ended, restarting", "err", err)
		if !sleep(stop, w.backoff.Delay(1)) {
			break
		}
		w.recreate(stop)
	}
	w.nakPending()
	w.heldPin.Store("")
	return nil
}

// inboxBatches is how many batches of deliveries the inbox holds ahead of the worker (with the
// iterator's own buffer of one batch, two per partition in all). More would keep the pin
// renewed through longer backlogs, at the cost of memory (issue 11's footprint target: four
// batches put the projector at 190 MiB); a pin that lapses under a backlog is taken again by the
// same process at its next pull, or by another, which the fence makes safe.
const inboxBatches = 1

// holds reports whether this process holds the partition now: the consumer's pin is the one
// this process last received its events under.
func (w *worker) holds(ctx context.Context) bool {
	pin, _ := w.heldPin.Load().(string)
	if pin == "" {
		return false
	}
	cons, err := w.js.Consumer(ctx, stream.MemoryStream, w.consumer)
	if err != nil {
		return false
	}
	for _, g := range cons.CachedInfo().PriorityGroups {
		if g.Group == w.group && g.PinnedClientID == pin {
			return true
		}
	}
	return false
}

// recreate applies the consumer's definition again (it may have been deleted).
func (w *worker) recreate(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := w.js.CreateOrUpdateConsumer(ctx, stream.MemoryStream, w.ccfg)
	if err != nil {
		w.log.Warn("cannot apply the consumer", "err", err)
		return
	}
	w.cons = cons
	w.tail = nil // a recreated consumer numbers its deliveries anew
}

// consume loops batch by batch over one iterator: it takes what has arrived (waiting for a
// first event when nothing has), applies it, and starts over. There is no wait for a batch to
// fill: what arrives while a transaction runs is the next batch, so batches grow with the load
// and an event that arrives at an idle partition is applied at once.
func (w *worker) consume(stop, hard context.Context, in *inbox) error {
	for {
		if err := w.collect(stop, in); err != nil {
			return err
		}
		if len(w.pending) == 0 {
			continue
		}
		if err := w.process(stop, hard); err != nil {
			return err
		}
	}
}

// collect waits for a first event, then takes whatever else has arrived up to a batch; with
// BatchWait set it waits that long after the first for more.
func (w *worker) collect(stop context.Context, in *inbox) error {
	if len(w.pending) == 0 {
		msgs, err := in.take(stop, w.cfg.BatchSize)
		switch {
		case err == nil:
			w.receiveAll(msgs)
		case stop.Err() != nil:
			return errStopping
		default:
			return err
		}
	}
	if w.cfg.BatchWait > 0 && len(w.pending) < w.cfg.BatchSize {
		ctx, cancel := context.WithTimeout(stop, w.cfg.BatchWait)
		defer cancel()
		for len(w.pending) < w.cfg.BatchSize {
			msgs, err := in.take(ctx, w.cfg.BatchSize-len(w.pending))
			if err != nil {
				break
			}
			w.receiveAll(msgs)
		}
	}
	w.receiveAll(in.poll(w.cfg.BatchSize - len(w.pending)))
	return nil
}

func (w *worker) receiveAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		w.receive(m)
	}
}

// receive records a delivered event. A first delivery whose consumer sequence directly
// follows that of the worker's previous first delivery is the partition's next event after
// it: the consumer hands out the partition in stream order, and any delivery in between (to
// this process or another) would have taken a consumer sequence. Everything else is checked
// against the stream before it is applied.
func (w *worker) receive(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		kind, partition := subjectKind(msg.Subject())
		w.log.Error("delivery without metadata, terminating it", "kind", kind, "partition", partition, "err", err)
		_ = msg.Term()
		return
	}
	e := &entry{
		seq: meta.Sequence.Stream, subject: msg.Subject(), stored: meta.Timestamp.UTC(),
		header: msg.Headers(), data: msg.Data(), msg: msg,
		dseq: meta.Sequence.Consumer, fresh: meta.NumDelivered == 1,
	}
	if t := w.tail; t != nil && t.fresh && e.fresh && e.dseq == t.dseq+1 && e.seq > t.seq {
		e.after = t.seq
	}
	w.tail = e
	if pin := msg.Headers().Get("Nats-Pin-Id"); pin != "" && pin != w.pinID {
		w.pinID = pin
		w.heldPin.Store(pin)
		w.log.Info("partition taken", "consumer", w.consumer)
	}
	if w.metrics != nil && e.fresh {
		w.metrics.delayReceived.Observe(time.Since(e.stored).Seconds())
	}
	w.decode(e)
	w.pending = append(w.pending, e)
}

// observeCommitted records, for the first deliveries among entries, the time from their
// storing to at, when the transaction that covered them committed.
func (w *worker) observeCommitted(at time.Time, entries []*entry) {
	if w.metrics == nil {
		return
	}
	for _, e := range entries {
		if e.msg != nil && e.fresh {
			w.metrics.delayCommitted.Observe(at.Sub(e.stored).Seconds())
		}
	}
}

func (w *worker) decode(e *entry) {
	rec, err := Decoder{Keys: w.cfg.Keys}.Decode(e.subject, e.header, e.data, e.seq, e.stored, w.multiUser)
	if err != nil {
		var rej *Rejection
		if !errors.As(err, &rej) {
			rej = &Rejection{Sequence: e.seq, Reason: ReasonUndecodable, Err: err}
		}
		e.rejection = rej
		return
	}
	e.record = rec
}

// process applies everything pending, one transaction after another; each step tops its batch
// up with what arrived meanwhile (see init).
func (w *worker) process(stop, hard context.Context) error {
	for len(w.pending) > 0 {
		w.limit = w.cfg.BatchSize
		if w.isolateTo > 0 {
			w.limit = 1
		}
		w.plan = nil
		_, err := w.apply(hard)
		plan := w.plan
		if err == nil {
			w.finish(plan)
			if w.isolateTo > 0 && plan.last >= w.isolateTo {
				w.isolateTo = 0
			}
			continue
		}
		if !errors.Is(err, errRejectedByGraph) {
			return err
		}
		w.metrics.Retries.WithLabelValues(retryIsolation).Inc()
		switch {
		case plan == nil || len(plan.apply) == 0:
			// Not an event's fault after all: wait and try again.
			w.log.Error("neo4j rejected a step without events", "err", err)
			if !sleep(stop, w.backoff.Max) {
				return errStopping
			}
		case w.limit > 1:
			// Apply one event per transaction through this batch: the one at fault then
			// fails alone and is dead-lettered, the others are applied.
			w.isolateTo = plan.last
			w.log.Warn("neo4j rejected a batch, applying its events one by one", "through", w.isolateTo, "err", err)
		default:
			e := plan.apply[0]
			reason := ReasonGraphRejected
			if errors.Is(err, errPanicked) {
				reason = ReasonInternal
			}
			w.forced[e.seq] = &Rejection{Sequence: e.seq, Reason: reason, Err: err}
			w.log.Warn("event refused", "seq", e.seq, "reason", reason, "err", err)
		}
	}
	return nil
}

// stepPlan is what one transaction covers.
type stepPlan struct {
	done  []*entry // pending entries at or below the checkpoint: acknowledged only
	apply []*entry // in stream order, gap entries included
	last  uint64   // checkpoint after the step
	// erasures is the tenants' erasures after the step, taken by finish.
	erasures *erasureView
}

// step runs one transaction over the partition's pending events alone (commitSteps): lock
// the checkpoint, drop what it covers, make sure the rest follows it without a gap (reading
// the missing events from the stream), dead-letter what cannot be applied, apply the rest,
// move the checkpoint, commit. It changes no worker state; finish does, after the commit.
func (w *worker) step(ctx context.Context, limit int) (*stepPlan, stepStats, error) {
	m := &stepMember{w: w, limit: limit}
	err := commitSteps(ctx, []*stepMember{m})
	return m.plan, m.st, err
}

// planStep decides what the step covers, given the checkpoint cp: pending entries at or below
// it are done; the others are applied in stream order, as long as each directly follows the
// one before (or the checkpoint). Where that is not known from the deliveries, the stream
// says which event comes next; events missing from the deliveries (delivered to a process
// that died or lost the partition) are read from the stream and applied in their place.
func (w *worker) planStep(ctx context.Context, cp uint64, limit int) (*stepPlan, error) {
	plan := &stepPlan{last: cp}
	todo := make([]*entry, 0, len(w.pending))
	seen := map[uint64]bool{}
	for _, e := range w.pending {
		switch {
		case e.seq <= cp || seen[e.seq]:
			plan.done = append(plan.done, e)
		default:
			seen[e.seq] = true
			todo = append(todo, e)
		}
	}
	slices.SortStableFunc(todo, func(a, b *entry) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	for _, e := range todo {
		if len(plan.apply) >= limit {
			break
		}
		if e.after == 0 || e.after != plan.last {
			for len(plan.apply) < limit {
				next, err := w.nextInPartition(ctx, plan.last+1)
				if err != nil {
					return plan, err
				}
				if next == nil || next.seq >= e.seq {
					break // e is next (or the stream no longer holds it: it is still next)
				}
				plan.apply = append(plan.apply, next)
				plan.last = next.seq
			}
			if len(plan.apply) >= limit {
				break
			}
		}
		plan.apply = append(plan.apply, e)
		plan.last = e.seq
	}
	for _, e := range plan.apply {
		if r := w.forced[e.seq]; r != nil {
			e.rejection = r
		}
	}
	return plan, nil
}

// nextInPartition reads the partition's first event at or after seq from the stream; nil
// when there is none.
func (w *worker) nextInPartition(ctx context.Context, seq uint64) (*entry, error) {
	m, err := w.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(w.filter))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read partition %d from sequence %d: %w", errNATS, w.partition, seq, err)
	}
	e := &entry{seq: m.Sequence, subject: m.Subject, stored: m.Time.UTC(), header: m.Header, data: m.Data}
	w.decode(e)
	return e, nil
}

// finish acknowledges what a committed step covered and drops it from pending.
func (w *worker) finish(plan *stepPlan) {
	covered := map[*entry]bool{}
	for _, e := range plan.done {
		covered[e] = true
	}
	for _, e := range plan.apply {
		covered[e] = true
	}
	kept := w.pending[:0]
	for _, e := range w.pending {
		if !covered[e] {
			kept = append(kept, e)
			continue
		}
		if e.msg != nil {
			if err := e.msg.Ack(); err != nil {
				w.log.Debug("ack failed; the event will be delivered again and skipped", "seq", e.seq, "err", err)
			}
		}
	}
	clear(w.pending[len(kept):])
	w.pending = kept
	w.erasures.commit(plan.erasures, plan.last)
	w.committed, w.committedKnown = plan.last, true
	for seq := range w.forced {
		if seq <= plan.last {
			delete(w.forced, seq)
		}
	}
	if n := len(plan.apply); n > 0 && w.progress != nil {
		w.progress.committed(w.partition, plan.last, plan.apply[n-1].stored)
	}
}

// announce publishes the partition's new checkpoint: a hint for readers waiting on it
// (stream.ProgressRoot); a lost one only makes them wait for their next poll. It is sent as
// soon as the commit returns (commitSteps), before the acknowledgements and before the
// worker that owns the step is even woken.
func (w *worker) announce(checkpoint uint64) {
	if w.js != nil {
		_ = w.js.Conn().Publish(stream.ProgressSubject(w.cfg.Group, w.partition), strconv.AppendUint(nil, checkpoint, 10))
	}
}

// committedAt returns where the worker's last committed step left the checkpoint; false
// before its first.
func (w *worker) committedAt() (uint64, bool) { return w.committed, w.committedKnown }

// keepAlive tells JetStream the pending events are still being worked on, so a batch that
// retries for longer than the ack wait is not delivered again meanwhile.
func (w *worker) keepAlive() {
	for _, e := range w.pending {
		if e.msg != nil {
			_ = e.msg.InProgress()
		}
	}
}

// handBack stops pulling and hands back the events the inbox and the iterator hold but the
// worker did not take, so the next process of the partition gets them at once, in order.
func (w *worker) handBack(in *inbox) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	w.nakAll(in.close(ctx, true))
}

// nakAll hands back deliveries the worker never took.
func (w *worker) nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.Nak()
	}
}

// nakPending hands back what this worker received but did not apply, for prompt delivery to
// whichever process takes the partition next.
func (w *worker) nakPending() {
	for _, e := range w.pending {
		if e.msg != nil {
			_ = e.msg.Nak()
		}
	}
	w.pending = nil
	w.tail = nil
}

// unpin releases the partition if this process holds it, so another process takes it over
// without waiting for the pin timeout.
func (w *worker) unpin(ctx context.Context) {
	if w.pinID == "" {
		return
	}
	info, err := w.cons.Info(ctx)
	if err != nil {
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group == w.group && g.PinnedClientID == w.pinID {
			if err := w.stream.UnpinConsumer(ctx, w.consumer, w.group); err != nil {
				w.log.Debug("unpin failed", "err", err)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
