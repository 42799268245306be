package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestEntityReadsAsk: what the entity, relationship and fact reads send, and what they decode.
// The write side against the real stack: test/e2e TestEntitiesClientRoundTrip.
func TestEntityReadsAsk(t *testing.T) {
	t.Parallel()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/related"):
			_, _ = w.Write([]byte(`{"entity": {"id": "acme", "name": "Acme", "type": "ORGANIZATION", "resolved_from": "corp"},
				"related": [{"entity": {"id": "bob", "name": "Bob", "type": "PERSON"}, "depth": 1,
				  "path": [{"id": "r1", "type": "WORKS_AT", "direction": "in", "source_id": "bob", "target_id": "acme", "confidence": 1}]}],
				"truncated": false}`))
		case strings.HasSuffix(r.URL.Path, "/facts"):
			_, _ = w.Write([]byte(`{"facts": [{"id": "f1", "subject": "Bob", "predicate": "works_at", "object": "Acme", "confidence": 0.9}]}`))
		case strings.HasSuffix(r.URL.Path, "/entities") && r.URL.Query().Get("name") == "Nobody":
			_, _ = w.Write([]byte(`{"entities": []}`))
		case strings.HasSuffix(r.URL.Path, "/entities"):
			_, _ = w.Write([]byte(`{"entities": [{"id": "bob", "name": "Bob", "type": "PERSON", "aliases": ["Bobby"]}], "next_cursor": "c2"}`))
		default:
			_, _ = w.Write([]byte(`{"id": "acme", "name": "Acme", "type": "ORGANIZATION", "subtype": "COMPANY", "aliases": ["ACME Corp"],
				"attributes": {"founded": 1950}, "confidence": 0.9, "merged_ids": ["corp"], "resolved_from": "corp"}`))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(WithHTTP(srv.URL, srv.URL), WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	c.noteToken("sara@omg.com", 7)
	ctx := context.Background()
	e, err := c.LongTerm.GetEntity(ctx, "sara@omg.com", "corp")
	if err != nil || e.ID != "acme" || e.ResolvedFrom == nil || *e.ResolvedFrom != "corp" || !slices.Equal(e.MergedIDs, []string{"corp"}) ||
		string(e.Attributes) != `{"founded": 1950}` || *e.Subtype != "COMPANY" || e.Confidence != 0.9 || e.User != "sara@omg.com" {
		t.Errorf("GetEntity = %+v, %v", e, err)
	}
	if _, err := c.LongTerm.GetEntityByName(ctx, "sara@omg.com", "Acme", OfType("ORGANIZATION")); err != nil {
		t.Fatal(err)
	}
	if e, err := c.LongTerm.GetEntityByName(ctx, "sara@omg.com", "Bobby"); err != nil || e.ID != "bob" {
		t.Errorf("GetEntityByName without a type = %+v, %v", e, err)
	}
	if _, err := c.LongTerm.GetEntityByName(ctx, "sara@omg.com", "Nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetEntityByName of nobody: %v, want ErrNotFound", err)
	}
	page, err := c.LongTerm.ListEntities(ctx, "sara@omg.com", OfType("PERSON"), Limit(1), After("c1"))
	if err != nil || len(page.Entities) != 1 || page.NextCursor != "c2" || !slices.Equal(page.Entities[0].Aliases, []string{"Bobby"}) {
		t.Errorf("ListEntities = %+v, %v", page, err)
	}
	rel, err := c.LongTerm.GetRelatedEntities(ctx, "sara@omg.com", "corp", Depth(2), RelationshipTypes("WORKS_AT", "KNOWS"), Following("in"), Limit(5))
	if err != nil || len(rel.Related) != 1 || rel.Related[0].Relationship().Type != "WORKS_AT" || rel.Related[0].Relationship().Direction != "in" ||
		rel.Entity.ResolvedFrom == nil {
		t.Errorf("GetRelatedEntities = %+v, %v", rel, err)
	}
	facts, err := c.LongTerm.GetFactsAbout(ctx, "", "Bob", WithPredicate("works_at"), Limit(3))
	if err != nil || len(facts) != 1 || facts[0].Object != "Acme" || facts[0].Confidence != 0.9 {
		t.Errorf("GetFactsAbout = %+v, %v", facts, err)
	}
	want := []string{
		"/v1/users/sara@omg.com/entities/corp?consistency=7",
		"/v1/users/sara@omg.com/entities/by-name?consistency=7&name=Acme&type=ORGANIZATION",
		"/v1/users/sara@omg.com/entities?consistency=7&limit=1&name=Bobby",
		"/v1/users/sara@omg.com/entities?consistency=7&limit=1&name=Nobody",
		"/v1/users/sara@omg.com/entities?consistency=7&cursor=c1&limit=1&type=PERSON",
		"/v1/users/sara@omg.com/entities/corp/related?consistency=7&depth=2&direction=in&limit=5&type=WORKS_AT&type=KNOWS",
		"/v1/shared/facts?limit=3&predicate=works_at&subject=Bob",
	}
	if !slices.Equal(got, want) {
		t.Errorf("requests\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestEntityWritesNeedAUser: in multi-tenant mode an entity, relationship, merge or fact
// without a user is refused before anything is sent.
func TestEntityWritesNeedAUser(t *testing.T) {
	t.Parallel()
	sent := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { sent++ }))
	t.Cleanup(srv.Close)
	c, err := New(WithHTTP(srv.URL, srv.URL), WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err1 := c.LongTerm.AddEntity(ctx, "Acme", "ORGANIZATION")
	_, err2 := c.LongTerm.AddRelationship(ctx, EntityRef{Name: "Bob", Type: "PERSON"}, EntityRef{Name: "Acme", Type: "ORGANIZATION"}, "WORKS_AT")
	_, err3 := c.LongTerm.MergeDuplicateEntities(ctx, "a", "b")
	_, err4 := c.LongTerm.AddFact(ctx, "Bob", "works_at", "Acme")
	for i, err := range []error{err1, err2, err3, err4} {
		if !errors.Is(err, ErrUserRequired) {
			t.Errorf("write %d: %v, want ErrUserRequired", i+1, err)
		}
	}
	if sent != 0 {
		t.Errorf("%d requests sent", sent)
	}
}
