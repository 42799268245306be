package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/stream"
)

// deleteOwned removes up to 10000 nodes of one label whose owner starts with the run's
// prefix; run until it deletes nothing. The label is one of graph.OwnedLabels, never user input.
func deleteOwnedCypher(label string) string {
	return "MATCH (n:" + label + ") WHERE n.owner STARTS WITH $prefix WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS n"
}

const (
	deleteTools       = "MATCH (t:Tool) WHERE t.name STARTS WITH $prefix WITH t LIMIT 10000 DETACH DELETE t RETURN count(*) AS n"
	deleteCheckpoints = "MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH $prefix DETACH DELETE c RETURN count(*) AS n"
)

// tenantLog remembers which tenants of each group the run wrote events for, so cleanup can
// purge exactly their subjects.
type tenantLog struct {
	mu     sync.Mutex
	groups map[string]int // group -> users 0..n-1
}

func (l *tenantLog) used(group string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.groups == nil {
		l.groups = map[string]int{}
	}
	l.groups[group] = max(l.groups[group], n)
}

func (l *tenantLog) get(group string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.groups[group]
}

func (l *tenantLog) all() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.groups))
	for g, n := range l.groups {
		out[g] = n
	}
	l.groups = nil
	return out
}

// DeleteGraph removes every node whose owner starts with prefix, and the tools and checkpoints
// whose names do: with Tenants.OwnerPrefix, everything the run created; with
// Tenants.GroupPrefix, one group's nodes.
func DeleteGraph(ctx context.Context, d neo4j.DriverWithContext, db, prefix string) (int64, error) {
	var total int64
	loop := func(cypher string) error {
		for {
			res, err := neo4j.ExecuteQuery(ctx, d, cypher, map[string]any{"prefix": prefix},
				neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(db))
			if err != nil {
				return err
			}
			n := int64(0)
			if len(res.Records) > 0 {
				v, _ := res.Records[0].Get("n")
				n, _ = v.(int64)
			}
			total += n
			if n == 0 {
				return nil
			}
		}
	}
	// Leaves first, so each DETACH DELETE has fewer relationships to visit.
	for _, l := range []string{"ToolCall", "ReasoningStep", "ReasoningTrace", "Message", "Conversation", "Preference", "Entity", "User"} {
		if err := loop(deleteOwnedCypher(l)); err != nil {
			return total, fmt.Errorf("delete the run's %s nodes: %w", l, err)
		}
	}
	if err := loop(deleteTools); err != nil {
		return total, fmt.Errorf("delete the run's tools: %w", err)
	}
	if err := loop(deleteCheckpoints); err != nil {
		return total, fmt.Errorf("delete the run's checkpoints: %w", err)
	}
	return total, nil
}

// CountGraph counts the nodes whose owner (or, for tools and checkpoints, name) starts with
// prefix: 0 after cleanup.
func CountGraph(ctx context.Context, d neo4j.DriverWithContext, db, prefix string) (int64, error) {
	var total int64
	for _, l := range graph.OwnedLabels {
		res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (n:"+l+") WHERE n.owner STARTS WITH $prefix RETURN count(n) AS n",
			map[string]any{"prefix": prefix}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(db))
		if err != nil {
			return 0, err
		}
		v, _ := res.Records[0].Get("n")
		n, _ := v.(int64)
		total += n
	}
	for _, q := range []string{
		"MATCH (t:Tool) WHERE t.name STARTS WITH $prefix RETURN count(t) AS n",
		"MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH $prefix RETURN count(c) AS n",
	} {
		res, err := neo4j.ExecuteQuery(ctx, d, q, map[string]any{"prefix": prefix}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(db))
		if err != nil {
			return 0, err
		}
		v, _ := res.Records[0].Get("n")
		n, _ := v.(int64)
		total += n
	}
	return total, nil
}

// PurgeTenants removes the stream messages of users 0..n-1 of group (mem.<token>.>), eight
// purges at a time.
func PurgeTenants(ctx context.Context, js jetstream.JetStream, t Tenants, group string, n int) error {
	if n == 0 {
		return nil
	}
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return fmt.Errorf("purge: stream %s: %w", stream.MemoryStream, err)
	}
	work := make(chan int)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				filter, err := events.TenantSubjects(t.User(group, i))
				if err == nil {
					err = s.Purge(ctx, jetstream.WithPurgeSubject(filter))
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("purge %s: %w", t.User(group, i), err))
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more purge errors", len(errs)-3))
	}
	return errors.Join(errs...)
}

// CountStream counts the stream messages of users 0..n-1 of group.
func CountStream(ctx context.Context, js jetstream.JetStream, t Tenants, group string, n int) (uint64, error) {
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return 0, err
	}
	var total uint64
	for i := range n {
		filter, err := events.TenantSubjects(t.User(group, i))
		if err != nil {
			return 0, err
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
		if err != nil {
			return 0, err
		}
		for _, c := range info.State.Subjects {
			total += c
		}
	}
	return total, nil
}
