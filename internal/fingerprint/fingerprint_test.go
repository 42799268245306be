package fingerprint

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/testenv"
)

func TestFormatValue(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	tests := []struct {
		v    any
		want string
	}{
		{nil, "null"},
		{"a\"b", `"a\"b"`},
		{int64(3), "3"},
		{3.0, "3.0"},
		{0.5, "0.5"},
		{true, "true"},
		{at, "datetime(2026-01-02T02:04:05.000000006Z)"},
		{[]any{int64(1), "x"}, `[1, "x"]`},
		{map[string]any{"b": int64(1), "a": "x"}, `{a: "x", b: 1}`},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v); got != tt.want {
			t.Errorf("formatValue(%#v) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	a := Fingerprint{Lines: []string{"N 1", "N 2", "R x"}, Hash: "a", Nodes: 2, Relationships: 1}
	b := Fingerprint{Lines: []string{"N 1", "N 3", "R x"}, Hash: "b", Nodes: 2, Relationships: 1}
	d := Diff(a, b, 10)
	if !strings.Contains(d, "1 lines only in a:\n  N 2") || !strings.Contains(d, "1 lines only in b:\n  N 3") {
		t.Errorf("diff:\n%s", d)
	}
	if Diff(a, a, 10) != "" || Compare(a, a, 1) != nil {
		t.Error("equal fingerprints differ")
	}
	if err := Compare(a, b, 1); !errors.Is(err, ErrDiffers) {
		t.Errorf("Compare: %v", err)
	}
	many := Fingerprint{Lines: []string{"a", "b", "c", "d"}, Hash: "m"}
	if d := Diff(many, Fingerprint{Hash: "e"}, 2); !strings.Contains(d, "... 2 more") {
		t.Errorf("truncated diff:\n%s", d)
	}
}

// TestOf fingerprints a small graph of one owner: stable when nothing changes, different
// after one property changes, with a diff that names the change.
func TestOf(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testenv.Neo4j(t)
	owner := token(t, testenv.User(t, "fp"))
	tool := "fp-tool-" + events.NewID()
	t.Cleanup(func() {
		for _, l := range graph.OwnedLabels {
			_, _ = neo4j.ExecuteQuery(context.Background(), d, "MATCH (n:"+l+" {owner: $owner}) DETACH DELETE n",
				map[string]any{"owner": owner}, neo4j.EagerResultTransformer)
		}
		_, _ = neo4j.ExecuteQuery(context.Background(), d, `MATCH (t:Tool {name: $tool}) DETACH DELETE t`,
			map[string]any{"tool": tool}, neo4j.EagerResultTransformer)
	})
	const build = `
		CREATE (u:User {id: $p + '-u', identifier: $p, owner: $p, created_at: $at})
		CREATE (u)-[:HAS_PREFERENCE]->(p:Preference {id: $p + '-p', owner: $p, confidence: 1.0})
		CREATE (p)-[:APPLIES_TO]->(:Entity {id: $p + '-e', name: 'Acme', owner: $p})
		CREATE (u)-[:HAS_TRACE]->(:ReasoningTrace {id: $p + '-t', owner: $p})-[:HAS_STEP {order: 1}]->(s:ReasoningStep {id: $p + '-s', owner: $p})
		CREATE (s)-[:USES_TOOL]->(c:ToolCall {id: $p + '-c', owner: $p})
		MERGE (tool:Tool {name: $tool}) ON CREATE SET tool.total_calls = 1
		CREATE (c)-[:INSTANCE_OF]->(tool)`
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := neo4j.ExecuteQuery(ctx, d, build, map[string]any{"p": owner, "at": at, "tool": tool}, neo4j.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
	scope := Scope{Owners: []string{owner}}
	fa, err := Of(ctx, d, "", scope)
	if err != nil {
		t.Fatal(err)
	}
	if fa.Nodes != 7 || fa.Relationships != 6 {
		t.Fatalf("fingerprint: %s\n%s", fa, strings.Join(fa.Lines, "\n"))
	}
	again, err := Of(ctx, d, "", scope)
	if err != nil || !again.Equal(fa) {
		t.Fatalf("fingerprint not stable: %v\n%s", err, Diff(fa, again, 10))
	}
	if _, err := neo4j.ExecuteQuery(ctx, d, `MATCH (p:Preference {owner: $owner}) SET p.confidence = 0.5`,
		map[string]any{"owner": owner}, neo4j.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
	changed, err := Of(ctx, d, "", scope)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Equal(fa) {
		t.Fatal("a changed property did not change the fingerprint")
	}
	if diff := Diff(fa, changed, 5); !strings.Contains(diff, "confidence: 1.0") || !strings.Contains(diff, "confidence: 0.5") {
		t.Errorf("diff does not show the change:\n%s", diff)
	}
	ignored, err := Of(ctx, d, "", Scope{Owners: []string{owner}, IgnoreProperties: []string{"confidence"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ignored.Lines {
		if strings.Contains(l, "confidence") {
			t.Errorf("ignored property in %s", l)
		}
	}
}

func token(t *testing.T, user string) string {
	t.Helper()
	tok, err := events.TenantToken(user)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
