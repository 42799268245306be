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
