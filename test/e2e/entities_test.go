package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/query"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestEntitiesThroughTheStack drives entities, relationships, a merge and facts over HTTP
// through the real ingestor, projector and query service: each read carries the write's
// consistency token and sees it; another user's entities of the same names stay apart; after
// the erasure of one user, none of theirs is left and the other's are all there.
func TestEntitiesThroughTheStack(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	d := testenv.Neo4j(t)
	sara, liam := testenv.User(t, "ent-sara"), testenv.User(t, "ent-liam")
	t.Cleanup(func() { testenv.Cleanup(t, d, sara, liam) })

	post := func(path string, body map[string]any) ingest.Accepted {
		t.Helper()
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		var acc ingest.Accepted
		if code := doJSON(t, http.MethodPost, stack.IngestorURL+path, "", raw, &acc); code != http.StatusAccepted || acc.Sequence == 0 {
			t.Fatalf("POST %s %s: %d %+v", path, raw, code, acc)
		}
		return acc
	}
	read := func(user, path string, seq uint64, out any) int {
		t.Helper()
		sep := "?"
		if u, _ := url.Parse(path); u.RawQuery != "" {
			sep = "&"
		}
		target := stack.QueryURL + "/v1/users/" + url.PathEscape(user) + path + sep + "consistency=" + strconv.FormatUint(seq, 10)
		code, body := get(t, target, "")
		if code == http.StatusOK && out != nil {
			if err := json.Unmarshal([]byte(body), out); err != nil {
				t.Fatalf("GET %s: %v: %s", target, err, body)
			}
		}
		return code
	}

	type world struct{ acme, corp, bob, berlin, fact string }
	worlds := map[string]world{}
	last := map[string]uint64{}
	for _, u := range []string{sara, liam} {
		var w world
		acme := post("/v1/entities", map[string]any{"user_identifier": u, "name": "Acme", "type": "ORGANIZATION",
			"subtype": "COMPANY", "description": "makes everything", "aliases": []string{"Acme Inc"},
			"attributes": map[string]any{"founded": 1950}, "confidence": 0.8})
		w.acme = acme.EntityID
		w.bob = post("/v1/entities", map[string]any{"user_identifier": u, "name": "Bob", "type": "PERSON"}).EntityID
		w.corp = post("/v1/entities", map[string]any{"user_identifier": u, "name": "ACME Corp", "type": "ORGANIZATION"}).EntityID
		post("/v1/relationships", map[string]any{"user_identifier": u, "source": map[string]any{"id": w.bob},
			"target": map[string]any{"id": w.corp}, "type": "WORKS_AT", "description": "since 2020"})
		post("/v1/relationships", map[string]any{"user_identifier": u, "source": map[string]any{"id": w.acme},
			"target": map[string]any{"name": "Berlin", "type": "LOCATION"}, "type": "LOCATED_IN"})
		w.berlin = events.EntityID(u, "Berlin", "LOCATION")
		w.fact = post("/v1/facts", map[string]any{"user_identifier": u, "subject": "Bob", "predicate": "works_at",
			"object": "Acme", "valid_from": "2020-01-01T00:00:00Z"}).FactID
		// The read right after the write sees it: read-your-writes.
		var e query.EntityDetail
		if code := read(u, "/entities/"+w.corp, post("/v1/entities", map[string]any{"user_identifier": u, "name": "ACME Corp",
			"type": "ORGANIZATION", "description": "the old name"}).Sequence, &e); code != 200 || e.Description == nil || *e.Description != "the old name" {
			t.Fatalf("%s's ACME Corp before the merge: %d %+v", u, code, e)
		}
		last[u] = post("/v1/entities/merge", map[string]any{"user_identifier": u, "source_id": w.corp, "target_id": w.acme}).Sequence
		worlds[u] = w
	}
	if worlds[sara].acme == worlds[liam].acme {
		t.Fatal("two users' entities of one name share an id")
	}

	for _, u := range []string{sara, liam} {
		w, seq := worlds[u], last[u]
		var e query.EntityDetail
		if code := read(u, "/entities/"+w.corp, seq, &e); code != 200 || e.ID != w.acme || e.ResolvedFrom == nil ||
			*e.ResolvedFrom != w.corp || !slices.Equal(e.Aliases, []string{"Acme Inc", "ACME Corp"}) ||
			!slices.Equal(e.MergedIDs, []string{w.corp}) || *e.Subtype != "COMPANY" || e.Confidence != 0.8 || string(e.Attributes) != `{"founded":1950}` {
			t.Errorf("%s: the merged entity: %d %+v", u, code, e)
		}
		if code := read(u, "/entities/by-name?name=Bob&type=PERSON", seq, &e); code != 200 || e.ID != w.bob {
			t.Errorf("%s: Bob by name: %d %+v", u, code, e)
		}
		var page query.EntityPage
		if code := read(u, "/entities?name=ACME+Corp", seq, &page); code != 200 || len(page.Entities) != 1 || page.Entities[0].ID != w.acme {
			t.Errorf("%s: entities named ACME Corp: %d %+v", u, code, page)
		}
		if code := read(u, "/entities", seq, &page); code != 200 || len(page.Entities) != 3 {
			t.Errorf("%s: entities: %d %+v (Acme, Berlin, Bob; the tombstone not listed)", u, code, page)
		}
		// Bob's WORKS_AT moved to Acme with the merge: two hops reach Berlin.
		var rel query.Related
		if code := read(u, "/entities/"+w.bob+"/related?depth=2", seq, &rel); code != 200 || len(rel.Related) != 2 ||
			rel.Related[0].Entity.ID != w.acme || rel.Related[0].Path[0].Type != "WORKS_AT" || rel.Related[0].Path[0].Direction != query.Outgoing ||
			rel.Related[0].Path[0].ID != events.RelationshipID(u, w.bob, "WORKS_AT", w.acme) ||
			rel.Related[1].Entity.ID != w.berlin || rel.Related[1].Depth != 2 || rel.Related[1].Path[1].Type != "LOCATED_IN" {
			t.Errorf("%s: related to Bob: %d %+v", u, code, rel)
		}
		var facts struct{ Facts []query.Fact }
		if code := read(u, "/facts?subject=Bob&as_of=2021-01-01T00:00:00Z", seq, &facts); code != 200 || len(facts.Facts) != 1 ||
			facts.Facts[0].ID != w.fact || facts.Facts[0].Object != "Acme" || facts.Facts[0].Confidence != 1 {
			t.Errorf("%s: facts about Bob: %d %+v", u, code, facts)
		}
		if code := read(u, "/facts?subject=Bob&as_of=2019-01-01T00:00:00Z", seq, &facts); code != 200 || len(facts.Facts) != 0 {
			t.Errorf("%s: facts about Bob before they held: %d %+v", u, code, facts)
		}
	}
	// Isolation: sara's ids find nothing for liam.
	if code := read(liam, "/entities/"+worlds[sara].acme, last[liam], nil); code != http.StatusNotFound {
		t.Errorf("liam reads sara's entity: %d", code)
	}
	if code := read(liam, "/entities/"+worlds[sara].bob+"/related", last[liam], nil); code != http.StatusNotFound {
		t.Errorf("liam walks from sara's entity: %d", code)
	}

	// Erase sara: nothing of hers is left, all of liam's is.
	var erased ingest.Accepted
	if code := doJSON(t, http.MethodDelete, stack.IngestorURL+"/v1/users/"+url.PathEscape(sara), "", nil, &erased); code != http.StatusAccepted {
		t.Fatalf("erase: %d", code)
	}
	waitFor(t, "the erasure projected", func() (bool, string) {
		code := read(sara, "/entities/"+worlds[sara].acme, erased.Sequence, nil)
		return code == http.StatusNotFound, strconv.Itoa(code)
	})
	var page query.EntityPage
	var facts struct{ Facts []query.Fact }
	if code := read(sara, "/entities", erased.Sequence, &page); code != 200 || len(page.Entities) != 0 {
		t.Errorf("sara's entities after the erasure: %d %+v", code, page)
	}
	if code := read(sara, "/facts", erased.Sequence, &facts); code != 200 || len(facts.Facts) != 0 {
		t.Errorf("sara's facts after the erasure: %d %+v", code, facts)
	}
	if code := read(sara, "/entities/by-name?name=Bob&type=PERSON", erased.Sequence, nil); code != http.StatusNotFound {
		t.Errorf("sara's Bob after the erasure: %d", code)
	}
	if code := read(liam, "/entities", last[liam], &page); code != 200 || len(page.Entities) != 3 {
		t.Errorf("liam's entities after sara's erasure: %d %+v", code, page)
	}
	if code := read(liam, "/facts", last[liam], &facts); code != 200 || len(facts.Facts) != 1 {
		t.Errorf("liam's facts after sara's erasure: %d %+v", code, facts)
	}
	var rel query.Related
	if code := read(liam, "/entities/"+worlds[liam].bob+"/related?depth=3", last[liam], &rel); code != 200 || len(rel.Related) != 2 {
		t.Errorf("liam's related entities after sara's erasure: %d %+v", code, rel)
	}
}

// TestEntitiesClientRoundTrip: the Go client's long-term entity calls through the real stack,
// each read seeing the client's own writes (read-your-writes by default).
func TestEntitiesClientRoundTrip(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	d := testenv.Neo4j(t)
	sara := testenv.User(t, "ent-client")
	t.Cleanup(func() { testenv.Cleanup(t, d, sara) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	m, err := c.ShortTerm.AddMessage(ctx, "s", "user", "Alice works at Acme", client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	alice, err := c.LongTerm.AddEntity(ctx, "Alice", "PERSON", client.ForUser(sara), client.WithDescription("an engineer"),
		client.WithAliases("Al"), client.MentionedIn(m.ID))
	if err != nil {
		t.Fatal(err)
	}
	acme, err := c.LongTerm.AddEntity(ctx, "Acme", "ORGANIZATION", client.ForUser(sara), client.WithSubtype("COMPANY"))
	if err != nil {
		t.Fatal(err)
	}
	dup, err := c.LongTerm.AddEntity(ctx, "Acme Corporation", "ORGANIZATION", client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := c.LongTerm.AddRelationship(ctx, client.EntityRef{ID: alice.ID}, client.EntityRef{ID: dup.ID}, "WORKS_AT",
		client.WithConfidence(0.7), client.ValidFrom(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)))
	if err != nil {
		t.Fatal(err)
	}
	if rel.ID == "" || rel.SourceID != alice.ID || rel.TargetID != dup.ID || rel.Type != "WORKS_AT" {
		t.Errorf("AddRelationship = %+v", rel)
	}
	if _, err := c.LongTerm.MergeDuplicateEntities(ctx, dup.ID, acme.ID); err != nil {
		t.Fatal(err)
	}
	fact, err := c.LongTerm.AddFact(ctx, "Alice", "works_at", "Acme", client.ForUser(sara), client.WithConfidence(0.9))
	if err != nil {
		t.Fatal(err)
	}

	got, err := c.LongTerm.GetEntity(ctx, sara, alice.ID)
	if err != nil || got.Name != "Alice" || got.Description == nil || *got.Description != "an engineer" || !slices.Equal(got.Aliases, []string{"Al"}) {
		t.Errorf("GetEntity(Alice) = %+v, %v", got, err)
	}
	if got, err := c.LongTerm.GetEntityByName(ctx, sara, "Acme Corporation"); err != nil || got.ID != acme.ID {
		t.Errorf("GetEntityByName(the merged name) = %+v, %v; want Acme", got, err)
	}
	if got, err := c.LongTerm.GetEntityByName(ctx, sara, "Acme Corporation", client.OfType("ORGANIZATION")); err != nil ||
		got.ID != acme.ID || got.ResolvedFrom == nil || *got.ResolvedFrom != dup.ID {
		t.Errorf("GetEntityByName(the merged name, ORGANIZATION) = %+v, %v", got, err)
	}
	if _, err := c.LongTerm.GetEntityByName(ctx, sara, "Nobody"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("GetEntityByName(Nobody): %v, want ErrNotFound", err)
	}
	page, err := c.LongTerm.ListEntities(ctx, sara, client.OfType("ORGANIZATION"))
	if err != nil || len(page.Entities) != 1 || page.Entities[0].ID != acme.ID || !slices.Equal(page.Entities[0].MergedIDs, []string{dup.ID}) {
		t.Errorf("ListEntities(ORGANIZATION) = %+v, %v", page, err)
	}
	related, err := c.LongTerm.GetRelatedEntities(ctx, sara, acme.ID)
	if err != nil || len(related.Related) != 1 || related.Related[0].Entity.ID != alice.ID {
		t.Fatalf("GetRelatedEntities(Acme) = %+v, %v", related, err)
	}
	if r := related.Related[0].Relationship(); r.Type != "WORKS_AT" || r.Direction != "in" || r.Confidence != 0.7 ||
		r.ValidFrom == nil || !r.ValidFrom.Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		r.ID != events.RelationshipID(sara, alice.ID, "WORKS_AT", acme.ID) {
		t.Errorf("the relationship after the merge: %+v", r)
	}
	if got.CreatedAt == nil || got.Type != "PERSON" {
		t.Errorf("Alice's created_at and type: %+v", got)
	}
	for _, id := range []string{alice.ID, acme.ID, rel.ID, fact.ID} {
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("id %q is not a UUID: %v", id, err)
		}
	}
	// A second fact of the same subject, with Unicode, is a fact of its own.
	uni, err := c.LongTerm.AddFact(ctx, "Alice", "speaks", "日本語 — «français» 🚀", client.ForUser(sara), client.WithConfidence(0.5))
	if err != nil {
		t.Fatal(err)
	}
	facts, err := c.LongTerm.GetFactsAbout(ctx, sara, "Alice")
	if err != nil || len(facts) != 2 || facts[0].ID != fact.ID || facts[0].Confidence != 0.9 || facts[0].Predicate != "works_at" ||
		facts[1].ID != uni.ID || facts[1].Object != "日本語 — «français» 🚀" {
		t.Errorf("GetFactsAbout(Alice) = %+v, %v", facts, err)
	}

	// The kit's POLE+O types, a Unicode name, one name with two types, no description.
	types := []string{"PERSON", "ORGANIZATION", "LOCATION", "EVENT", "OBJECT"}
	ids := map[string]string{}
	for _, typ := range types {
		e, err := c.LongTerm.AddEntity(ctx, "Jaguar ĳ 東京 🚀", typ, client.ForUser(sara))
		if err != nil {
			t.Fatal(err)
		}
		ids[typ] = e.ID
	}
	for _, typ := range types {
		got, err := c.LongTerm.GetEntityByName(ctx, sara, "Jaguar ĳ 東京 🚀", client.OfType(typ))
		if err != nil || got.ID != ids[typ] || got.Type != typ || got.Name != "Jaguar ĳ 東京 🚀" || got.Description != nil {
			t.Errorf("the %s Jaguar: %+v, %v", typ, got, err)
		}
	}
	if page, err := c.LongTerm.ListEntities(ctx, sara, client.Named("Jaguar ĳ 東京 🚀")); err != nil || len(page.Entities) != len(types) {
		t.Errorf("entities of one name and five types: %+v, %v", page, err)
	}

	// Search finds what add_entity wrote; limit holds; no match is an empty list.
	hits, err := c.LongTerm.SearchEntities(ctx, sara, client.SearchQuery{Text: "engineer"})
	if err != nil || len(hits) != 1 || hits[0].ID != alice.ID {
		t.Errorf("SearchEntities(engineer) = %+v, %v", hits, err)
	}
	if hits, err := c.LongTerm.SearchEntities(ctx, sara, client.SearchQuery{Text: "Jaguar", Limit: 2}); err != nil || len(hits) != 2 {
		t.Errorf("SearchEntities(Jaguar, limit 2) = %d hits, %v", len(hits), err)
	}
	if hits, err := c.LongTerm.SearchEntities(ctx, sara, client.SearchQuery{Text: "zeppelin"}); err != nil || hits == nil || len(hits) != 0 {
		t.Errorf("SearchEntities(zeppelin) = %+v, %v", hits, err)
	}

	// An entity used in a trace (mentioned by it), and a preference next to an entity.
	tr, err := c.Reasoning.StartTrace(ctx, "s", "look up Alice", client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Reasoning.AddStep(ctx, tr.ID, client.Action("entity_lookup"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reasoning.RecordToolCall(ctx, tr.ID, st.ID, "entity_lookup", client.WithArguments(map[string]any{"entity_id": alice.ID})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LongTerm.AddEntity(ctx, "Alice", "PERSON", client.ForUser(sara), client.MentionedInTrace(tr.ID)); err != nil {
		t.Fatal(err)
	}
	full, err := c.Reasoning.GetTrace(ctx, sara, tr.ID)
	if err != nil || len(full.Steps) != 1 || len(full.Steps[0].ToolCalls) != 1 || full.Steps[0].ToolCalls[0].ToolName != "entity_lookup" {
		t.Errorf("the trace that used Alice: %+v, %v", full, err)
	}
	if _, err := c.LongTerm.AddPreference(ctx, "contact", "Alice prefers email", client.ForUser(sara),
		client.AppliesTo(client.EntityRef{Name: "Alice", Type: "PERSON"})); err != nil {
		t.Fatal(err)
	}
	prefs, err := c.LongTerm.GetPreferencesFor(ctx, sara, client.AppliesToEntity(client.EntityRef{ID: alice.ID}))
	if err != nil || len(prefs) != 1 || prefs[0].Preference != "Alice prefers email" {
		t.Errorf("the preference applying to Alice's entity: %+v, %v", prefs, err)
	}
	if got, err := c.LongTerm.GetEntity(ctx, sara, alice.ID); err != nil || *got.Description != "an engineer" {
		t.Errorf("Alice after the preference and the mention: %+v, %v", got, err)
	}
}
