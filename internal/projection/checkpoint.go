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
const cypherLockCheckpoints = planOnce + lockRows + `
WITH row, c
RETURN row.name AS name, c.stream_seq AS seq`

// lockRows locks the checkpoint of each of $c.rows (created at 0 when new), leaving row and c.
const lockRows = `
UNWIND $c.rows AS row
MERGE (c:EngramCheckpoint {name: row.name})
ON CREATE SET c.partition = row.partition, c.stream_seq = 0
WITH row, c
SET c.lock = true
REMOVE c.lock`

// cypherLockAndLookup is the first statement of a step whose plan was made before the lock
// (group.go, commitSteps): it locks the checkpoints as cypherLockCheckpoints does, moves each
// to the step's new position when it is still where the plan assumed (row.expected; a row
// without a seq moves nothing), and then reads what the first segment of the step needs
// (lookupBody), so that one round trip does what took three (lock, look-up, checkpoint
// write). A checkpoint found elsewhere is left as it is and returned as found: the step then
// plans again from it.
const cypherLockAndLookup = planOnce + `
CALL () {` + lockRows + `
  WITH row, c, c.stream_seq AS was
  FOREACH (_ IN CASE WHEN row.seq IS NOT NULL AND was = row.expected THEN [1] ELSE [] END |
    SET c.stream_seq = row.seq, c.updated_at = row.updated_at)
  RETURN collect([row.name, was]) AS checkpoints
}` + lookupBody + `, checkpoints`

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
	return inLockOrder(what, cps, seqOf)
}

// inLockOrder returns the positions seqOf holds for cps, in the order of cps.
func inLockOrder(what string, cps []checkpointLock, seqOf map[string]uint64) ([]uint64, error) {
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

// speculativeLock is a checkpoint to lock whose position a plan assumed: expected, and the
// position the step moves it to (move false: the step applies nothing there).
type speculativeLock struct {
	checkpointLock
	expected uint64
	move     bool
	seq      uint64
	updated  time.Time
}

// lockAndLookup runs cypherLockAndLookup: it locks cps (in lockOrder), moves those found at
// their expected position, and looks up keys. It returns the positions found (as
// lockCheckpoints does) and the graph's state for keys.
func lockAndLookup(ctx context.Context, tx neo4j.ManagedTransaction, cps []speculativeLock, keys *lookupKeys) ([]uint64, *graphState, error) {
	rows := make([]any, len(cps))
	for i, c := range cps {
		row := map[string]any{"name": c.name, "partition": int64(c.partition), "expected": int64(c.expected),
			"seq": nil, "updated_at": nil}
		if c.move {
			row["seq"], row["updated_at"] = int64(c.seq), graphTime(c.updated)
		}
		rows[i] = row
	}
	what := fmt.Sprintf("lock %d checkpoints and look up the batch's ids", len(cps))
	res, err := tx.Run(ctx, cypherLockAndLookup, map[string]any{"c": map[string]any{"rows": rows}, "ids": keys.params()})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	rec, err := res.Single(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	v, _ := rec.Get("checkpoints")
	list, _ := v.([]any)
	seqOf := make(map[string]uint64, len(list))
	for _, e := range list {
		t, _ := e.([]any)
		if len(t) != 2 {
			return nil, nil, fmt.Errorf("%s: checkpoint row %v", what, e)
		}
		name, _ := t[0].(string)
		seq, ok := t[1].(int64)
		if !ok {
			return nil, nil, fmt.Errorf("%s: checkpoint %s at %v", what, name, t[1])
		}
		seqOf[name] = uint64(seq)
	}
	locks := make([]checkpointLock, len(cps))
	for i, c := range cps {
		locks[i] = c.checkpointLock
	}
	out, err := inLockOrder(what, locks, seqOf)
	if err != nil {
		return nil, nil, err
	}
	return out, parseLookup(rec), nil
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
