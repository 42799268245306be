package replay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/stream"
)

// A replay is a pipeline per partition (a lane). A tenant's events all lie in one partition
// (the stream's subject transform appends partition(8) of the tenant token), and tenants share
// nothing but the Tool aggregates, whose updates commute: the partitions can be applied
// independently and at once, as the live projector applies them. One ordered consumer reads
// the stream once and hands each message to its partition's lane; a lane decodes and batches
// its messages while the transaction of its previous batch runs, and commits each batch with
// the lane's own checkpoint. At most Writers transactions run at a time.
//
//	stream ─▶ reader ─┬─▶ lane 0: decode, batch ─▶ [batch] ─▶ commit (Apply + checkpoint)
//	                  ├─▶ lane 1: ...
//	                  └─▶ lane 7: ...

// lane is one partition's part of a replay.
type lane struct {
	partition int
	name      string // checkpoint name
	done      uint64 // checkpoint when the replay started: events up to it are applied
	in        chan jetstream.Msg
	// rebuild, for a whole-stream replay, applies the lane's batches without looking its ids
	// up nor counting Tool calls (projection.Rebuild); nil: projection.Apply.
	rebuild *projection.Rebuild
	// erasures drops the events of a tenant written after its erasure, as the live projector
	// does (projection.Erasures).
	erasures *projection.Erasures
	// shredded counts the events whose data key an erasure destroyed: skipped, as the live
	// projector skips them.
	shredded atomic.Int64
}

// batch is what one transaction of a lane applies: the records, and the last stream
// sequence it covers (undecodable messages included), with its stored time.
type batch struct {
	records []projection.Record
	last    uint64
	stored  time.Time
	read    int // messages it covers
}

// counters are a replay's progress, shared by its goroutines.
type counters struct {
	applied, skipped atomic.Int64
	readPos          atomic.Uint64 // last stream sequence the reader handed to a lane
	read             atomic.Int64  // messages handed to lanes
}

// afterCommit, when set (tests), is called after every commit of a lane, one call at a time.
var (
	afterCommit   func()
	afterCommitMu sync.Mutex
)

// laneName is the checkpoint name of a whole-stream replay's partition.
func laneName(name string, partition int) string { return name + "-p" + strconv.Itoa(partition) }

// partitionOf reads the partition from a stored subject mem.<token>.<kind>.<partition>; -1
// when the subject is not one the projector's consumers (filter mem.*.*.<N>) would deliver.
func partitionOf(subject string) int {
	if strings.Count(subject, ".") != 3 {
		return -1
	}
	p, err := strconv.Atoi(subject[strings.LastIndexByte(subject, '.')+1:])
	if err != nil || p < 0 || p >= natsdeploy.Partitions || strconv.Itoa(p) != subject[strings.LastIndexByte(subject, '.')+1:] {
		return -1
	}
	return p
}

// apply replays the stream up to last into the lanes (only filter's subjects when set).
func apply(ctx context.Context, d neo4j.DriverWithContext, js jetstream.JetStream, o Options, lanes []*lane, filter string, last uint64, st *Stats) error {
	start := lanes[0].done
	for _, l := range lanes {
		start = min(start, l.done)
	}
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return fmt.Errorf("memory stream: %w", err)
	}
	// Nothing to read (a tenant without events since its checkpoint): the consumer would only
	// wait for its expiry.
	subject := filter
	if subject == "" {
		subject = ">"
	}
	first, err := s.GetMsg(ctx, start+1, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && first.Sequence > last {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the stream from %d: %w", start+1, err)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var c counters
	prog := newProgress(o.Progress, start, last, &c)
	defer prog.finish()
	stopProgress := prog.run(ctx)
	defer stopProgress()

	slots := make(chan struct{}, o.Writers)
	var wg sync.WaitGroup
	for _, l := range lanes {
		l.in = make(chan jetstream.Msg, o.BatchSize)
		batches := make(chan batch, 1) // one batch decoded ahead of the one being written
		wg.Go(func() {
			defer close(batches)
			if err := l.collect(ctx, o, batches); err != nil {
				cancel(err)
			}
		})
		wg.Go(func() {
			if err := l.write(ctx, d, o, batches, slots, &c); err != nil {
				cancel(err)
			}
			for range batches { // let collect end
			}
		})
	}
	rerr := read(ctx, js, filter, first.Sequence, last, lanes, &c)
	for _, l := range lanes {
		close(l.in)
	}
	wg.Wait()
	st.Applied += int(c.applied.Load())
	st.Skipped += int(c.skipped.Load())
	for _, l := range lanes {
		st.Shredded += int(l.shredded.Load())
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if rerr != nil {
		return rerr
	}
	return ctx.Err()
}

// read hands the stream's messages from seq up to last to their lanes, skipping what each
// lane's checkpoint covers.
func read(ctx context.Context, js jetstream.JetStream, filter string, seq, last uint64, lanes []*lane, c *counters) error {
	// A short inactive threshold: the server removes the consumer soon after the replay ends
	// (or is interrupted) instead of keeping it for the default five minutes.
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq,
		InactiveThreshold: 10 * time.Second}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	cons, err := js.OrderedConsumer(ctx, stream.MemoryStream, cfg)
	if err != nil {
		return fmt.Errorf("replay consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return fmt.Errorf("replay consumer: %w", err)
	}
	defer it.Stop()
	byPartition := map[int]*lane{}
	for _, l := range lanes {
		byPartition[l.partition] = l
	}
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read the stream: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read the stream: %w", err)
		}
		s := md.Sequence.Stream
		if s > last {
			return nil
		}
		c.readPos.Store(s)
		l := byPartition[partitionOf(msg.Subject())]
		if len(lanes) == 1 {
			l = lanes[0] // a tenant replay: everything its filter delivers
		}
		switch {
		case l == nil:
			c.skipped.Add(1) // no live consumer delivers it; a replay does not apply it either
		case s > l.done:
			c.read.Add(1)
			select {
			case l.in <- msg:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if s == last || md.NumPending == 0 {
			return nil
		}
	}
}

// collect decodes the lane's messages into batches of o.BatchSize.
func (l *lane) collect(ctx context.Context, o Options, out chan<- batch) error {
	var b batch
	flush := func() bool {
		if b.read == 0 {
			return true
		}
		select {
		case out <- b:
			b = batch{}
			return true
		case <-ctx.Done():
			return false
		}
	}
	for msg := range l.in {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		seq := md.Sequence.Stream
		refused, err := l.erasures.Refused(ctx, msg.Subject(), seq)
		if err != nil {
			return err
		}
		if refused {
			// The live projector dropped it; so does a replay (counted as skipped in write).
			b.last, b.stored, b.read = seq, md.Timestamp, b.read+1
			if b.read >= o.BatchSize && !flush() {
				return ctx.Err()
			}
			continue
		}
		rec, derr := projection.Decoder{Keys: o.Keys}.Decode(msg.Subject(), msg.Headers(), msg.Data(), seq, md.Timestamp, o.MultiTenant)
		if rej := (*projection.Rejection)(nil); errors.As(derr, &rej) && rej.Reason == projection.ReasonShredded {
			l.shredded.Add(1)
		}
		if derr == nil {
			if b.records == nil {
				b.records = make([]projection.Record, 0, o.BatchSize)
			}
			b.records = append(b.records, rec)
		}
		// else: the live projector dead-lettered it; a replay does not again (counted in write)
		b.last, b.stored, b.read = seq, md.Timestamp, b.read+1
		if b.read >= o.BatchSize && !flush() {
			return ctx.Err()
		}
	}
	if !flush() {
		return ctx.Err()
	}
	return nil
}

// write commits the lane's batches one after the other, each holding one of slots.
func (l *lane) write(ctx context.Context, d neo4j.DriverWithContext, o Options, in <-chan batch, slots chan struct{}, c *counters) error {
	sess := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite, DatabaseName: o.Database})
	defer sess.Close(context.WithoutCancel(ctx))
	for b := range in {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		applied, rejected, err := l.commit(ctx, sess, b)
		<-slots
		if err != nil {
			return err
		}
		c.applied.Add(int64(applied))
		c.skipped.Add(int64(rejected + b.read - len(b.records)))
		if afterCommit != nil {
			afterCommitMu.Lock()
			afterCommit()
			afterCommitMu.Unlock()
		}
	}
	return nil
}

// commit applies one batch with the lane's checkpoint in one transaction. A batch Neo4j
// refuses for its data (isRejected) is applied one event per transaction instead, and the
// events it refuses alone are skipped: the live projector dead-lettered them (graph_rejected).
func (l *lane) commit(ctx context.Context, sess neo4j.SessionWithContext, b batch) (applied, rejected int, err error) {
	applied, rejected, err = l.commitRetrying(ctx, sess, b.records, b.last, b.stored)
	if err == nil || !isRejected(err) {
		return applied, rejected, err
	}
	applied, rejected = 0, 0
	for _, r := range b.records {
		a, rj, err := l.commitRetrying(ctx, sess, []projection.Record{r}, r.Sequence, r.Stored)
		switch {
		case err == nil:
			applied, rejected = applied+a, rejected+rj
		case isRejected(err):
			rejected++
			if _, _, err := l.commitRetrying(ctx, sess, nil, r.Sequence, r.Stored); err != nil {
				return applied, rejected, err
			}
		default:
			return applied, rejected, err
		}
	}
	_, _, err = l.commitRetrying(ctx, sess, nil, b.last, b.stored)
	return applied, rejected, err
}

// commitRetrying retries transient failures (deadlocks between lanes over a Tool, a leader
// change, a Tool another lane's erasure deleted under the statement) with backoff.
func (l *lane) commitRetrying(ctx context.Context, sess neo4j.SessionWithContext, recs []projection.Record, last uint64, stored time.Time) (applied, rejected int, err error) {
	for attempt := 0; ; attempt++ {
		applied, rejected, err = l.commitOnce(ctx, sess, recs, last, stored)
		if err == nil || !(neo4j.IsRetryable(err) || isDeletedUnder(err)) || attempt >= 8 {
			return applied, rejected, err
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(time.Duration(1<<attempt) * 50 * time.Millisecond):
		}
	}
}

// commitOnce applies recs and moves the checkpoint to last in one transaction; records at or
// below the checkpoint (an overlap after a crash) are left out.
func (l *lane) commitOnce(ctx context.Context, sess neo4j.SessionWithContext, recs []projection.Record, last uint64, stored time.Time) (int, int, error) {
	type result struct{ applied, rejected int }
	r, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (result, error) {
		cp, err := projection.LockCheckpoint(ctx, tx, l.name, l.partition)
		if err != nil {
			return result{}, err
		}
		todo := make([]projection.Record, 0, len(recs))
		for _, rec := range recs {
			if rec.Sequence > cp {
				todo = append(todo, rec)
			}
		}
		var out projection.Outcome
		if l.rebuild != nil {
			if len(todo) < len(recs) {
				l.rebuild.Forget() // committed by an attempt whose outcome this process did not learn
			}
			out, err = l.rebuild.Apply(ctx, tx, todo)
		} else {
			out, err = projection.Apply(ctx, tx, todo)
		}
		if err != nil {
			return result{}, err
		}
		if last > cp {
			if err := projection.WriteCheckpoint(ctx, tx, l.name, last, stored); err != nil {
				return result{}, err
			}
		}
		res := result{rejected: len(out.Rejected)}
		for _, n := range out.Applied {
			res.applied += n
		}
		res.applied += out.Duplicates
		return res, nil
	})
	if err == nil && l.rebuild != nil {
		l.rebuild.Commit()
	}
	return r.applied, r.rejected, err
}

// isDeletedUnder reports a node deleted under the statement by a concurrent transaction: an
// erasure in another lane deleting a Tool whose last call it removed (internal/projection,
// cypherUserErased) while this lane links a call to it. A retry MERGEs the Tool again.
func isDeletedUnder(err error) bool {
	var n4j *neo4j.Neo4jError
	return errors.As(err, &n4j) && n4j.Code == "Neo.ClientError.Statement.EntityNotFound"
}

// isRejected reports whether Neo4j refused a statement for its data (a constraint, a type),
// which no retry changes: a non-transient client error that is not a syntax, parameter,
// security or transaction error.
func isRejected(err error) bool {
	var n4j *neo4j.Neo4jError
	if !errors.As(err, &n4j) || n4j.IsRetriable() {
		return false
	}
	for _, p := range []string{"Neo.ClientError.Schema.ConstraintValidationFailed", "Neo.ClientError.Statement.TypeError",
		"Neo.ClientError.Statement.ArgumentError", "Neo.ClientError.Statement.ArithmeticError"} {
		if strings.HasPrefix(n4j.Code, p) {
			return true
		}
	}
	return false
}

// prepareEmpty makes sure a whole-stream replay starts from an empty graph.
func prepareEmpty(ctx context.Context, d neo4j.DriverWithContext, o Options) error {
	res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (n) RETURN count(n) > 0 AS any LIMIT 1", nil,
		neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(o.Database))
	if err != nil {
		return err
	}
	if any, _ := res.Records[0].Get("any"); any == false {
		return nil
	}
	if !o.Wipe {
		return fmt.Errorf("%w: refusing to replay into it; pass --wipe to delete the whole graph first, or replay one tenant with --user", ErrNotEmpty)
	}
	for {
		res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (n) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS deleted", nil,
			neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(o.Database))
		if err != nil {
			return fmt.Errorf("wipe: %w", err)
		}
		if n, _ := res.Records[0].Get("deleted"); n.(int64) == 0 {
			return nil
		}
	}
}

// eraseTenant deletes the tenant's subgraph with the projector's own erasure (which also
// corrects the Tool aggregates).
func eraseTenant(ctx context.Context, d neo4j.DriverWithContext, o Options) error {
	rec := projection.Record{
		Event: &events.Event{ID: events.NewID(), Kind: events.KindUserErased, User: o.User,
			Data: events.UserErased{Identifier: o.User}},
	}
	sess := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite, DatabaseName: o.Database})
	defer sess.Close(context.Background())
	_, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (bool, error) {
		out, err := projection.Apply(ctx, tx, []projection.Record{rec})
		if err == nil && len(out.Rejected) > 0 {
			err = out.Rejected[0]
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("delete the tenant's subgraph: %w", err)
	}
	return nil
}

// setLiveCheckpoints moves every live partition checkpoint up to seq: the replay applied
// everything up to it, so the live projector resumes after it.
func setLiveCheckpoints(ctx context.Context, d neo4j.DriverWithContext, o Options, seq uint64) error {
	sess := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite, DatabaseName: o.Database})
	defer sess.Close(context.Background())
	_, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (bool, error) {
		for p := range natsdeploy.Partitions {
			name := projection.CheckpointName(o.LiveGroup, p)
			cp, err := projection.LockCheckpoint(ctx, tx, name, p)
			if err != nil {
				return false, err
			}
			if cp < seq {
				if err := projection.WriteCheckpoint(ctx, tx, name, seq, time.Unix(0, 0)); err != nil {
					return false, err
				}
			}
		}
		return true, nil
	})
	return err
}

// recountTools sets the Tool aggregates after a rebuild (projection.RecountTools).
func recountTools(ctx context.Context, d neo4j.DriverWithContext, database string) error {
	sess := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite, DatabaseName: database})
	defer sess.Close(context.Background())
	_, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (bool, error) {
		return true, projection.RecountTools(ctx, tx)
	})
	return err
}

func deleteCheckpoints(ctx context.Context, d neo4j.DriverWithContext, database string, names []string) error {
	list := make([]any, len(names))
	for i, n := range names {
		list[i] = n
	}
	_, err := neo4j.ExecuteQuery(ctx, d, "MATCH (c:EngramCheckpoint) WHERE c.name IN $names DELETE c", map[string]any{"names": list},
		neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(database))
	return err
}
