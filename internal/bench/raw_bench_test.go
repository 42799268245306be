package bench

import (
	"context"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/testenv"
)

// BenchmarkRawBatch500 is the raw Neo4j baseline's transaction for the same 500 events of the
// mix that BenchmarkProjectionApplyBatch500 applies, also rolled back: side by side they show
// what the projector's Cypher costs per transaction without any concurrency.
func BenchmarkRawBatch500(b *testing.B) {
	d := testenv.Neo4j(b)
	ctx := context.Background()
	if err := graph.ApplySchema(ctx, d, ""); err != nil {
		b.Fatal(err)
	}
	t := Tenants{RunID: "b" + events.NewID()[28:]}
	all := Mix(t, "bm", 500*EventsPerUser/10, time.Now().UTC())
	for _, kind := range []events.Kind{"", events.KindMessageAdded, events.KindPreferenceAdded, events.KindUserUpserted} {
		name := "mix"
		evs := all[:500]
		if kind != "" {
			name, evs = string(kind), nil
			for _, e := range all {
				if k, _ := events.KindOf(e.Data); k == kind && len(evs) < 500 {
					evs = append(evs, e)
				}
			}
		}
		b.Run(name, func(b *testing.B) { rawBatchBench(b, d, evs) })
	}
}

func rawBatchBench(b *testing.B, d neo4j.DriverWithContext, evs []*events.Event) {
	ctx := context.Background()
	batch, err := buildRawBatch(evs, &rawState{lastMessage: map[string]string{}}, 1)
	if err != nil {
		b.Fatal(err)
	}
	sess := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite})
	defer sess.Close(ctx)
	b.ReportAllocs()
	for b.Loop() {
		tx, err := sess.BeginTransaction(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for i, stmt := range batch.stmts {
			res, err := tx.Run(ctx, stmt, map[string]any{"rows": batch.rows[i]})
			if err == nil {
				_, err = res.Consume(ctx)
			}
			if err != nil {
				_ = tx.Rollback(ctx)
				b.Fatal(err)
			}
		}
		_ = tx.Rollback(ctx)
	}
	b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "events/s")
}
