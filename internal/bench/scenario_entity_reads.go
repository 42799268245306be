package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
)

// ScenarioEntityReads measures the entity and search reads of issue 14 over a seeded graph.
const ScenarioEntityReads = "entity-reads"

func init() {
	scenarios[ScenarioEntityReads] = entityReads
}

// targetEntityReadP99 is issue 14's bound on the entity and search reads at 100k users.
const targetEntityReadP99 = 10 * time.Millisecond

// groupEntityReads names the scenario's tenants.
const groupEntityReads = "er"

// seedEntityUsers writes, per user, what the projector writes for five entity_added events
// (HAS_ENTITY, derived ids), four relationship_added events (a chain), and four messages of one
// session whose entity_added message_ids mention two entities each, each with the vector of
// its content (seedEmbedder) and its sketch (docs/graph.md).
const seedEntityUsers = `
UNWIND $users AS s
CREATE (u:User {identifier: s.identifier, id: s.uid, owner: s.owner, created_at: s.at, attributes_json: '{}',
                recorded_at: s.at, recorded_seq: s.seq})
CREATE (c:Conversation {id: s.conv, session_id: 's', user_identifier: s.identifier, owner: s.owner,
                        created_at: s.at, updated_at: s.at, recorded_at: s.at, recorded_seq: s.seq})
CREATE (u)-[:HAS_CONVERSATION]->(c)
WITH u, c, s
CALL (u, s) {
  UNWIND s.entities AS e
  CREATE (x:Entity {id: e.id, name: e.name, type: e.type, description: e.description, aliases: [], owner: s.owner,
                    created_at: s.at, updated_at: s.at, recorded_at: s.at, recorded_seq: s.seq})
  CREATE (u)-[:HAS_ENTITY]->(x)
}
CALL (s) {
  UNWIND s.rels AS r
  MATCH (a:Entity {id: r.source}), (b:Entity {id: r.target})
  CREATE (a)-[:RELATED_TO {id: r.id, type: r.type, relation_type: r.type, created_at: s.at, updated_at: s.at,
                           recorded_at: s.at, recorded_seq: s.seq}]->(b)
}
CALL (c, s) {
  UNWIND s.messages AS m
  CREATE (x:Message {id: m.id, role: 'user', content: m.content, timestamp: m.at, metadata: '{}', owner: s.owner,
                     created_at: m.at, recorded_at: m.at, recorded_seq: s.seq, embedding: m.embedding,
                     embedding_sketch: m.sketch})
  CREATE (c)-[:HAS_MESSAGE]->(x)
  WITH x, m
  UNWIND m.mentions AS eid
  MATCH (e:Entity {id: eid})
  CREATE (x)-[:MENTIONS]->(e)
}`

// seedEmbedder makes the seeded messages' vectors and the vector search's query: what an
// ingestor with EMBEDDER=hash:64 writes.
var seedEmbedder = embed.Hash{D: 64}

// The seeded entities of every user, and the words the searches look for.
var entitySeed = []struct{ name, typ, description string }{
	{"Acme", "ORGANIZATION", "a maker of consulting software"},
	{"Bob", "PERSON", "senior consultant in healthcare"},
	{"Berlin", "LOCATION", "the city of the headquarters"},
	{"Alice", "PERSON", "engineering manager at Acme"},
	{"Healthcare", "INDUSTRY", "the industry of the client"},
}

func entitySeedRow(t Tenants, i int) map[string]any {
	user := t.User(groupEntityReads, i)
	owner, _ := events.TenantToken(user)
	at := seedBase
	ids := make([]string, len(entitySeed))
	ents := make([]any, len(entitySeed))
	for k, e := range entitySeed {
		ids[k] = events.EntityID(user, e.name, e.typ)
		ents[k] = map[string]any{"id": ids[k], "name": e.name, "type": e.typ, "description": e.description}
	}
	rels := make([]any, 0, len(ids)-1)
	for k := range len(ids) - 1 {
		rels = append(rels, map[string]any{"id": events.RelationshipID(user, ids[k], "RELATED", ids[k+1]),
			"source": ids[k], "target": ids[k+1], "type": "RELATED"})
	}
	msgs := make([]any, 4)
	for k := range msgs {
		content := fmt.Sprintf("message %d: %s met %s about the consultant search", k, entitySeed[k].name, entitySeed[k+1].name)
		vec, _ := seedEmbedder.Embed(content)
		msgs[k] = map[string]any{"id": events.NewID(), "at": at.Add(time.Duration(k) * time.Minute),
			"content": content, "mentions": []any{ids[k], ids[k+1]}, "embedding": vec, "sketch": embed.Sketch(vec)}
	}
	return map[string]any{"identifier": user, "uid": events.UserID(user), "owner": owner, "at": at, "seq": int64(i + 1),
		"conv": events.ConversationID(user, "s"), "entities": ents, "rels": rels, "messages": msgs}
}

// Raw Cypher baselines: the same answers as plain driver calls, without HTTP, the user's
// seek, the owner checks, merges or limits beyond the answer's. The searches wait for the
// full-text indexes as the service's do (graph.AwaitFullText): the same answers.
const (
	rawEntityByID   = `MATCH (e:Entity {id: $id}) RETURN e`
	rawRelated      = `MATCH (e:Entity {id: $id})-[:RELATED_TO*1..2]-(o:Entity) WHERE o <> e RETURN DISTINCT o LIMIT 100`
	rawMentions     = `MATCH (e:Entity {id: $id})<-[:MENTIONS]-(m:Message) RETURN m ORDER BY m.timestamp DESC LIMIT 11`
	rawSearchEntity = graph.AwaitFullText + `
CALL db.index.fulltext.queryNodes('entity_search', $lucene) YIELD node, score
WHERE score > 0 AND node.owner = $owner RETURN node, score ORDER BY score DESC LIMIT 10`
	rawSearchMessage = graph.AwaitFullText + `
CALL db.index.fulltext.queryNodes('message_search', $lucene) YIELD node, score
WHERE score > 0 AND node.owner = $owner RETURN node, score ORDER BY score DESC LIMIT 10`
	// rawVectorMessage scores every message of the user exactly (the library's answer if
	// its index could filter by owner).
	rawVectorMessage = `
MATCH (m:Message {owner: $owner}) WHERE m.embedding IS NOT NULL
WITH m, vector.similarity.cosine(m.embedding, $vector) AS score
RETURN m, score ORDER BY score DESC, m.id LIMIT 10`
)

// entityReadVariant is one read: the query service's path for a user and the baseline's.
type entityReadVariant struct {
	name string
	path func(user, entity string) string
	body []byte // POSTed to path when set
	raw  string
	args func(user, owner, entity string) map[string]any
}

// lucene is the Lucene query the query service builds for words over fields (search.go).
func lucene(owner string, fields []string, word string) string {
	q := `owner:"` + owner + `"^0 AND (`
	for j, f := range fields {
		if j > 0 {
			q += " OR "
		}
		q += f + `:"` + word + `"`
	}
	return q + ")"
}

// The vector search's query: the seeded embedder's vector of its words, and the POST body
// that carries it (docs/query.md, "Vector search").
var (
	vectorQuery, _ = seedEmbedder.Embed("consultant search")
	vectorBody, _  = json.Marshal(map[string]any{"embedding": vectorQuery, "limit": 10})
)

func entityReadVariants() []entityReadVariant {
	byID := func(user, owner, entity string) map[string]any { return map[string]any{"id": entity} }
	return []entityReadVariant{
		{"GetEntity", func(u, e string) string { return "/entities/" + e }, nil, rawEntityByID, byID},
		{"GetRelatedEntities depth=2", func(u, e string) string { return "/entities/" + e + "/related?depth=2" }, nil, rawRelated, byID},
		{"GetEntityMentions limit=10", func(u, e string) string { return "/entities/" + e + "/mentions?limit=10" }, nil, rawMentions, byID},
		{"SearchEntities", func(u, e string) string { return "/search/entities?q=consultant" }, nil, rawSearchEntity,
			func(user, owner, entity string) map[string]any {
				return map[string]any{"owner": owner, "lucene": lucene(owner, []string{"name", "description"}, "consultant")}
			}},
		{"SearchMessages", func(u, e string) string { return "/search/messages?q=consultant" }, nil, rawSearchMessage,
			func(user, owner, entity string) map[string]any {
				return map[string]any{"owner": owner, "lucene": lucene(owner, []string{"content"}, "consultant")}
			}},
		{"SearchMessages by vector", func(u, e string) string { return "/search/messages" }, vectorBody, rawVectorMessage,
			func(user, owner, entity string) map[string]any {
				return map[string]any{"owner": owner, "vector": vectorQuery}
			}},
	}
}

// entityReads: the entity, mention and search reads through the query service over a seeded
// graph of Users users, each next to its raw Cypher baseline, same workers, same run.
func entityReads(ctx context.Context, r *runner) error {
	q, err := r.stack.Service(ServiceQuery)
	if err != nil {
		return err
	}
	users := r.cfg.Users
	r.log.Info("seeding the entity graph", "users", users)
	took, err := r.seedEntities(ctx, users)
	if err != nil {
		return err
	}
	seed := Result{Scenario: "baseline", Variant: fmt.Sprintf("seed %d users × 5 entities, 4 relationships, 4 messages", users),
		Metric: "users/s", Value: float64(users) / took.Seconds(), Count: users}
	r.report.Add(withNote(seed, fmt.Sprintf("UNWIND CREATE straight into Neo4j following docs/graph.md, %d writers, %.0f s, full-text indexes awaited", rawWriters, took.Seconds())))
	client := httpClient(r.cfg.ReadWorkers)
	pick := func() (user, owner, entity string) {
		user = r.tenants.User(groupEntityReads, rand.IntN(users))
		owner, _ = events.TenantToken(user)
		e := entitySeed[rand.IntN(len(entitySeed))]
		return user, owner, events.EntityID(user, e.name, e.typ)
	}
	for _, v := range entityReadVariants() {
		rawRate, rs := closedLoop(ctx, r.cfg.ReadWorkers, r.cfg.Warmup, r.cfg.Duration, func(ctx context.Context) (int, error) {
			user, owner, entity := pick()
			_, err := neo4j.ExecuteQuery(ctx, r.stack.Neo4j, v.raw, v.args(user, owner, entity), neo4j.EagerResultTransformer,
				neo4j.ExecuteQueryWithDatabase(r.stack.Neo4jDB), neo4j.ExecuteQueryWithReadersRouting())
			return 1, err
		})
		base := latencyResult("baseline", "raw cypher "+v.name, "req/s", rawRate, rs)
		r.report.Add(base)
		rate, s := closedLoop(ctx, r.cfg.ReadWorkers, r.cfg.Warmup, r.cfg.Duration, func(ctx context.Context) (int, error) {
			user, _, entity := pick()
			u := q.URL + "/v1/users/" + url.PathEscape(user) + v.path(user, entity)
			if v.body != nil {
				return 1, post(ctx, client, u, v.body)
			}
			return 1, get(ctx, client, u)
		})
		res := ratioTo(latencyResult(ScenarioEntityReads, fmt.Sprintf("%s workers=%d", v.name, r.cfg.ReadWorkers), "req/s", rate, s), base, 0)
		res.Target = fmt.Sprintf("p99 ≤ %s", targetEntityReadP99)
		res.Status = met(s.Count > 0 && s.P99 <= targetEntityReadP99 && s.Errors == 0)
		r.report.Add(res)
		r.log.Info("measured", "row", res.Name(), "req_per_s", int(res.Value), "p99_ms", res.P99)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	r.report.Note("entity-reads: the graph of %d users (5 entities, 4 relationships, 4 messages mentioning 2 entities each) was seeded with UNWIND Cypher following docs/graph.md, not projected", users)
	t0 := time.Now()
	n, err := DeleteGraph(ctx, r.stack.Neo4j, r.stack.Neo4jDB, r.tenants.GroupPrefix(groupEntityReads))
	r.log.Info("seeded graph removed", "nodes", n, "elapsed", time.Since(t0).Round(time.Second))
	return err
}

// seedEntities writes users, then waits for the full-text indexes to hold what was written.
func (r *runner) seedEntities(ctx context.Context, users int) (time.Duration, error) {
	start := time.Now()
	if _, err := r.seedWith(ctx, users, max(1, r.cfg.UnwindBatch/20), seedEntityUsers, func(i int) any {
		return entitySeedRow(r.tenants, i)
	}); err != nil {
		return 0, err
	}
	if _, err := neo4j.ExecuteQuery(ctx, r.stack.Neo4j, "CALL db.awaitIndexes(600)", nil, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(r.stack.Neo4jDB)); err != nil {
		return 0, fmt.Errorf("await the full-text indexes: %w", err)
	}
	return time.Since(start), ctx.Err()
}
