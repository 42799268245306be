package query

import (
	"fmt"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/testenv"
)

// BenchmarkVectorSearch: the exact per-user vector search of messages (vector.go) over one
// user holding n messages with 256-dimensional vectors of the hashing embedder, on the shared
// Neo4j; another user holds as many, which the search never reads. Reported per search.
func BenchmarkVectorSearch(b *testing.B) {
	d := testenv.Neo4j(b)
	ctx := b.Context()
	if err := graph.ApplySchema(ctx, d, ""); err != nil {
		b.Fatal(err)
	}
	h := embed.Hash{D: 256}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			users := []string{testenv.User(b, "vbench"), testenv.User(b, "vother")}
			b.Cleanup(func() { testenv.Cleanup(b, d, users...) })
			for _, u := range users {
				owner, err := tenant(u)
				if err != nil {
					b.Fatal(err)
				}
				conv := events.ConversationID(u, "s")
				rows := make([]map[string]any, 0, 500)
				flush := func() {
					_, err := neo4j.ExecuteQuery(ctx, d, `
MERGE (c:Conversation {id: $conv}) ON CREATE SET c.owner = $owner, c.session_id = 's'
WITH c UNWIND $rows AS r
CREATE (c)-[:HAS_MESSAGE]->(:Message {id: r.id, role: 'user', content: r.content, owner: $owner, embedding: r.embedding, embedding_sketch: r.sketch})`,
						map[string]any{"conv": conv, "owner": owner, "rows": rows}, neo4j.EagerResultTransformer)
					if err != nil {
						b.Fatal(err)
					}
					rows = rows[:0]
				}
				for i := range n {
					text := fmt.Sprintf("message %d about topic %d and topic %d", i, i%97, i%13)
					v, _ := h.Embed(text)
					rows = append(rows, map[string]any{"id": events.NewID(), "content": text, "embedding": v, "sketch": embed.Sketch(v)})
					if len(rows) == cap(rows) {
						flush()
					}
				}
				if len(rows) > 0 {
					flush()
				}
			}
			r, err := NewReader(d, "")
			if err != nil {
				b.Fatal(err)
			}
			q, _ := h.Embed("topic 42 and topic 3")
			if _, err := r.SearchMessages(ctx, users[0], MessageSearch{Vector: &VectorQuery{Vector: q}}); err != nil {
				b.Fatal(err) // plans it once
			}
			b.ResetTimer()
			for b.Loop() {
				hits, err := r.SearchMessages(ctx, users[0], MessageSearch{Vector: &VectorQuery{Vector: q}})
				if err != nil || len(hits) != DefaultSearchLimit {
					b.Fatalf("%d hits, %v", len(hits), err)
				}
			}
		})
	}
}
