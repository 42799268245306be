package query

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/events"
)

// exactMessages is the oracle of TestVectorSearchIsExact: every message of the user with a
// vector of the query's length scored with vector.similarity.cosine, nothing skipped (the
// search before sketches).
const exactMessages = `
MATCH (m:Message {owner: $owner}) USING INDEX m:Message(owner)
WHERE m.embedding IS NOT NULL AND size(m.embedding) = $dims
WITH m, vector.similarity.cosine(m.embedding, $vector) AS score
WHERE score >= $threshold
UNWIND [(c:Conversation)-[:HAS_MESSAGE]->(m) | c] AS c
WITH m, score, c WHERE c.owner = $owner AND ($session_id IS NULL OR c.session_id = $session_id)
RETURN m.id AS id, score
ORDER BY score DESC, m.id
LIMIT $limit`

const exactPreferences = `
MATCH (p:Preference {owner: $owner}) USING INDEX p:Preference(owner)
WHERE p.embedding IS NOT NULL AND size(p.embedding) = $dims AND ($category IS NULL OR p.category = $category)
WITH p, vector.similarity.cosine(p.embedding, $vector) AS score
WHERE score >= $threshold
RETURN p.id AS id, score
ORDER BY score DESC, p.id
LIMIT $limit`

const exactEntities = `
MATCH (e:Entity {owner: $owner}) USING INDEX e:Entity(owner)
WHERE e.embedding IS NOT NULL AND size(e.embedding) = $dims AND ($type IS NULL OR e.type = $type)
WITH e, vector.similarity.cosine(e.embedding, $vector) AS score
WHERE score >= $threshold
RETURN e.id AS id, score
ORDER BY score DESC, e.id
LIMIT $limit`

const exactTraces = `
MATCH (t:ReasoningTrace {owner: $owner}) USING INDEX t:ReasoningTrace(owner)
WHERE t.embedding IS NOT NULL AND size(t.embedding) = $dims AND (NOT $success_only OR t.success = true)
WITH t, vector.similarity.cosine(t.embedding, $vector) AS score
WHERE score >= $threshold
RETURN t.id AS id, score
ORDER BY score DESC, t.id
LIMIT $limit`

// TestVectorSearchIsExact: the sketched search (vector.go) answers what scoring every node
// exactly answers — the same ids in the same order with the same scores — over a graph made to
// defeat it: clusters of vectors closer than any sketch can tell apart, exact duplicates
// (ties, ordered by id), nodes with a vector and no sketch (written before sketches), vectors
// of another length, nodes without one, a message of the user's tenant outside any of the
// user's conversations nearest to one query (the first read cannot see that it is out),
// and another user holding the same vectors; for every kind (messages, preferences,
// entities, traces), many queries, limits, thresholds and filters, over a user of 400 nodes
// and one with fewer than the larger limits (searched in one read).
func TestVectorSearchIsExact(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	ctx := t.Context()
	f := newFixture(t, d, "vexact")
	other := newFixture(t, d, "vexact-other")
	const dims = 48
	rng := rand.New(rand.NewPCG(7, 11))
	unit := func(v []float64) []float64 { return embed.Unit(v) }
	gauss := func() []float64 {
		v := make([]float64, dims)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return unit(v)
	}
	near := func(c []float64, eps float64) []float64 {
		v := make([]float64, dims)
		for i := range v {
			v[i] = c[i] + eps*rng.NormFloat64()
		}
		return unit(v)
	}
	centres := [][]float64{gauss(), gauss(), gauss()}
	vectorAt := func(i int) []float64 {
		c := centres[i%len(centres)]
		switch i % 7 {
		case 0:
			return c // exact duplicates of the centre
		case 1, 2:
			return near(c, 1e-4) // closer than any sketch tells apart
		case 3:
			return near(c, 1e-2)
		default:
			return gauss()
		}
	}
	type node struct {
		id       string
		vec      []float64
		sketch   any
		session  string
		category string
	}
	build := func(n int) []node {
		out := make([]node, 0, n)
		for i := range n {
			x := node{id: events.NewID(), vec: vectorAt(i), session: []string{"s1", "s2"}[i%2],
				category: []string{"food", "travel", "work"}[i%3]}
			x.sketch = embed.Sketch(x.vec)
			switch {
			case i%11 == 5:
				x.sketch = nil // written before sketches
			case i%13 == 6:
				x.vec, x.sketch = x.vec[:dims-1], embed.Sketch(x.vec[:dims-1]) // another model's
			case i%17 == 8:
				x.vec, x.sketch = nil, nil // no vector
			}
			out = append(out, x)
		}
		return out
	}
	write := func(owner, identifier string, nodes []node) {
		rows := make([]map[string]any, 0, len(nodes))
		for _, x := range nodes {
			var vec any
			if x.vec != nil {
				vec = x.vec
			}
			rows = append(rows, map[string]any{"id": x.id, "vec": vec, "sketch": x.sketch, "session": x.session,
				"conv": events.ConversationID(identifier, x.session), "category": x.category,
				"type":    map[string]string{"food": "PERSON", "travel": "LOCATION", "work": "ORGANIZATION"}[x.category],
				"success": x.session == "s2"})
		}
		_, err := neo4j.ExecuteQuery(ctx, d, `
MATCH (u:User {identifier: $identifier})
UNWIND $rows AS r
MERGE (c:Conversation {id: r.conv})
  ON CREATE SET c.owner = $owner, c.session_id = r.session, c.user_identifier = $identifier
MERGE (u)-[:HAS_CONVERSATION]->(c)
CREATE (c)-[:HAS_MESSAGE]->(m:Message {id: r.id, role: 'user', content: 'x', owner: $owner})
SET m.embedding = r.vec, m.embedding_sketch = r.sketch
CREATE (u)-[:HAS_PREFERENCE]->(p:Preference {id: r.id + '-p', category: r.category, preference: 'x', owner: $owner})
SET p.embedding = r.vec, p.embedding_sketch = r.sketch
CREATE (u)-[:HAS_ENTITY]->(e:Entity {id: r.id + '-e', name: r.id, type: r.type, owner: $owner})
SET e.embedding = r.vec, e.embedding_sketch = r.sketch
CREATE (u)-[:HAS_TRACE]->(t:ReasoningTrace {id: r.id + '-t', session_id: r.session, task: 'x', success: r.success, owner: $owner})
SET t.embedding = r.vec, t.embedding_sketch = r.sketch`,
			map[string]any{"identifier": identifier, "owner": owner, "rows": rows}, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.user(nil, at)
	other.user(nil, at)
	mine := build(400)
	write(f.owner, f.id, mine)
	write(other.owner, other.id, build(400))
	// A message of the user's tenant in no conversation of the user's, the nearest to one
	// query by far: the first read cannot see that it is out, so it alone is scored first,
	// then found out, and the next nearest are scored after it.
	lone := gauss()
	_, err := neo4j.ExecuteQuery(ctx, d, `
CREATE (:Message {id: $id, role: 'user', content: 'x', owner: $owner, embedding: $vec, embedding_sketch: $sketch})`,
		map[string]any{"id": events.NewID(), "owner": f.owner, "vec": lone, "sketch": embed.Sketch(lone)},
		neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}

	r, err := NewReader(d, "")
	if err != nil {
		t.Fatal(err)
	}
	oracle := func(cypher string, params map[string]any) []string {
		res, err := neo4j.ExecuteQuery(ctx, d, cypher, params, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, 0, len(res.Records))
		for _, rec := range res.Records {
			id, _ := rec.Get("id")
			score, _ := rec.Get("score")
			out = append(out, fmt.Sprintf("%v %.9g", id, score))
		}
		return out
	}
	// A user with fewer nodes than the larger limits: those searches score every node in
	// the first read (one round trip), the smaller limits go through the sketches.
	small := newFixture(t, d, "vexact-small")
	small.user(nil, at)
	few := build(12)
	write(small.owner, small.id, few)

	queries := [][]float64{centres[0], centres[1], near(centres[2], 1e-4), near(centres[0], 1e-2), lone, gauss(), mine[5].vec}
	compared, nonEmpty := 0, 0
	check := func(kind, name string, got, want []string) {
		t.Helper()
		compared++
		if len(want) > 0 {
			nonEmpty++
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s, %s:\n got %v\nwant %v", kind, name, got, want)
		}
	}
	for _, who := range []struct {
		f       *fixture
		queries [][]float64
	}{{f, queries}, {small, [][]float64{few[0].vec, few[4].vec, gauss(), centres[1]}}} {
		f := who.f
		for qi, q := range who.queries {
			for _, n := range []int{1, 3, 10, 50} {
				for _, threshold := range []float64{0, 0.6, 0.999} {
					for _, filter := range []string{"", "s2"} {
						name := fmt.Sprintf("%s: query %d limit %d threshold %v filter %q", f.id, qi, n, threshold, filter)
						vq := &VectorQuery{Vector: q, Threshold: threshold}
						params := map[string]any{"owner": f.owner, "vector": q, "dims": int64(dims), "threshold": threshold,
							"limit": int64(n), "session_id": nil, "category": nil}
						if filter != "" {
							params["session_id"] = filter
						}
						msgs, err := r.SearchMessages(ctx, f.id, MessageSearch{SessionID: filter, Limit: n, Vector: vq})
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						got := make([]string, 0, len(msgs))
						for _, m := range msgs {
							got = append(got, fmt.Sprintf("%v %.9g", m.ID, m.Score))
						}
						want := oracle(exactMessages, params)
						check("messages", name, got, want)
						category := map[string]string{"": "", "s2": "travel"}[filter]
						params["category"] = nil
						if category != "" {
							params["category"] = category
						}
						prefs, err := r.SearchPreferences(ctx, f.id, PreferenceSearch{Category: category, Limit: n, Vector: vq})
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						got = got[:0]
						for _, p := range prefs {
							got = append(got, fmt.Sprintf("%v %.9g", p.ID, p.Score))
						}
						want = oracle(exactPreferences, params)
						check("preferences", name, got, want)
						typ := map[string]string{"": "", "s2": "LOCATION"}[filter]
						params["type"] = nil
						if typ != "" {
							params["type"] = typ
						}
						ents, err := r.SearchEntities(ctx, f.id, EntitySearch{Type: typ, Limit: n, Vector: vq})
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						got = got[:0]
						for _, e := range ents {
							got = append(got, fmt.Sprintf("%v %.9g", e.ID, e.Score))
						}
						want = oracle(exactEntities, params)
						check("entities", name, got, want)
						params["success_only"] = filter != ""
						traces, err := r.SearchTraces(ctx, f.id, TraceSearch{VectorQuery: *vq, SuccessOnly: filter != "", Limit: n})
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						got = got[:0]
						for _, tr := range traces {
							got = append(got, fmt.Sprintf("%v %.9g", tr.ID, tr.Score))
						}
						want = oracle(exactTraces, params)
						check("traces", name, got, want)
					}
				}
			}
		}
	}
	if nonEmpty < compared/3 {
		t.Fatalf("only %d of %d comparisons had hits: the graph does not test the search", nonEmpty, compared)
	}
}
