package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/bench"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/testenv"
)

// The projector's per-batch work, measured call by call: decoding stored messages into
// records (projection.Decode) and applying a batch of 500 records of the realistic mix
// (projection.Apply: grouping into runs, building the UNWIND rows, running the statements) in
// a transaction that is rolled back, so the benchmark leaves nothing in the shared Neo4j.
//
//	go test -run '^$' -bench Projection -benchmem ./internal/bench/

func mixRecords(b *testing.B, n int) []projection.Record {
	b.Helper()
	t := bench.Tenants{RunID: "b" + events.NewID()[28:]}
	evs := bench.Mix(t, "bm", n, time.Now().UTC())
	recs := make([]projection.Record, len(evs))
	for i, e := range evs {
		m, err := events.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		r, err := projection.Decode(m.Subject+".0", m.Header, m.Data, uint64(i+1), e.Time, true)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = r
	}
	return recs
}

func BenchmarkProjectionDecode(b *testing.B) {
	t := bench.Tenants{RunID: "b" + events.NewID()[28:]}
	evs := bench.Mix(t, "bm", bench.EventsPerUser*4, time.Now().UTC())
	type stored struct {
		subject string
		m       *events.Event
		header  map[string][]string
		data    []byte
	}
	msgs := make([]stored, len(evs))
	size := 0
	for i, e := range evs {
		m, err := events.Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = stored{subject: m.Subject + ".0", m: e, header: m.Header, data: m.Data}
		size += len(m.Data)
	}
	b.ReportAllocs()
	b.SetBytes(int64(size / len(msgs)))
	i := 0
	for b.Loop() {
		s := msgs[i%len(msgs)]
		if _, err := projection.Decode(s.subject, s.header, s.data, uint64(i+1), s.m.Time, true); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkProjectionApplyBatch500(b *testing.B) {
	d := testenv.Neo4j(b)
	ctx := context.Background()
	if err := graph.ApplySchema(ctx, d, ""); err != nil {
		b.Fatal(err)
	}
	all := mixRecords(b, 500*bench.EventsPerUser/10)
	for _, kind := range []events.Kind{"", events.KindMessageAdded, events.KindPreferenceAdded, events.KindUserUpserted} {
		name := "mix"
		recs := all[:500]
		if kind != "" {
			name, recs = string(kind), nil
			for _, r := range all {
				if r.Event.Kind == kind && len(recs) < 500 {
					recs = append(recs, r)
				}
			}
		}
		b.Run(name, func(b *testing.B) {
			sess := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite})
			defer sess.Close(ctx)
			b.ReportAllocs()
			for b.Loop() {
				tx, err := sess.BeginTransaction(ctx)
				if err != nil {
					b.Fatal(err)
				}
				out, err := projection.Apply(ctx, tx, recs)
				_ = tx.Rollback(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if len(out.Rejected) > 0 {
					b.Fatalf("%d events rejected, first: %v", len(out.Rejected), out.Rejected[0])
				}
			}
			b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
