package graph_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/testenv"
)

func TestEveryRuleIsNamed(t *testing.T) {
	t.Parallel()
	names := graph.SchemaNames()
	if len(names) != len(graph.Schema) {
		t.Fatalf("%d names for %d statements: every statement must be CREATE CONSTRAINT|INDEX|FULLTEXT INDEX <name> IF NOT EXISTS", len(names), len(graph.Schema))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("rule %s is created twice", n)
		}
		seen[n] = true
	}
}

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"connectivity, wrapped", fmt.Errorf("query user: %w", &neo4j.ConnectivityError{Inner: refused}), true},
		{"retries exhausted on connectivity", fmt.Errorf("query user: %w", &neo4j.TransactionExecutionLimit{
			Cause: "timeout", Errors: []error{&neo4j.ConnectivityError{Inner: refused}, context.DeadlineExceeded}}), true},
		{"retries exhausted on something else", &neo4j.TransactionExecutionLimit{
			Cause: "timeout", Errors: []error{&neo4j.Neo4jError{Code: "Neo.TransientError.Transaction.DeadlockDetected"}}}, false},
		{"database unavailable", fmt.Errorf("x: %w", &neo4j.Neo4jError{Code: "Neo.TransientError.General.DatabaseUnavailable"}), true},
		{"dial error", fmt.Errorf("x: %w", refused), true},
		{"syntax error", &neo4j.Neo4jError{Code: "Neo.ClientError.Statement.SyntaxError"}, false},
		{"deadline alone", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{"deadline while waiting for a connection", fmt.Errorf("x: %w", &neo4j.ConnectivityError{Inner: context.DeadlineExceeded}), false},
		{"other", errors.New("boom"), false},
	} {
		if got := graph.IsUnavailable(c.err); got != c.want {
			t.Errorf("%s: IsUnavailable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// TestApplySchemaConcurrently is a fresh start of the stack: several services, each with its
// own driver, apply the schema to an empty Neo4j at the same instant. Every one must succeed
// and leave every rule in place. Rounds repeat it on a database whose rules were dropped, since
// one round may happen not to interleave (with the "already exists" answers not tolerated, 12
// appliers lost the race in the first round where 6 did not in three).
func TestApplySchemaConcurrently(t *testing.T) {
	t.Parallel()
	p := testenv.StartNeo4jProcess(t)
	const appliers, rounds = 12, 5
	drivers := make([]neo4j.DriverWithContext, appliers)
	for i := range drivers {
		drivers[i] = p.Driver(t)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	for round := range rounds {
		start := make(chan struct{})
		errs := make([]error, appliers)
		var wg sync.WaitGroup
		for i, d := range drivers {
			wg.Go(func() {
				<-start
				errs[i] = graph.ApplySchema(ctx, d, "")
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, applier %d: %v", round, i, err)
			}
		}
		have := ruleNames(t, ctx, drivers[0])
		for _, n := range graph.SchemaNames() {
			if !have[n] {
				t.Errorf("round %d: rule %s missing", round, n)
			}
		}
		checkFullText(t, ctx, drivers[0], fmt.Sprintf("round %d", round))
		if t.Failed() {
			return
		}
		for _, n := range graph.SchemaNames() {
			// A constraint owns its index of the same name: drop constraints first.
			for _, stmt := range []string{"DROP CONSTRAINT " + n + " IF EXISTS", "DROP INDEX " + n + " IF EXISTS"} {
				if _, err := neo4j.ExecuteQuery(ctx, drivers[0], stmt, nil, neo4j.EagerResultTransformer); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
		}
		if left := ruleNames(t, ctx, drivers[0]); len(left) > 0 {
			t.Fatalf("rules left after dropping: %v", left)
		}
	}
}

// checkFullText fails unless each of the schema's full-text indexes is online and eventually
// consistent.
func checkFullText(t *testing.T, ctx context.Context, d neo4j.DriverWithContext, when string) {
	t.Helper()
	res, err := neo4j.ExecuteQuery(ctx, d, `SHOW FULLTEXT INDEXES YIELD name, state, options
RETURN name, state, coalesce(options.indexConfig['fulltext.eventually_consistent'], false) AS ec`, nil, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, rec := range res.Records {
		name, state, ec := rec.Values[0], rec.Values[1], rec.Values[2]
		found++
		if state != "ONLINE" || ec != true {
			t.Errorf("%s: full-text index %v is %v, eventually consistent %v; want ONLINE and true", when, name, state, ec)
		}
	}
	if found != 4 {
		t.Errorf("%s: %d full-text indexes, want the schema's 4", when, found)
	}
}

// TestApplySchemaMakesFullTextEventuallyConsistent: a database whose full-text indexes an
// earlier version created synchronous (same names, no options) gets them eventually consistent
// when the services apply the schema, several at once, and the indexes hold what the graph
// had before.
func TestApplySchemaMakesFullTextEventuallyConsistent(t *testing.T) {
	t.Parallel()
	p := testenv.StartNeo4jProcess(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	drivers := make([]neo4j.DriverWithContext, 4)
	for i := range drivers {
		drivers[i] = p.Driver(t)
	}
	d := drivers[0]
	for _, stmt := range []string{
		"CREATE FULLTEXT INDEX message_search IF NOT EXISTS FOR (n:Message) ON EACH [n.content, n.owner]",
		"CREATE FULLTEXT INDEX entity_search IF NOT EXISTS FOR (n:Entity) ON EACH [n.name, n.description, n.owner]",
		"CREATE (:Message {id: 'm1', content: 'espresso before noon', owner: 'o1'})",
		"CALL db.awaitIndexes(300)",
	} {
		if _, err := neo4j.ExecuteQuery(ctx, d, stmt, nil, neo4j.EagerResultTransformer); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	errs := make([]error, len(drivers))
	var wg sync.WaitGroup
	for i, d := range drivers {
		wg.Go(func() { errs[i] = graph.ApplySchema(ctx, d, "") })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("applier %d: %v", i, err)
		}
	}
	checkFullText(t, ctx, d, "after the migration")
	res, err := neo4j.ExecuteQuery(ctx, d, graph.AwaitFullText+`
CALL db.index.fulltext.queryNodes('message_search', 'content:espresso') YIELD node RETURN node.id AS id`, nil, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 || res.Records[0].Values[0] != "m1" {
		t.Errorf("search of the migrated index: %v, want the message written before", res.Records)
	}
	// A write is found by the search that follows it: the search waits for the index.
	if _, err := neo4j.ExecuteQuery(ctx, d, "CREATE (:Message {id: 'm2', content: 'ristretto after lunch', owner: 'o1'})", nil, neo4j.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
	res, err = neo4j.ExecuteQuery(ctx, d, graph.AwaitFullText+`
CALL db.index.fulltext.queryNodes('message_search', 'content:ristretto') YIELD node RETURN node.id AS id`, nil, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithReadersRouting())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 {
		t.Errorf("search right after the write: %v, want m2", res.Records)
	}
}

// ruleNames are the names of the constraints and indexes of d's default database, but the
// token lookup indexes every database has.
func ruleNames(t *testing.T, ctx context.Context, d neo4j.DriverWithContext) map[string]bool {
	t.Helper()
	have := map[string]bool{}
	for _, show := range []string{"SHOW CONSTRAINTS YIELD name", "SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP'"} {
		res, err := neo4j.ExecuteQuery(ctx, d, show, nil, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatalf("%s: %v", show, err)
		}
		for _, rec := range res.Records {
			have[rec.Values[0].(string)] = true
		}
	}
	return have
}
