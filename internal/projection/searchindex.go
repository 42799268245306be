package projection

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// The search indexer. The full-text indexes the searches read are eventually consistent, and
// each transaction's updates to one are a background job of Neo4j's that ends in a refresh of
// the Lucene index: 1.5–2.5 ms of CPU per index per transaction however few nodes it wrote,
// most of what a small projector transaction cost Neo4j (BenchmarkApplyTransaction,
// docs/projector.md). So the indexes cover labels of their own (graph.SearchLabels): the
// projector creates a node with graph.SearchPending, which only the label index holds, and
// the indexer swaps it for the searchable label in batches, one transaction for every
// partition's commits of an interval, so that the refreshes are paid per batch instead of per
// commit.
//
// Read-your-writes holds for the searches through a checkpoint of its own per partition,
// SearchCheckpointName, which the query service's searches wait on as the other reads wait on
// the projector's. A batch reads the projector checkpoints first and then takes every pending
// node: a checkpoint read at S was written by the transaction that created the nodes of the
// events up to S, committed before the read, so the nodes are pending (or already
// searchable) when the batch looks. A batch that took every pending node it found moves each
// search checkpoint to the projector checkpoint it read; one that hit its limit moves none
// and the next batch goes on at once. The claim does not depend on who wrote the nodes:
// indexers of several processes may run at once (they wait on each other's node locks and
// the later finds less to do), a projector that crashed before its indexer ran leaves pending
// nodes that any indexer takes, and a replay's nodes are taken the same way.
//
// What the indexer does not defer: a change of a searchable node's indexed property (an
// entity's description given again) is indexed in the projector's transaction, as before;
// and deleted nodes leave the index in the transaction that deletes them. Both are rare next
// to creations.

// SearchCheckpointName is the name of the search indexer's checkpoint of a projector group's
// partition, "<group>-search-p<partition>": every node of the partition's events up to its
// stream_seq is searchable.
func SearchCheckpointName(group string, partition int) string {
	return group + "-search-p" + strconv.Itoa(partition)
}

// searchBatchLimit bounds the nodes one indexer transaction labels.
const searchBatchLimit = 5000

// cypherIndexPending reads the group's projector checkpoints, then labels up to $limit
// pending nodes searchable.
const cypherIndexPending = `
CALL () {
  MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH $prefix AND c.kind IS NULL AND c.partition IS NOT NULL
  RETURN collect({partition: c.partition, seq: c.stream_seq}) AS checkpoints
}
CALL () {
  MATCH (n:SearchPending)
  WITH n LIMIT $limit
  REMOVE n:SearchPending
  FOREACH (_ IN CASE WHEN n:Message THEN [1] ELSE [] END | SET n:SearchableMessage)
  FOREACH (_ IN CASE WHEN n:Preference THEN [1] ELSE [] END | SET n:SearchablePreference)
  FOREACH (_ IN CASE WHEN n:Entity THEN [1] ELSE [] END | SET n:SearchableEntity)
  FOREACH (_ IN CASE WHEN n:ReasoningStep THEN [1] ELSE [] END | SET n:SearchableStep)
  RETURN count(n) AS labeled
}
RETURN checkpoints, labeled`

// cypherSearchCheckpoints moves each search checkpoint forward (never back: an indexer that
// read an older projector checkpoint may commit after one that read a newer).
const cypherSearchCheckpoints = `
UNWIND $rows AS row
MERGE (c:EngramCheckpoint {name: row.name})
ON CREATE SET c.partition = row.partition, c.kind = 'search', c.stream_seq = 0
WITH row, c WHERE row.seq > c.stream_seq
SET c.stream_seq = row.seq, c.updated_at = datetime()`

// IndexPending runs one indexer batch for group in database: it makes up to searchBatchLimit
// pending nodes searchable and, when that was all of them, moves the group's search
// checkpoints to its projector checkpoints. It returns the nodes it labeled and whether the
// checkpoints moved (false: more are pending; run it again).
func IndexPending(ctx context.Context, d neo4j.DriverWithContext, database, group string) (int, bool, error) {
	type result struct {
		labeled int
		claimed bool
	}
	sess := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite, DatabaseName: database})
	defer func() { _ = sess.Close(context.WithoutCancel(ctx)) }()
	r, err := neo4j.ExecuteWrite(ctx, sess,
		func(tx neo4j.ManagedTransaction) (result, error) {
			res, err := tx.Run(ctx, cypherIndexPending, map[string]any{"prefix": group + "-p", "limit": int64(searchBatchLimit)})
			if err != nil {
				return result{}, err
			}
			rec, err := res.Single(ctx)
			if err != nil {
				return result{}, err
			}
			labeled, _ := rec.Values[1].(int64)
			if labeled >= searchBatchLimit {
				return result{labeled: int(labeled)}, nil
			}
			cps, _ := rec.Values[0].([]any)
			rows := make([]any, 0, len(cps))
			for _, c := range cps {
				m, _ := c.(map[string]any)
				part, _ := m["partition"].(int64)
				seq, _ := m["seq"].(int64)
				rows = append(rows, map[string]any{"name": SearchCheckpointName(group, int(part)), "partition": part, "seq": seq})
			}
			if _, err := tx.Run(ctx, cypherSearchCheckpoints, map[string]any{"rows": rows}); err != nil {
				return result{}, err
			}
			return result{labeled: int(labeled), claimed: true}, nil
		})
	if err != nil {
		return 0, false, fmt.Errorf("search indexer: %w", err)
	}
	return r.labeled, r.claimed, nil
}

// IndexAllPending runs indexer batches until no node is pending (replay, rebuilds, tests).
func IndexAllPending(ctx context.Context, d neo4j.DriverWithContext, database, group string) error {
	for {
		_, claimed, err := IndexPending(ctx, d, database, group)
		if err != nil || claimed {
			return err
		}
	}
}

// searchIndexer runs IndexPending in a projector process: after a commit of any of its
// partitions (kick), at most once per interval, so that one batch takes the commits of every
// partition of the interval; and once per idle period, for nodes another process or a crash
// left pending.
type searchIndexer struct {
	driver   neo4j.DriverWithContext
	database string
	group    string
	interval time.Duration
	idle     time.Duration
	log      *slog.Logger
	metrics  *Metrics
	kicks    chan struct{}
}

// searchInterval is the least time between two batches of one process: a search behind a
// consistency token waits up to about that much longer than the other reads, and the batches
// (each with a refresh of every full-text index it touched) cost at most 40 a second.
const searchInterval = 25 * time.Millisecond

func newSearchIndexer(d neo4j.DriverWithContext, database, group string, log *slog.Logger, m *Metrics) *searchIndexer {
	return &searchIndexer{driver: d, database: database, group: group, interval: searchInterval, idle: 5 * time.Second,
		log: log.With("task", "search-indexer"), metrics: m, kicks: make(chan struct{}, 1)}
}

// kick asks for a batch; it never blocks.
func (s *searchIndexer) kick() {
	if s == nil {
		return
	}
	select {
	case s.kicks <- struct{}{}:
	default:
	}
}

// run indexes until ctx ends.
func (s *searchIndexer) run(ctx context.Context) {
	backoff := Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	failures := 0
	idle := time.NewTimer(0) // one batch at start: what a crash left pending
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kicks:
		case <-idle.C:
		}
		start := time.Now()
		labeled, claimed, err := IndexPending(ctx, s.driver, s.database, s.group)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			if failures == 1 || failures%20 == 0 {
				s.log.Warn("search indexer batch failed; retrying", "failures", failures, "err", err)
			}
			s.kick()
			if !sleepCtx(ctx, backoff.Delay(failures)) {
				return
			}
			continue
		}
		failures = 0
		if s.metrics != nil {
			s.metrics.searchIndexed.Add(float64(labeled))
			s.metrics.searchBatch.Observe(time.Since(start).Seconds())
		}
		if !claimed {
			s.kick() // more pending: go on after the interval
		}
		idle.Reset(s.idle)
		if !sleepCtx(ctx, s.interval) {
			return
		}
	}
}

// sleepCtx waits d or until ctx ends (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
