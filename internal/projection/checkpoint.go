package projection

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// CheckpointName is the name of a projector group's checkpoint of one partition,
// "<group>-p<partition>": the same name as the partition's durable consumer, and the name
// the query service waits on for read-your-writes.
func CheckpointName(group string, partition int) string {
	return group + "-p" + strconv.Itoa(partition)
}

// Writing a property takes the node's write lock, held until the transaction ends; the value
// is read after it, so of two transactions of one partition the second waits here and reads
// what the first committed. (A SET of stream_seq to itself takes the lock too, but returns
// the value read before the wait.) The rows are locked in the order given, ascending by name
// (lockOrder), so transactions that lock several checkpoints (a group commit, group.go) queue
// instead of deadlocking. The list travels inside a map: Neo4j plans a statement per size
// class of a list parameter, but once for a map.
const cypherLockCheckpoints = planOnce + `
UNWIND $c.rows AS row
MERGE (c:EngramCheckpoint {name: row.name})
ON CREATE SET c.partition = row.partition, c.stream_seq = 0
WITH row, c
SET c.lock = true
REMOVE c.lock
WITH row, c
RETURN row.name AS name, c.stream_seq AS seq`

const cypherWriteCheckpoints = planOnce + `
UNWIND $c.rows AS row
MATCH (c:EngramCheckpoint {name: row.name}) USING INDEX SEEK c:EngramCheckpoint(name)
SET c.stream_seq = row.seq, c.updated_at = row.updated_at`

const cypherReadCheckpoint = `
MATCH (c:EngramCheckpoint {name: $name})
RETURN c.stream_seq AS seq`

// LockCheckpoint returns the checkpoint of name (0 for a new one) and holds its write lock
// until tx ends, so that no other transaction applies the same partition meanwhile.
func LockCheckpoint(ctx context.Context, tx neo4j.ManagedTransaction, name string, partition int) (uint64, error) {
	seqs, err := lockCheckpoints(ctx, tx, []checkpointLock{{name: name, partition: partition}})
	if err != nil {
		return 0, err
	}
	return seqs[0], nil
}

// checkpointLock names a checkpoint to lock.
type checkpointLock struct {
	name      string
	partition int
}

// lockCheckpoints locks the checkpoints, which must be in lockOrder, and returns their
// sequences in the same order.
func lockCheckpoints(ctx context.Context, tx neo4j.ManagedTransaction, cps []checkpointLock) ([]uint64, error) {
	rows := make([]any, len(cps))
	for i, c := range cps {
		rows[i] = map[string]any{"name": c.name, "partition": int64(c.partition)}
	}
	what := "lock checkpoint " + cps[0].name
	if len(cps) > 1 {
		what = fmt.Sprintf("lock %d checkpoints", len(cps))
	}
	res, err := tx.Run(ctx, cypherLockCheckpoints, map[string]any{"c": map[string]any{"rows": rows}})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	recs, err := res.Collect(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	seqOf := make(map[string]uint64, len(recs))
	for _, rec := range recs {
		name, _, err := neo4j.GetRecordValue[string](rec, "name")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		seq, _, err := neo4j.GetRecordValue[int64](rec, "seq")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		seqOf[name] = uint64(seq)
	}
	out := make([]uint64, len(cps))
	for i, c := range cps {
		seq, ok := seqOf[c.name]
		if !ok {
			return nil, fmt.Errorf("%s: no row for %s", what, c.name)
		}
		out[i] = seq
	}
	return out, nil
}

// WriteCheckpoint records that every event of the partition up to seq is applied; updated is
// the stored time of the last one (never the database clock). Call it in the transaction of
// the effects, after LockCheckpoint.
func WriteCheckpoint(ctx context.Context, tx neo4j.ManagedTransaction, name string, seq uint64, updated time.Time) error {
	return writeCheckpoints(ctx, tx, []checkpointWrite{{name: name, seq: seq, updated: updated}})
}

// checkpointWrite is a checkpoint's new position.
type checkpointWrite struct {
	name    string
	seq     uint64
	updated time.Time
}

func writeCheckpoints(ctx context.Context, tx neo4j.ManagedTransaction, cps []checkpointWrite) error {
	rows := make([]any, len(cps))
	for i, c := range cps {
		rows[i] = map[string]any{"name": c.name, "seq": int64(c.seq), "updated_at": graphTime(c.updated)}
	}
	what := "write checkpoint " + cps[0].name
	if len(cps) > 1 {
		what = fmt.Sprintf("write %d checkpoints", len(cps))
	}
	res, err := tx.Run(ctx, cypherWriteCheckpoints, map[string]any{"c": map[string]any{"rows": rows}})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := res.Consume(ctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// ReadCheckpoint returns the committed checkpoint of name, 0 when there is none.
func ReadCheckpoint(ctx context.Context, d neo4j.DriverWithContext, database, name string) (uint64, error) {
	res, err := neo4j.ExecuteQuery(ctx, d, cypherReadCheckpoint, map[string]any{"name": name},
		neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(database), neo4j.ExecuteQueryWithReadersRouting())
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	if len(res.Records) == 0 {
		return 0, nil
	}
	seq, _, err := neo4j.GetRecordValue[int64](res.Records[0], "seq")
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	return uint64(seq), nil
}
