package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/stream"
)

// apply reads the stream after done up to last (only filter's subjects when set) and applies
// it batch by batch, each batch in one transaction with the replay checkpoint.
func apply(ctx context.Context, d neo4j.DriverWithContext, js jetstream.JetStream, o Options, name, filter string, done, last uint64, st *Stats) error {
	// A short inactive threshold: the server removes the consumer soon after the replay ends
	// (or is interrupted) instead of keeping it for the default five minutes.
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: done + 1,
		InactiveThreshold: 10 * time.Second}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	cons, err := js.OrderedConsumer(ctx, stream.MemoryStream, cfg)
	if err != nil {
		return fmt.Errorf("replay consumer: %w", err)
	}
	prog := newProgress(o.Progress, done, last)
	defer prog.finish()
	sess := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite, DatabaseName: o.Database})
	defer sess.Close(context.Background())

	var batch []projection.Record
	var batchLast uint64
	var batchStored time.Time
	flush := func() error {
		if batchLast == 0 {
			return nil
		}
		applied, skipped, err := commit(ctx, sess, name, batch, batchLast, batchStored)
		if err != nil {
			return err
		}
		st.Applied += applied
		st.Skipped += skipped
		prog.update(batchLast, st.Applied+st.Skipped)
		batch, batchLast = batch[:0], 0
		return nil
	}
	for {
		msgs, err := cons.Fetch(o.BatchSize, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		n, reachedEnd := 0, false
		for msg := range msgs.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return err
			}
			seq := md.Sequence.Stream
			if seq > last {
				reachedEnd = true
				break
			}
			rec, derr := projection.Decode(msg.Subject(), msg.Headers(), msg.Data(), seq, md.Timestamp, o.MultiTenant)
			if derr == nil {
				batch = append(batch, rec)
			} else {
				st.Skipped++ // the live projector dead-lettered it; a replay does not again
			}
			batchLast, batchStored = seq, md.Timestamp
			if seq == last || md.NumPending == 0 {
				reachedEnd = true
			}
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("fetch: %w", err)
		}
		if err := flush(); err != nil {
			return err
		}
		if reachedEnd || n == 0 {
			return ctx.Err()
		}
	}
}

// commit applies one batch with the checkpoint in one transaction; events at or below the
// checkpoint (an overlap after a crash) are left out.
func commit(ctx context.Context, sess neo4j.SessionWithContext, name string, batch []projection.Record, last uint64, stored time.Time) (applied, skipped int, err error) {
	for attempt := 0; ; attempt++ {
		applied, skipped, err = commitOnce(ctx, sess, name, batch, last, stored)
		if err == nil || !neo4j.IsRetryable(err) || attempt >= 8 {
			return applied, skipped, err
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(time.Duration(1<<attempt) * 50 * time.Millisecond):
		}
	}
}

func commitOnce(ctx context.Context, sess neo4j.SessionWithContext, name string, batch []projection.Record, last uint64, stored time.Time) (int, int, error) {
	type result struct{ applied, skipped int }
	r, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (result, error) {
		cp, err := projection.LockCheckpoint(ctx, tx, name, -1)
		if err != nil {
			return result{}, err
		}
		todo := make([]projection.Record, 0, len(batch))
		for _, rec := range batch {
			if rec.Sequence > cp {
				todo = append(todo, rec)
			}
		}
		out, err := projection.Apply(ctx, tx, todo)
		if err != nil {
			return result{}, err
		}
		if last > cp {
			if err := projection.WriteCheckpoint(ctx, tx, name, last, stored); err != nil {
				return result{}, err
			}
		}
		res := result{skipped: len(out.Rejected)}
		for _, n := range out.Applied {
			res.applied += n
		}
		res.applied += out.Duplicates
		return res, nil
	})
	return r.applied, r.skipped, err
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

func deleteCheckpoint(ctx context.Context, d neo4j.DriverWithContext, database, name string) error {
	_, err := neo4j.ExecuteQuery(ctx, d, "MATCH (c:EngramCheckpoint {name: $name}) DELETE c", map[string]any{"name": name},
		neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(database))
	return err
}
