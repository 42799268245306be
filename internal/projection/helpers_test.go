package projection

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/testenv"
)

var schemaOnce sync.Once

// testNeo4j returns a driver for the shared Neo4j with Engram's schema applied.
func testNeo4j(t testing.TB) neo4j.DriverWithContext {
	t.Helper()
	d := testenv.Neo4j(t)
	var err error
	schemaOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err = graph.ApplySchema(ctx, d, "")
	})
	if err != nil {
		t.Fatalf("apply schema: %v", err)
	}
	return d
}

// tenant is a test user and its owner token.
type tenant struct{ user, owner string }

func newTenant(t testing.TB, name string) tenant {
	t.Helper()
	u := testenv.User(t, name)
	tok, err := events.TenantToken(u)
	if err != nil {
		t.Fatal(err)
	}
	return tenant{user: u, owner: tok}
}

// scope is what a test owns on the shared database: its tenants and its tool names.
type scope struct {
	owners []string
	tools  []string
}

func (s *scope) add(ts ...tenant) {
	for _, t := range ts {
		s.owners = append(s.owners, t.owner)
	}
}

func (s scope) fp() fingerprint.Scope { return fingerprint.Scope{Owners: s.owners, Tools: s.tools} }

// purge deletes everything s owns (and its Tool nodes) without touching anyone else's data.
func purge(ctx context.Context, t testing.TB, d neo4j.DriverWithContext, s scope) {
	t.Helper()
	for _, label := range graph.OwnedLabels {
		if _, err := neo4j.ExecuteQuery(ctx, d, "UNWIND $owners AS o MATCH (n:"+label+" {owner: o}) DETACH DELETE n",
			map[string]any{"owners": toAnySlice(s.owners)}, neo4j.EagerResultTransformer); err != nil {
			t.Errorf("purge %s: %v", label, err)
		}
	}
	if _, err := neo4j.ExecuteQuery(ctx, d, "MATCH (t:Tool) WHERE t.name IN $tools DETACH DELETE t",
		map[string]any{"tools": toAnySlice(s.tools)}, neo4j.EagerResultTransformer); err != nil {
		t.Errorf("purge tools: %v", err)
	}
}

// cleanupScope purges s when the test ends.
func cleanupScope(t testing.TB, d neo4j.DriverWithContext, s *scope) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		purge(ctx, t, d, *s)
	})
}

// cleanupCheckpoints deletes a group's checkpoints when the test ends.
func cleanupCheckpoints(t testing.TB, d neo4j.DriverWithContext, group string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = neo4j.ExecuteQuery(ctx, d, "MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH $prefix DELETE c",
			map[string]any{"prefix": group + "-p"}, neo4j.EagerResultTransformer)
	})
}

func toAnySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// recorder makes Records as if the stream had stored the events in order: increasing
// sequences and stored times, event times a little earlier.
type recorder struct {
	seq  uint64
	base time.Time
}

func newRecorder() *recorder {
	return &recorder{base: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (r *recorder) rec(user string, data any) Record {
	r.seq++
	kind, ok := events.KindOf(data)
	if !ok {
		panic("unknown data type")
	}
	at := r.base.Add(time.Duration(r.seq) * time.Second)
	ev := &events.Event{ID: events.NewID(), Source: "/test", Kind: kind, User: user, Time: at, Data: data}
	tok, _ := events.TenantToken(user)
	return Record{Event: ev, Sequence: r.seq, Stored: at.Add(250 * time.Millisecond),
		Subject: events.SubjectRoot + "." + tok + "." + string(kind) + ".0"}
}

// apply applies batch in one managed write transaction.
func apply(ctx context.Context, t testing.TB, d neo4j.DriverWithContext, batch []Record) Outcome {
	t.Helper()
	sess := d.NewSession(ctx, neo4j.SessionConfig{})
	defer func() { _ = sess.Close(ctx) }()
	out, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (Outcome, error) {
		return Apply(ctx, tx, batch)
	})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return out
}

// query runs a read and returns its records.
func query(ctx context.Context, t testing.TB, d neo4j.DriverWithContext, cypher string, params map[string]any) []*neo4j.Record {
	t.Helper()
	res, err := neo4j.ExecuteQuery(ctx, d, cypher, params, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatalf("query %q: %v", cypher, err)
	}
	return res.Records
}

// value runs a read returning one row and returns its column "v".
func value[T any](ctx context.Context, t testing.TB, d neo4j.DriverWithContext, cypher string, params map[string]any) T {
	t.Helper()
	recs := query(ctx, t, d, cypher, params)
	if len(recs) != 1 {
		t.Fatalf("query %q: %d rows, want 1", cypher, len(recs))
	}
	raw, _ := recs[0].Get("v")
	var zero T
	if raw == nil {
		return zero
	}
	v, ok := raw.(T)
	if !ok {
		t.Fatalf("query %q: v is %T", cypher, raw)
	}
	return v
}

func fingerprintOf(ctx context.Context, t testing.TB, d neo4j.DriverWithContext, s scope) fingerprint.Fingerprint {
	t.Helper()
	f, err := fingerprint.Of(ctx, d, "", s.fp())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ptr[T any](v T) *T { return &v }
