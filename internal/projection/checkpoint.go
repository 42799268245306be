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
// the value read before the wait.)
const cypherLockCheckpoint = `
MERGE (c:EngramCheckpoint {name: $name})
ON CREATE SET c.partition = $partition, c.stream_seq = 0
WITH c
SET c.lock = true
REMOVE c.lock
WITH c
RETURN c.stream_seq AS seq`

const cypherWriteCheckpoint = `
MATCH (c:EngramCheckpoint {name: $name})
SET c.stream_seq = $seq, c.updated_at = $updated_at`

const cypherReadCheckpoint = `
MATCH (c:EngramCheckpoint {name: $name})
RETURN c.stream_seq AS seq`

// LockCheckpoint returns the checkpoint of name (0 for a new one) and holds its write lock
// until tx ends, so that no other transaction applies the same partition meanwhile.
func LockCheckpoint(ctx context.Context, tx neo4j.ManagedTransaction, name string, partition int) (uint64, error) {
	res, err := tx.Run(ctx, cypherLockCheckpoint, map[string]any{"name": name, "partition": int64(partition)})
	if err != nil {
		return 0, fmt.Errorf("lock checkpoint %s: %w", name, err)
	}
	rec, err := res.Single(ctx)
	if err != nil {
		return 0, fmt.Errorf("lock checkpoint %s: %w", name, err)
	}
	seq, _, err := neo4j.GetRecordValue[int64](rec, "seq")
	if err != nil {
		return 0, fmt.Errorf("lock checkpoint %s: %w", name, err)
	}
	return uint64(seq), nil
}

// WriteCheckpoint records that every event of the partition up to seq is applied; updated is
// the stored time of the last one (never the database clock). Call it in the transaction of
// the effects, after LockCheckpoint.
func WriteCheckpoint(ctx context.Context, tx neo4j.ManagedTransaction, name string, seq uint64, updated time.Time) error {
	res, err := tx.Run(ctx, cypherWriteCheckpoint, map[string]any{"name": name, "seq": int64(seq), "updated_at": graphTime(updated)})
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", name, err)
	}
	if _, err := res.Consume(ctx); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", name, err)
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
