package projection

import (
	"fmt"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/procstat"
	"github.com/engram-memory/engram/internal/testenv"
)

// BenchmarkApplyTransaction is what one small projector transaction costs Neo4j: batches of
// three events (a message, a preference, a tool call) of a new user each, applied by Apply in
// a managed write transaction, next to a transaction that creates one node. Besides the time
// per transaction it reports Neo4j's CPU per transaction (neo4j-µs/op) when the development
// Neo4j's process is known (var/run/neo4j.pid): on two cores shared with the whole stack,
// that CPU is what a live transaction competes for (docs/projector.md).
func BenchmarkApplyTransaction(b *testing.B) {
	d := testenv.Neo4j(b)
	pid := testenv.DevNeo4jPID()
	ctx := b.Context()
	r := newRecorder()
	threeEvents := func(u string) []Record {
		return []Record{r.rec(u, events.UserUpserted{UserID: events.UserID(u), Identifier: u}),
			r.rec(u, events.MessageAdded{MessageID: events.NewID(), SessionID: "s", Role: "user", Content: "hello there"}),
			r.rec(u, events.PreferenceAdded{PreferenceID: events.NewID(), Category: "c", Preference: "likes Go"})}
	}
	b.Run("one node", func(b *testing.B) {
		cpu0 := procstat.CPU(pid)
		for i := range b.N {
			if _, err := neo4j.ExecuteQuery(ctx, d, "CREATE (:BenchTxCost {i: $i})", map[string]any{"i": i}, neo4j.EagerResultTransformer); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, pid, cpu0)
	})
	b.Cleanup(func() {
		_, _ = neo4j.ExecuteQuery(ctx, d, "MATCH (n:BenchTxCost) DELETE n", nil, neo4j.EagerResultTransformer)
	})
	b.Run("look-up of 3 events", func(b *testing.B) {
		u := testenv.User(b, "txcost-lookup")
		k, err := segmentKeys(threeEvents(u))
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		cpu0 := procstat.CPU(pid)
		for range b.N {
			sess := d.NewSession(ctx, neo4j.SessionConfig{})
			_, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (any, error) {
				res, err := tx.Run(ctx, cypherLookup, map[string]any{"ids": k.params()})
				if err != nil {
					return nil, err
				}
				return res.Consume(ctx)
			})
			_ = sess.Close(ctx)
			if err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, pid, cpu0)
	})
	for _, v := range []struct {
		name  string
		batch func(u string) []Record
	}{
		{"apply a user", func(u string) []Record {
			return []Record{r.rec(u, events.UserUpserted{UserID: events.UserID(u), Identifier: u})}
		}},
		{"apply a user and a message", func(u string) []Record {
			return []Record{r.rec(u, events.UserUpserted{UserID: events.UserID(u), Identifier: u}),
				r.rec(u, events.MessageAdded{MessageID: events.NewID(), SessionID: "s", Role: "user", Content: "hello there"})}
		}},
		{"apply a user and a preference", func(u string) []Record {
			return []Record{r.rec(u, events.UserUpserted{UserID: events.UserID(u), Identifier: u}),
				r.rec(u, events.PreferenceAdded{PreferenceID: events.NewID(), Category: "c", Preference: "likes Go"})}
		}},
		{"apply 3 events", threeEvents},
	} {
		b.Run(v.name, func(b *testing.B) {
			batches := make([][]Record, b.N)
			s := &scope{}
			for i := range batches {
				u := testenv.User(b, fmt.Sprintf("txcost-%d", i))
				tok, _ := events.TenantToken(u)
				s.owners = append(s.owners, tok)
				batches[i] = v.batch(u)
			}
			cleanupScope(b, d, s)
			b.ResetTimer()
			cpu0 := procstat.CPU(pid)
			for i := range b.N {
				sess := d.NewSession(ctx, neo4j.SessionConfig{})
				_, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (Outcome, error) {
					return Apply(ctx, tx, batches[i])
				})
				_ = sess.Close(ctx)
				if err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, pid, cpu0)
		})
	}
}

func reportCPU(b *testing.B, pid int, cpu0 float64) {
	if pid > 0 {
		b.ReportMetric((procstat.CPU(pid)-cpu0)*1e6/float64(b.N), "neo4j-µs/op")
	}
}
