package e2e_test

import (
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/replay"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestVectorSearchThroughTheStack: vector search of messages, preferences, entities and
// traces, the stack running with the deterministic hashing embedder (EMBEDDER=hash:64) on the
// ingestor and the query service. Writes without a vector are embedded by the ingestor (the
// event carries the vector: a replay reproduces the graph, vectors included); writes with one
// keep theirs; a search by text is embedded by the query service, a search by vector is
// POSTed; the nearest come first, a threshold drops the far ones, vectors of another length
// are not compared, and another user's identical writes are never found.
func TestVectorSearchThroughTheStack(t *testing.T) {
	t.Parallel()
	const dims = 64
	stack := testenv.StartStack(t, "EMBEDDER=hash:64")
	d := testenv.Neo4j(t)
	sara, liam := testenv.User(t, "vsara"), testenv.User(t, "vliam")
	t.Cleanup(func() { testenv.Cleanup(t, d, sara, liam) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// Fixed texts: the users are the test's own, and the hashing embedder's collisions at 64
	// dimensions are then the same every run (a random word made the order flaky, ~1 %).
	const w = "zvquark"
	texts := []string{
		"book a table at the " + w + " sushi place",
		"the " + w + " sushi place was closed on monday",
		"renew the car insurance before june",
	}
	msgs := map[string][]string{}
	for _, u := range []string{sara, liam} {
		for _, text := range texts {
			m, err := c.ShortTerm.AddMessage(ctx, "s1", "user", text, client.ForUser(u))
			if err != nil {
				t.Fatal(err)
			}
			msgs[u] = append(msgs[u], m.ID)
		}
	}
	// A message with a vector of its own, of another length: never compared with the hashing
	// embedder's.
	own, err := c.ShortTerm.AddMessage(ctx, "s1", "user", "the "+w+" sushi place", client.ForUser(sara),
		client.WithEmbedding([]float64{1, 0, 0}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LongTerm.AddPreference(ctx, "food", "loves "+w+" sushi", client.ForUser(sara)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LongTerm.AddPreference(ctx, "travel", "prefers aisle seats", client.ForUser(sara)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LongTerm.AddEntity(ctx, w+" Sushi", "ORGANIZATION", client.ForUser(sara),
		client.WithDescription("the sushi place by the station")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LongTerm.AddEntity(ctx, "Acme Insurance", "ORGANIZATION", client.ForUser(sara)); err != nil {
		t.Fatal(err)
	}
	tr, err := c.Reasoning.StartTrace(ctx, "s1", "find a "+w+" sushi place for friday", client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reasoning.StartTrace(ctx, "s1", "compare car insurance offers", client.ForUser(sara)); err != nil {
		t.Fatal(err)
	}

	// By text, embedded by the query service: the two sushi messages first, sara's only.
	hits, err := c.ShortTerm.SearchMessages(ctx, sara, client.SearchQuery{Text: w + " sushi place", ByVector: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 3 {
		t.Fatalf("vector search found %d messages, want sara's 3 of 64 dimensions: %+v", len(hits), hits)
	}
	for i, h := range hits {
		if h.ID == own.ID {
			t.Errorf("hit %d is the message with a 3-dimensional vector", i)
		}
		if h.ID == msgs[liam][0] || h.ID == msgs[liam][1] || h.ID == msgs[liam][2] {
			t.Fatalf("sara's search found liam's message %s", h.ID)
		}
		if i > 0 && h.Score > hits[i-1].Score {
			t.Errorf("hits not best first: %v then %v", hits[i-1].Score, h.Score)
		}
		if h.Score < 0 || h.Score > 1 {
			t.Errorf("score %v outside [0, 1]", h.Score)
		}
	}
	if hits[2].ID != msgs[sara][2] {
		t.Errorf("the insurance message is not last: %+v", hits)
	}
	// A threshold between the sushi messages and the insurance one drops it.
	th := (hits[1].Score + hits[2].Score) / 2
	near, err := c.ShortTerm.SearchMessages(ctx, sara, client.SearchQuery{Text: w + " sushi place", ByVector: true, Threshold: th})
	if err != nil || len(near) != 2 {
		t.Fatalf("threshold %v: %d hits, %v; want 2", th, len(near), err)
	}

	// By vector, POSTed: the embedder's own vector of the text finds the same, in the same
	// order with the same scores; the 3-dimensional vector finds only the message that has one.
	vec, err := embed.Hash{D: dims}.Embed(w + " sushi place")
	if err != nil {
		t.Fatal(err)
	}
	byVec, err := c.ShortTerm.SearchMessages(ctx, sara, client.SearchQuery{Embedding: vec})
	if err != nil || len(byVec) != len(hits) {
		t.Fatalf("search by vector: %d hits, %v", len(byVec), err)
	}
	for i := range hits {
		if byVec[i].ID != hits[i].ID || math.Abs(byVec[i].Score-hits[i].Score) > 1e-9 {
			t.Errorf("hit %d by vector %s %v, by text %s %v", i, byVec[i].ID, byVec[i].Score, hits[i].ID, hits[i].Score)
		}
	}
	three, err := c.ShortTerm.SearchMessages(ctx, sara, client.SearchQuery{Embedding: []float64{0.9, 0.1, 0}, SessionID: "s1"})
	if err != nil || len(three) != 1 || three[0].ID != own.ID {
		t.Fatalf("search by a 3-dimensional vector: %+v, %v; want the one message of that length", three, err)
	}

	// Preferences, entities, traces: the sushi one first.
	prefs, err := c.LongTerm.SearchPreferences(ctx, sara, client.SearchQuery{Text: w + " sushi", ByVector: true})
	if err != nil || len(prefs) != 2 || prefs[0].Category != "food" {
		t.Fatalf("preferences by vector: %+v, %v", prefs, err)
	}
	food, err := c.LongTerm.SearchPreferences(ctx, sara, client.SearchQuery{Text: w + " sushi", ByVector: true, Category: "travel"})
	if err != nil || len(food) != 1 || food[0].Category != "travel" {
		t.Fatalf("preferences by vector in category travel: %+v, %v", food, err)
	}
	ents, err := c.LongTerm.SearchEntities(ctx, sara, client.SearchQuery{Text: "sushi place " + w, ByVector: true})
	if err != nil || len(ents) != 2 || ents[0].Name != w+" Sushi" {
		t.Fatalf("entities by vector: %+v, %v", ents, err)
	}
	// An entity added again without a description (a mention, say) keeps the vector of its
	// name and description: the same score as before.
	if _, err := c.LongTerm.AddEntity(ctx, w+" Sushi", "ORGANIZATION", client.ForUser(sara)); err != nil {
		t.Fatal(err)
	}
	ents2, err := c.LongTerm.SearchEntities(ctx, sara, client.SearchQuery{Text: "sushi place " + w, ByVector: true})
	if err != nil || len(ents2) != 2 || ents2[0].Name != ents[0].Name || math.Abs(ents2[0].Score-ents[0].Score) > 1e-9 {
		t.Fatalf("entities by vector after a re-add without description: %+v, %v; want %s at %v", ents2, err, ents[0].Name, ents[0].Score)
	}
	// A task longer than a full-text query may be (64 words) is searched by vector.
	long := strings.Repeat("find a "+w+" sushi place ", 20)
	if got, err := c.Reasoning.SearchTraces(ctx, sara, client.SearchQuery{Text: long, Limit: 1}); err != nil || len(got) != 1 || got[0].ID != tr.ID {
		t.Fatalf("similar traces of a long task: %+v, %v", got, err)
	}
	traces, err := c.Reasoning.SearchTraces(ctx, sara, client.SearchQuery{Text: "a " + w + " sushi place", Limit: 1})
	if err != nil || len(traces) != 1 || traces[0].ID != tr.ID {
		t.Fatalf("similar traces: %+v, %v; want %s", traces, err, tr.ID)
	}
	if none, err := c.Reasoning.SearchTraces(ctx, liam, client.SearchQuery{Text: "a " + w + " sushi place"}); err != nil || len(none) != 0 {
		t.Fatalf("liam's similar traces: %+v, %v; want none", none, err)
	}

	// Bad requests are 400s naming the field.
	for _, q := range []client.SearchQuery{
		{Embedding: []float64{0, 0, 0}},
		{Embedding: make([]float64, embed.MaxDimensions+1)},
		{Text: "x", ByVector: true, Threshold: 2},
	} {
		if _, err := c.ShortTerm.SearchMessages(ctx, sara, q); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("search %+v: %v, want ErrInvalid", q, err)
		}
	}
	resp, err := http.Get(stack.QueryURL + "/v1/users/" + url.PathEscape(sara) + "/search/messages?q=x&threshold=0.5")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("threshold on a full-text search: %d, want 400", resp.StatusCode)
	}

	// The log holds the vectors: a replay of sara gives the same graph, vectors included.
	nc, err := nats.Connect(stack.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := events.EncodeToken(sara)
	owned := func() fingerprint.Fingerprint {
		f, err := fingerprint.Of(ctx, d, "", fingerprint.Scope{Owners: []string{tok}})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	live := owned()
	if _, err := replay.Run(ctx, d, js, replay.Options{User: sara, MultiTenant: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := owned(); !got.Equal(live) {
		t.Fatalf("replay differs from the live graph:\n%s", fingerprint.Diff(live, got, 10))
	}
	again, err := c.ShortTerm.SearchMessages(ctx, sara, client.SearchQuery{Embedding: vec})
	if err != nil || len(again) != len(byVec) || again[0].ID != byVec[0].ID {
		t.Fatalf("search after the replay: %+v, %v", again, err)
	}
}
