package query

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// The entity fixture writes what the projector writes for entity_added, relationship_added,
// entities_merged and fact_added (internal/projection cypher.go, docs/graph.md): Entity nodes
// of the derived id with HAS_ENTITY from the user (none for the shared tenant), RELATED_TO
// edges of the derived relationship id, a merged entity left as a tombstone MERGED_INTO its
// survivor, facts with HAS_FACT. The e2e test reads what the real projector wrote.

type entitySpec struct {
	name, typ, subtype, description string
	aliases                         []string
	metadata                        string // the library's metadata JSON, attributes under "attributes"
	confidence                      any
	at                              time.Time
}

// entity writes entity_added for the fixture's user and returns the entity's id.
func (f *fixture) entity(e entitySpec) string {
	f.t.Helper()
	id := events.EntityID(f.sharedOr(), e.name, e.typ)
	aliases := make([]any, 0, len(e.aliases))
	for _, a := range e.aliases {
		aliases = append(aliases, a)
	}
	var meta any
	if e.metadata != "" {
		meta = e.metadata
	}
	f.write(`
CREATE (e:Entity {id: $id, name: $name, type: $type, owner: $owner, created_at: $at, updated_at: $at,
                  recorded_at: $at, recorded_seq: $seq, aliases: $aliases})
SET e.subtype = $subtype, e.description = $description, e.metadata = $metadata, e.confidence = $confidence
WITH e
OPTIONAL MATCH (u:User {identifier: $identifier}) WHERE $shared = false
FOREACH (x IN CASE WHEN u IS NULL THEN [] ELSE [u] END | CREATE (x)-[:HAS_ENTITY]->(e))
`, map[string]any{"id": id, "name": e.name, "type": e.typ, "at": e.at, "seq": f.next(), "aliases": aliases,
		"subtype": textParam(e.subtype), "description": textParam(e.description), "metadata": meta,
		"confidence": e.confidence, "shared": f.shared()})
	return id
}

// relate writes relationship_added between two entities of the fixture's user.
func (f *fixture) relate(source, typ, target, description string, at time.Time) string {
	f.t.Helper()
	id := events.RelationshipID(f.sharedOr(), source, typ, target)
	f.write(`
MATCH (a:Entity {id: $source}) WHERE a.owner = $owner
MATCH (b:Entity {id: $target}) WHERE b.owner = $owner
CREATE (a)-[x:RELATED_TO {id: $id, type: $type, relation_type: $type, created_at: $at, updated_at: $at,
                          recorded_at: $at, recorded_seq: $seq}]->(b)
SET x.description = $description
`, map[string]any{"id": id, "source": source, "target": target, "type": typ, "at": at, "seq": f.next(),
		"description": textParam(description)})
	return id
}

// merge writes entities_merged: source's relationships move to target (this fixture's loads
// give the source none to fold), source stays as a tombstone.
func (f *fixture) merge(source, target string, at time.Time) {
	f.t.Helper()
	f.write(`
MATCH (b:Entity {id: $source}) WHERE b.owner = $owner
MATCH (a:Entity {id: $target}) WHERE a.owner = $owner
SET a.aliases = coalesce(a.aliases, []) + [x IN [b.name] + coalesce(b.aliases, []) WHERE x <> a.name AND NOT x IN coalesce(a.aliases, [])],
    a.updated_at = $at, b.merged_into = a.id, b.merged_at = $at
CREATE (b)-[:MERGED_INTO {at: $at, recorded_at: $at}]->(a)
`, map[string]any{"source": source, "target": target, "at": at})
}

// fact writes fact_added and returns the fact's id.
func (f *fixture) fact(subject, predicate, object string, confidence float64, from time.Time, until *time.Time) string {
	f.t.Helper()
	id := events.NewID()
	var u any
	if until != nil {
		u = until.In(f.loc)
	}
	f.write(`
CREATE (x:Fact {id: $id, subject: $subject, predicate: $predicate, object: $object, confidence: $confidence,
                valid_from: $from, valid_until: $until, created_at: $from, metadata: '{"source":"test"}',
                owner: $owner, recorded_at: $from, recorded_seq: $seq})
WITH x
OPTIONAL MATCH (u:User {identifier: $identifier}) WHERE $shared = false
FOREACH (y IN CASE WHEN u IS NULL THEN [] ELSE [u] END | CREATE (y)-[:HAS_FACT]->(x))
`, map[string]any{"id": id, "subject": subject, "predicate": predicate, "object": object, "confidence": confidence,
		"from": from, "until": u, "seq": f.next(), "shared": f.shared()})
	return id
}

func (f *fixture) shared() bool { return f.owner == events.SharedTenantToken }

// sharedOr is the identifier ids are derived from: "" for the shared tenant.
func (f *fixture) sharedOr() string {
	if f.shared() {
		return ""
	}
	return f.id
}

// sharedFixture writes as the shared tenant; the test's names must be its own (the shared
// tenant is one for every test), and what it wrote with them is removed at the end.
func sharedFixture(t *testing.T, d neo4j.DriverWithContext) *fixture {
	t.Helper()
	f := &fixture{t: t, d: d, id: "", owner: events.SharedTenantToken, loc: offsetZ}
	return f
}

// cleanupFacts removes the facts of owner (the fixture's cleanup knows the labels of before).
func cleanupFacts(t *testing.T, d neo4j.DriverWithContext, owner string) {
	t.Cleanup(func() {
		_, _ = neo4j.ExecuteQuery(context.Background(), d, "MATCH (n:Fact {owner: $owner}) DETACH DELETE n",
			map[string]any{"owner": owner}, neo4j.EagerResultTransformer)
	})
}

// entityWorld is Sara's entities (and Liam's of the same names):
//
//	Alice -KNOWS-> Bob -WORKS_AT-> Acme -LOCATED_IN-> Berlin,  ACME Corp merged into Acme
type entityWorld struct {
	f                                 *fixture
	alice, bob, acme, berlin, corp    string
	knows, worksAt, locatedIn         string
	liamAcme, liamBob                 string
	factWorks, factLived, factCurrent string
}

var entityT0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func writeEntityWorld(t *testing.T, d neo4j.DriverWithContext, name string) entityWorld {
	t.Helper()
	f := newFixture(t, d, name+"-sara")
	cleanupFacts(t, d, f.owner)
	f.user(nil, entityT0)
	w := entityWorld{f: f}
	at := func(m int) time.Time { return entityT0.Add(time.Duration(m) * time.Minute) }
	conf := 0.9
	w.acme = f.entity(entitySpec{name: "Acme", typ: "ORGANIZATION", subtype: "COMPANY", description: "a maker",
		aliases: []string{"Acme Inc"}, metadata: `{"attributes":{"founded":1950}}`, confidence: conf, at: at(1)})
	w.bob = f.entity(entitySpec{name: "Bob", typ: "PERSON", at: at(2)})
	w.alice = f.entity(entitySpec{name: "Alice", typ: "PERSON", at: at(3)})
	w.berlin = f.entity(entitySpec{name: "Berlin", typ: "LOCATION", at: at(4)})
	w.corp = f.entity(entitySpec{name: "ACME Corp", typ: "ORGANIZATION", aliases: []string{"ACME"}, at: at(5)})
	w.knows = f.relate(w.alice, "KNOWS", w.bob, "", at(6))
	w.worksAt = f.relate(w.bob, "WORKS_AT", w.acme, "since 2020", at(7))
	w.locatedIn = f.relate(w.acme, "LOCATED_IN", w.berlin, "HQ", at(8))
	f.merge(w.corp, w.acme, at(9))
	until := at(60 * 24 * 365)
	w.factLived = f.fact("Bob", "lives_in", "Paris", 0.5, at(0), &until)
	w.factWorks = f.fact("Bob", "works_at", "Acme", 0.9, at(10), nil)
	w.factCurrent = f.fact("Alice", "likes", "tea", 1.0, at(11), nil)

	liam := newFixture(t, d, name+"-liam")
	cleanupFacts(t, d, liam.owner)
	liam.user(nil, entityT0)
	w.liamAcme = liam.entity(entitySpec{name: "Acme", typ: "ORGANIZATION", description: "liam's", at: at(1)})
	w.liamBob = liam.entity(entitySpec{name: "Bob", typ: "PERSON", at: at(2)})
	liam.relate(w.liamBob, "WORKS_AT", w.liamAcme, "", at(3))
	liam.fact("Bob", "works_at", "Liam's Acme", 1, at(4), nil)
	return w
}

func entityIDs(es []EntityDetail) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func relatedNames(rs []RelatedEntity) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Entity.Name)
	}
	return out
}

// TestEntityReads: an entity by id and by name and type, a merged one resolving to its
// survivor, the list with its filters and cursor, and another user's entities never reached.
func TestEntityReads(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, err := NewReader(d, "", WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w := writeEntityWorld(t, d, "ent")
	sara := w.f.id

	acme, err := r.GetEntity(ctx, sara, w.acme)
	if err != nil {
		t.Fatal(err)
	}
	if acme.ID != w.acme || acme.Name != "Acme" || acme.Type != "ORGANIZATION" || acme.Subtype == nil || *acme.Subtype != "COMPANY" ||
		acme.Description == nil || *acme.Description != "a maker" || acme.Confidence != 0.9 || string(acme.Attributes) != `{"founded":1950}` ||
		!slices.Equal(acme.Aliases, []string{"Acme Inc", "ACME Corp", "ACME"}) || !slices.Equal(acme.MergedIDs, []string{w.corp}) ||
		acme.ResolvedFrom != nil || acme.CreatedAt == nil || !acme.CreatedAt.Equal(entityT0.Add(time.Minute)) || acme.RecordedSeq == nil {
		t.Errorf("Acme = %+v", acme)
	}
	bob, err := r.GetEntity(ctx, sara, w.bob)
	if err != nil || bob.Confidence != 1 || string(bob.Attributes) != "{}" || bob.Subtype != nil || bob.Description != nil ||
		len(bob.Aliases) != 0 || bob.Aliases == nil || bob.MergedIDs == nil {
		t.Errorf("Bob (nothing optional given) = %+v, %v", bob, err)
	}
	// The merged entity's id reaches the survivor, saying so.
	got, err := r.GetEntity(ctx, sara, w.corp)
	if err != nil || got.ID != w.acme || got.ResolvedFrom == nil || *got.ResolvedFrom != w.corp {
		t.Errorf("merged ACME Corp = %+v, %v; want Acme resolved from %s", got, err, w.corp)
	}
	// By name and type: the derived id, through a merge too.
	for _, c := range []struct{ name, typ, want string }{
		{"Acme", "ORGANIZATION", w.acme}, {"ACME Corp", "ORGANIZATION", w.acme}, {"Bob", "PERSON", w.bob},
	} {
		if got, err := r.GetEntityByName(ctx, sara, c.name, c.typ); err != nil || got.ID != c.want {
			t.Errorf("by name %s/%s = %+v, %v; want %s", c.name, c.typ, got, err, c.want)
		}
	}
	// Unknown: another type, another user's id, an unknown user.
	var missing *EntityNotFoundError
	for _, c := range []struct {
		name string
		err  error
	}{
		{"another type", func() error { _, err := r.GetEntityByName(ctx, sara, "Acme", "PERSON"); return err }()},
		{"liam's id", func() error { _, err := r.GetEntity(ctx, sara, w.liamAcme); return err }()},
		{"an unknown id", func() error { _, err := r.GetEntity(ctx, sara, events.NewID()); return err }()},
		{"an unknown user", func() error { _, err := r.GetEntity(ctx, sara+".unknown", w.acme); return err }()},
	} {
		if !errors.Is(c.err, ErrNotFound) || !errors.As(c.err, &missing) {
			t.Errorf("%s: %v, want an EntityNotFoundError", c.name, c.err)
		}
	}
	if _, err := r.GetEntity(ctx, sara, ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty id: %v", err)
	}
	if _, err := r.GetEntityByName(ctx, sara, "Acme", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("by name without a type: %v", err)
	}

	// The list: by name, then id; the tombstone is not listed.
	list := func(q EntityQuery) EntityPage {
		t.Helper()
		p, err := r.Entities(ctx, sara, q)
		if err != nil {
			t.Fatalf("Entities(%+v): %v", q, err)
		}
		return p
	}
	if p := list(EntityQuery{}); !slices.Equal(entityIDs(p.Entities), []string{"Acme", "Alice", "Berlin", "Bob"}) || p.NextCursor != "" {
		t.Errorf("entities: %v %q", entityIDs(p.Entities), p.NextCursor)
	}
	if p := list(EntityQuery{Type: "PERSON"}); !slices.Equal(entityIDs(p.Entities), []string{"Alice", "Bob"}) {
		t.Errorf("PERSON entities: %v", entityIDs(p.Entities))
	}
	// By name alone: the name, or an alias (the merged entity's name is one now).
	for name, want := range map[string][]string{"Bob": {"Bob"}, "Acme Inc": {"Acme"}, "ACME Corp": {"Acme"}, "Nobody": {}} {
		if p := list(EntityQuery{Name: name}); !slices.Equal(entityIDs(p.Entities), want) {
			t.Errorf("entities named %q: %v, want %v", name, entityIDs(p.Entities), want)
		}
	}
	// Pages of one: every entity once, in order.
	var names []string
	q := EntityQuery{Limit: 1}
	for i := 0; i < 10; i++ {
		p := list(q)
		names = append(names, entityIDs(p.Entities)...)
		if p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	if !slices.Equal(names, []string{"Acme", "Alice", "Berlin", "Bob"}) {
		t.Errorf("paged: %v", names)
	}
	if _, err := r.Entities(ctx, sara, EntityQuery{Cursor: "bm90IGEgY3Vyc29y"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("a foreign cursor: %v", err)
	}
	if p := list(EntityQuery{Type: "ORGANIZATION"}); len(p.Entities) != 1 || p.Entities[0].ID != w.acme || *p.Entities[0].Description != "a maker" {
		t.Errorf("sara's organisations: %+v (liam's Acme must not be among them)", p.Entities)
	}
	if p, err := r.Entities(ctx, sara+".unknown", EntityQuery{}); err != nil || p.Entities == nil || len(p.Entities) != 0 {
		t.Errorf("an unknown user's entities: %+v, %v; want []", p, err)
	}
}

// TestRelatedEntities: breadth first up to three hops, each entity once at its shortest
// distance with its path, directions and types, the limit, and never another user's.
func TestRelatedEntities(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, err := NewReader(d, "", WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w := writeEntityWorld(t, d, "rel")
	sara := w.f.id
	related := func(id string, q RelatedQuery) Related {
		t.Helper()
		out, err := r.RelatedEntities(ctx, sara, id, q)
		if err != nil {
			t.Fatalf("RelatedEntities(%s, %+v): %v", id, q, err)
		}
		return out
	}
	// One hop from Bob, both ways: Acme (out, WORKS_AT), Alice (in, KNOWS); by type first.
	one := related(w.bob, RelatedQuery{})
	if !slices.Equal(relatedNames(one.Related), []string{"Alice", "Acme"}) || one.Truncated || one.Entity.ID != w.bob {
		t.Fatalf("one hop from Bob: %v truncated=%v", relatedNames(one.Related), one.Truncated)
	}
	alice, acme := one.Related[0], one.Related[1]
	if alice.Depth != 1 || len(alice.Path) != 1 || alice.Path[0].Type != "KNOWS" || alice.Path[0].Direction != Incoming ||
		alice.Path[0].SourceID != w.alice || alice.Path[0].TargetID != w.bob || alice.Path[0].ID != w.knows || alice.Path[0].Confidence != 1 {
		t.Errorf("Alice: %+v", alice)
	}
	if acme.Path[0].Type != "WORKS_AT" || acme.Path[0].Direction != Outgoing || acme.Path[0].ID != w.worksAt ||
		acme.Path[0].Description == nil || *acme.Path[0].Description != "since 2020" || string(acme.Path[0].Attributes) != "{}" ||
		acme.Entity.ID != w.acme || !slices.Equal(acme.Entity.MergedIDs, []string{w.corp}) {
		t.Errorf("Acme: %+v", acme)
	}
	// Three hops from Alice: Bob, Acme, Berlin, each with the path that reached it.
	three := related(w.alice, RelatedQuery{Depth: 3})
	if !slices.Equal(relatedNames(three.Related), []string{"Bob", "Acme", "Berlin"}) {
		t.Fatalf("three hops from Alice: %v", relatedNames(three.Related))
	}
	berlin := three.Related[2]
	var path []string
	for _, p := range berlin.Path {
		path = append(path, p.Type+":"+string(p.Direction))
	}
	if berlin.Depth != 3 || !slices.Equal(path, []string{"KNOWS:out", "WORKS_AT:out", "LOCATED_IN:out"}) {
		t.Errorf("Berlin at depth %d by %v", berlin.Depth, path)
	}
	if two := related(w.alice, RelatedQuery{Depth: 2}); !slices.Equal(relatedNames(two.Related), []string{"Bob", "Acme"}) {
		t.Errorf("two hops from Alice: %v", relatedNames(two.Related))
	}
	// Directions and types hold for every hop.
	if out := related(w.bob, RelatedQuery{Depth: 3, Direction: Outgoing}); !slices.Equal(relatedNames(out.Related), []string{"Acme", "Berlin"}) {
		t.Errorf("outgoing from Bob: %v", relatedNames(out.Related))
	}
	if in := related(w.berlin, RelatedQuery{Depth: 3, Direction: Incoming}); !slices.Equal(relatedNames(in.Related), []string{"Acme", "Bob", "Alice"}) {
		t.Errorf("incoming into Berlin: %v", relatedNames(in.Related))
	}
	if typed := related(w.bob, RelatedQuery{Depth: 3, Types: []string{"WORKS_AT", "KNOWS"}}); !slices.Equal(relatedNames(typed.Related), []string{"Alice", "Acme"}) {
		t.Errorf("WORKS_AT and KNOWS from Bob: %v", relatedNames(typed.Related))
	}
	// The limit cuts, and says so.
	if cut := related(w.alice, RelatedQuery{Depth: 3, Limit: 2}); !slices.Equal(relatedNames(cut.Related), []string{"Bob", "Acme"}) || !cut.Truncated {
		t.Errorf("limit 2: %v truncated=%v", relatedNames(cut.Related), cut.Truncated)
	}
	if exact := related(w.alice, RelatedQuery{Depth: 3, Limit: 3}); exact.Truncated {
		t.Errorf("limit 3 of 3: truncated")
	}
	// From the merged entity's id: the survivor's relationships, saying so.
	if m := related(w.corp, RelatedQuery{}); m.Entity.ID != w.acme || m.Entity.ResolvedFrom == nil ||
		!slices.Equal(relatedNames(m.Related), []string{"Berlin", "Bob"}) {
		t.Errorf("from the merged ACME Corp: %+v", m)
	}
	// An isolated entity has none; another user's entity is not found.
	iso := w.f.entity(entitySpec{name: "Loner", typ: "PERSON", at: entityT0})
	if l := related(iso, RelatedQuery{Depth: 3}); l.Related == nil || len(l.Related) != 0 {
		t.Errorf("an isolated entity: %+v", l)
	}
	if _, err := r.RelatedEntities(ctx, sara, w.liamBob, RelatedQuery{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("liam's Bob from sara: %v", err)
	}
	for _, q := range []RelatedQuery{{Depth: 4}, {Depth: -1}, {Direction: "up"}, {Types: []string{""}}, {Limit: 51}} {
		if _, err := r.RelatedEntities(ctx, sara, w.bob, q); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: %v, want an invalid argument", q, err)
		}
	}
}

// TestFacts: a user's facts by subject and predicate, valid at as_of, in the library's order,
// never another user's.
func TestFacts(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, err := NewReader(d, "", WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w := writeEntityWorld(t, d, "fact")
	sara := w.f.id
	ids := func(fs []Fact) []string {
		out := make([]string, 0, len(fs))
		for _, f := range fs {
			out = append(out, f.ID)
		}
		return out
	}
	facts := func(q FactQuery) []Fact {
		t.Helper()
		fs, err := r.Facts(ctx, sara, q)
		if err != nil {
			t.Fatalf("Facts(%+v): %v", q, err)
		}
		return fs
	}
	// Highest confidence first.
	if got := facts(FactQuery{}); !slices.Equal(ids(got), []string{w.factCurrent, w.factWorks, w.factLived}) {
		t.Errorf("facts: %v", ids(got))
	}
	bob := facts(FactQuery{Subject: "Bob"})
	if !slices.Equal(ids(bob), []string{w.factWorks, w.factLived}) {
		t.Fatalf("about Bob: %v", ids(bob))
	}
	if f := bob[0]; f.Subject != "Bob" || f.Predicate != "works_at" || f.Object != "Acme" || f.Confidence != 0.9 ||
		f.ValidUntil != nil || f.ValidFrom == nil || string(f.Metadata) != `{"source":"test"}` || f.RecordedSeq == nil {
		t.Errorf("Bob works_at Acme: %+v", f)
	}
	if got := facts(FactQuery{Subject: "Bob", Predicate: "lives_in"}); !slices.Equal(ids(got), []string{w.factLived}) {
		t.Errorf("Bob lives_in: %v", ids(got))
	}
	// as_of keeps valid_from <= t < valid_until.
	at := func(m int) *time.Time { t := entityT0.Add(time.Duration(m) * time.Minute); return &t }
	for _, c := range []struct {
		asOf *time.Time
		want []string
	}{
		{at(-1), []string{}},
		{at(0), []string{w.factLived}},
		{at(10), []string{w.factWorks, w.factLived}},
		{at(60 * 24 * 365), []string{w.factCurrent, w.factWorks}},
	} {
		if got := facts(FactQuery{AsOf: c.asOf}); !slices.Equal(ids(got), c.want) {
			t.Errorf("as of %s: %v, want %v", c.asOf, ids(got), c.want)
		}
	}
	// known_at keeps what was recorded by then (the fixture records a fact at its valid_from).
	for _, c := range []struct {
		knownAt *time.Time
		want    []string
	}{
		{at(-1), []string{}},
		{at(10), []string{w.factWorks, w.factLived}},
		{at(11), []string{w.factCurrent, w.factWorks, w.factLived}},
	} {
		if got := facts(FactQuery{KnownAt: c.knownAt}); !slices.Equal(ids(got), c.want) {
			t.Errorf("known at %s: %v, want %v", c.knownAt, ids(got), c.want)
		}
	}
	if got := facts(FactQuery{Limit: 1}); len(got) != 1 {
		t.Errorf("limit 1: %d facts", len(got))
	}
	for _, got := range facts(FactQuery{}) {
		if strings.Contains(got.Object, "Liam") {
			t.Errorf("sara reads liam's fact %+v", got)
		}
	}
	if fs, err := r.Facts(ctx, sara+".unknown", FactQuery{}); err != nil || fs == nil || len(fs) != 0 {
		t.Errorf("an unknown user's facts: %v %v", fs, err)
	}
}

// TestEntitySharedTenant: the shared tenant's entities, relationships and facts are read with
// identifier "" and are nobody else's.
func TestEntitySharedTenant(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, err := NewReader(d, "", WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w := term(t)
	s := sharedFixture(t, d)
	a := s.entity(entitySpec{name: "Shared A " + w, typ: "PERSON", at: entityT0})
	b := s.entity(entitySpec{name: "Shared B " + w, typ: "PERSON", at: entityT0})
	s.relate(a, "KNOWS", b, "", entityT0)
	subject := "shared subject " + w
	fact := s.fact(subject, "is", "shared", 1, entityT0, nil)
	t.Cleanup(func() {
		_, _ = neo4j.ExecuteQuery(context.Background(), d, "UNWIND $ids AS id MATCH (n {id: id}) WHERE n:Entity OR n:Fact DETACH DELETE n",
			map[string]any{"ids": []string{a, b, fact}}, neo4j.EagerResultTransformer)
	})
	if e, err := r.GetEntityByName(ctx, "", "Shared A "+w, "PERSON"); err != nil || e.ID != a {
		t.Errorf("shared by name: %+v %v", e, err)
	}
	if p, err := r.Entities(ctx, "", EntityQuery{Name: "Shared B " + w}); err != nil || len(p.Entities) != 1 || p.Entities[0].ID != b {
		t.Errorf("shared list: %+v %v", p, err)
	}
	if rel, err := r.RelatedEntities(ctx, "", a, RelatedQuery{}); err != nil || len(rel.Related) != 1 || rel.Related[0].Entity.ID != b {
		t.Errorf("shared related: %+v %v", rel, err)
	}
	if fs, err := r.Facts(ctx, "", FactQuery{Subject: subject}); err != nil || len(fs) != 1 || fs[0].ID != fact {
		t.Errorf("shared facts: %+v %v", fs, err)
	}
	// A user reads none of it.
	sara := newFixture(t, d, "shared-ent")
	sara.user(nil, entityT0)
	if _, err := r.GetEntity(ctx, sara.id, a); !errors.Is(err, ErrNotFound) {
		t.Errorf("a user reads the shared tenant's entity: %v", err)
	}
	if fs, err := r.Facts(ctx, sara.id, FactQuery{Subject: subject}); err != nil || len(fs) != 0 {
		t.Errorf("a user reads the shared tenant's facts: %v %v", fs, err)
	}
}

// TestEntityHTTP: the routes, their answers, 404s and 400s, the consistency token.
func TestEntityHTTP(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	srv := newServer(t, d)
	w := writeEntityWorld(t, d, "enthttp")
	u := userURL(srv.url, w.f.id)

	var e EntityDetail
	if code, body := get(t, u+"/entities/"+w.corp, nil, &e); code != 200 || e.ID != w.acme || e.ResolvedFrom == nil {
		t.Fatalf("merged entity: %d %s", code, body)
	}
	if code, body := get(t, u+"/entities/by-name?name=Bob&type=PERSON", nil, &e); code != 200 || e.ID != w.bob ||
		!strings.Contains(string(body), `"attributes":{}`) || !strings.Contains(string(body), `"aliases":[]`) ||
		!strings.Contains(string(body), `"subtype":null`) {
		t.Fatalf("by name: %d %s", code, body)
	}
	var page EntityPage
	if code, body := get(t, u+"/entities?type=PERSON&limit=1", nil, &page); code != 200 || len(page.Entities) != 1 ||
		page.Entities[0].Name != "Alice" || page.NextCursor == "" {
		t.Fatalf("list: %d %s", code, body)
	}
	next := page.NextCursor
	page = EntityPage{}
	if code, body := get(t, u+"/entities?type=PERSON&limit=1&cursor="+next, nil, &page); code != 200 ||
		len(page.Entities) != 1 || page.Entities[0].Name != "Bob" || page.NextCursor != "" {
		t.Fatalf("next page: %d %s", code, body)
	}
	var rel Related
	if code, body := get(t, u+"/entities/"+w.bob+"/related?depth=2&type=WORKS_AT&type=LOCATED_IN&direction=out", nil, &rel); code != 200 ||
		!slices.Equal(relatedNames(rel.Related), []string{"Acme", "Berlin"}) || !strings.Contains(string(body), `"direction":"out"`) {
		t.Fatalf("related: %d %s", code, body)
	}
	var facts struct{ Facts []Fact }
	if code, body := get(t, u+"/facts?subject=Bob&as_of=2026-05-01T09:05:00Z", nil, &facts); code != 200 ||
		len(facts.Facts) != 1 || facts.Facts[0].ID != w.factLived {
		t.Fatalf("facts: %d %s", code, body)
	}
	// Not found: 404 naming the entity; collections of an unknown user are empty.
	for _, p := range []string{"/entities/" + w.liamAcme, "/entities/by-name?name=Acme&type=PERSON", "/entities/" + w.liamAcme + "/related"} {
		if code, body := get(t, u+p, nil, nil); code != 404 || !strings.Contains(string(body), "entity") ||
			!strings.Contains(string(body), w.f.id) {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	unknown := userURL(srv.url, w.f.id+".unknown")
	for p, want := range map[string]string{"/entities": `{"entities":[]}`, "/facts": `{"facts":[]}`} {
		if code, body := get(t, unknown+p, nil, nil); code != 200 || strings.TrimSpace(string(body)) != want {
			t.Errorf("unknown user %s: %d %s", p, code, body)
		}
	}
	// Bad input: 400 naming the parameter.
	for p, field := range map[string]string{
		"/entities?limit=0":                               "limit",
		"/entities?cursor=x":                              "cursor",
		"/entities?kind=PERSON":                           "kind",
		"/entities?type=a&type=b":                         "type",
		"/entities/by-name?name=Bob":                      "type",
		"/entities/by-name?type=PERSON":                   "name",
		"/entities/" + w.bob + "?x=1":                     "x",
		"/entities/" + w.bob + "/related?depth=4":         "depth",
		"/entities/" + w.bob + "/related?direction=up":    "direction",
		"/entities/" + w.bob + "/related?type=":           "type",
		"/entities/" + w.bob + "/related?depth=1&depth=2": "depth",
		"/facts?as_of=yesterday":                          "as_of",
		"/facts?subject=":                                 "subject",
	} {
		code, body := get(t, u+p, nil, nil)
		if code != 400 || !strings.Contains(string(body), `"field":"`+field+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %s", p, code, body, field)
		}
	}
	// A consistency token the projection has not reached: 504, as on every read.
	if code, _ := get(t, u+"/entities", http.Header{ConsistencyHeader: {"9223372036854775807"}}, nil); code != 504 {
		t.Errorf("entities with an unreached token: %d", code)
	}
	if code, _ := get(t, u+"/facts?consistency=9223372036854775807", nil, nil); code != 504 {
		t.Errorf("facts with an unreached token: %d", code)
	}
	// The shared tenant's routes exist only with multi-tenant mode off.
	if code, body := get(t, srv.url+"/v1/shared/entities", nil, nil); code != 404 || !strings.Contains(string(body), "multi-tenant") {
		t.Errorf("shared entities with multi-tenant mode on: %d %s", code, body)
	}
}
