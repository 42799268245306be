package projection

import (
	"context"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/testenv"
)

// applyWithCheckpoint applies batch and moves the checkpoint of name to the batch's last
// sequence in one transaction, as a projector's step does.
func applyWithCheckpoint(ctx context.Context, t *testing.T, d neo4j.DriverWithContext, name string, batch []Record) {
	t.Helper()
	sess := d.NewSession(ctx, neo4j.SessionConfig{})
	defer func() { _ = sess.Close(ctx) }()
	_, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (bool, error) {
		if _, err := LockCheckpoint(ctx, tx, name, 0); err != nil {
			return false, err
		}
		if _, err := Apply(ctx, tx, batch); err != nil {
			return false, err
		}
		last := batch[len(batch)-1]
		return true, WriteCheckpoint(ctx, tx, name, last.Sequence, last.Stored)
	})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// TestSearchIndexerMakesAppliedNodesSearchable: the projector creates the nodes the searches
// read pending (graph.SearchPending), without their full-text indexes' label; a batch of the
// search indexer swaps the one for the other, the full-text indexes then find them, the
// group's search checkpoint is where its projector checkpoint was, and the graph's
// fingerprint is what it was before (the labels are index state).
func TestSearchIndexerMakesAppliedNodesSearchable(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	a := newTenant(t, "search-indexer")
	var s scope
	s.add(a)
	cleanupScope(t, d, &s)
	group := "sitest-" + events.NewID()[20:]
	cleanupCheckpoints(t, d, group)
	word := "zq" + events.NewID()[22:]
	r := newRecorder()
	trace, step := events.NewID(), events.NewID()
	batch := []Record{
		r.rec(a.user, events.MessageAdded{MessageID: events.NewID(), SessionID: "s1", Role: "user", Content: "find a " + word + " team"}),
		r.rec(a.user, events.PreferenceAdded{PreferenceID: events.NewID(), Category: "tone", Preference: "formal " + word,
			AppliesTo: []events.EntityRef{{Name: word + " Health", Type: "Industry"}}}),
		r.rec(a.user, events.TraceStarted{TraceID: trace, SessionID: "s1", Task: "staff"}),
		r.rec(a.user, events.TraceStepAdded{StepID: step, TraceID: trace, StepNumber: 1, Thought: "search the " + word + " pool"}),
	}
	applyWithCheckpoint(ctx, t, d, CheckpointName(group, 0), batch)

	const labelsOf = `
UNWIND $owners AS o
CALL (o) {
    MATCH (n:Message {owner: o}) RETURN n
  UNION ALL MATCH (n:Preference {owner: o}) RETURN n
  UNION ALL MATCH (n:Entity {owner: o}) RETURN n
  UNION ALL MATCH (n:ReasoningStep {owner: o}) RETURN n
}
RETURN labels(n)[0] AS label, n:SearchPending AS pending,
       any(l IN labels(n) WHERE l STARTS WITH 'Searchable') AS searchable ORDER BY label`
	params := map[string]any{"owners": []any{a.owner}}
	recs := query(ctx, t, d, labelsOf, params)
	if len(recs) != 4 {
		t.Fatalf("%d nodes of the searched labels, want 4 (message, preference, entity, step)", len(recs))
	}
	for _, rec := range recs {
		// Another test's indexer may have taken them already: pending or searchable, not both.
		if pending, searchable := rec.Values[1] == true, rec.Values[2] == true; pending == searchable {
			t.Errorf("%v after the projector's transaction: pending %v, searchable %v; want one of them", rec.Values[0], pending, searchable)
		}
	}
	before := fingerprintOf(ctx, t, d, s)

	if err := IndexAllPending(ctx, d, "", group); err != nil {
		t.Fatal(err)
	}
	for _, rec := range query(ctx, t, d, labelsOf, params) {
		if rec.Values[1] != false || rec.Values[2] != true {
			t.Errorf("%v after the indexer: pending %v, searchable %v; want searchable only", rec.Values[0], rec.Values[1], rec.Values[2])
		}
	}
	got := value[int64](ctx, t, d, "MATCH (c:EngramCheckpoint {name: $name}) RETURN c.stream_seq AS v",
		map[string]any{"name": SearchCheckpointName(group, 0)})
	if want := int64(batch[len(batch)-1].Sequence); got != want {
		t.Errorf("search checkpoint %d, want the projector checkpoint %d", got, want)
	}
	for _, idx := range []string{"message_search", "preference_search", "entity_search", "reasoning_step_search"} {
		n := value[int64](ctx, t, d, graph.AwaitFullText+`
CALL db.index.fulltext.queryNodes($index, $q) YIELD node WHERE node.owner = $owner RETURN count(node) AS v`,
			map[string]any{"index": idx, "q": word, "owner": a.owner})
		if n != 1 {
			t.Errorf("%s finds %d of the tenant's nodes with %q, want 1", idx, n, word)
		}
	}
	if after := fingerprintOf(ctx, t, d, s); after.Hash != before.Hash {
		t.Errorf("the indexer changed the fingerprint:\n%v\n%v", before.Lines, after.Lines)
	}
}

// TestSearchIndexerClaimsOnlyWhatItTook runs on a Neo4j of its own, where nothing else makes
// nodes pending: a pending node is not found by a search; a batch that hit its limit moves no
// search checkpoint, the one that took the rest does; and a search checkpoint never moves
// back when a batch read an older projector checkpoint.
func TestSearchIndexerClaimsOnlyWhatItTook(t *testing.T) {
	t.Parallel()
	p := testenv.StartNeo4jProcess(t)
	d := p.Driver(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := graph.ApplySchema(ctx, d, ""); err != nil {
		t.Fatal(err)
	}
	run := func(q string, params map[string]any) []*neo4j.Record {
		t.Helper()
		res, err := neo4j.ExecuteQuery(ctx, d, q, params, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return res.Records
	}
	run(`UNWIND range(1, $n) AS i CREATE (:Message:SearchPending {id: 'm' + i, content: 'espresso ' + i, owner: 'o1'})`,
		map[string]any{"n": searchBatchLimit + 1})
	run(`CREATE (:EngramCheckpoint {name: 'g-p3', partition: 3, stream_seq: 7})`, nil)
	found := func() int64 {
		recs := run(graph.AwaitFullText+` CALL db.index.fulltext.queryNodes('message_search', 'espresso') YIELD node RETURN count(node) AS n`, nil)
		return recs[0].Values[0].(int64)
	}
	searchSeq := func() any {
		recs := run(`OPTIONAL MATCH (c:EngramCheckpoint {name: $name}) RETURN c.stream_seq`, map[string]any{"name": SearchCheckpointName("g", 3)})
		return recs[0].Values[0]
	}
	if n := found(); n != 0 {
		t.Errorf("a search finds %d pending messages, want none", n)
	}
	labeled, claimed, err := IndexPending(ctx, d, "", "g")
	if err != nil {
		t.Fatal(err)
	}
	if labeled != searchBatchLimit || claimed || searchSeq() != nil {
		t.Errorf("first batch: labeled %d, claimed %v, search checkpoint %v; want %d, false, none", labeled, claimed, searchSeq(), searchBatchLimit)
	}
	labeled, claimed, err = IndexPending(ctx, d, "", "g")
	if err != nil {
		t.Fatal(err)
	}
	if labeled != 1 || !claimed || searchSeq() != int64(7) {
		t.Errorf("second batch: labeled %d, claimed %v, search checkpoint %v; want 1, true, 7", labeled, claimed, searchSeq())
	}
	if n := found(); n != searchBatchLimit+1 {
		t.Errorf("a search finds %d messages, want all %d", n, searchBatchLimit+1)
	}
	run(`MATCH (c:EngramCheckpoint {name: 'g-p3'}) SET c.stream_seq = 5`, nil)
	if _, _, err := IndexPending(ctx, d, "", "g"); err != nil {
		t.Fatal(err)
	}
	if got := searchSeq(); got != int64(7) {
		t.Errorf("search checkpoint %v after a batch read an older projector checkpoint, want it kept at 7", got)
	}
}
