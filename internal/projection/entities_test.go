package projection

import (
	"context"
	"slices"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
)

// entityLoad is a user's entities, relationships, mentions, a merge and facts, with the
// preference whose applies_to names one of the entities, and a second user's copy by the same
// names (which must stay apart).
func entityLoad(rc *recorder, a, b tenant) []Record {
	var out []Record
	for _, u := range []tenant{a, b} {
		msg, trace, pref := events.NewID(), events.NewID(), events.NewID()
		conf := 0.9
		out = append(out,
			rc.rec(u.user, events.MessageAdded{MessageID: msg, ConversationID: events.ConversationID(u.user, "s"), SessionID: "s",
				Role: "user", Content: "Bob joined Acme in Berlin"}),
			rc.rec(u.user, events.TraceStarted{TraceID: trace, SessionID: "s", Task: "who is Bob"}),
			rc.rec(u.user, events.PreferenceAdded{PreferenceID: pref, Category: "vendors", Preference: "prefers Acme",
				AppliesTo: []events.EntityRef{{Name: "Acme", Type: "ORGANIZATION"}}}),
			rc.rec(u.user, events.EntityAdded{Name: "Acme", Type: "ORGANIZATION", Subtype: "COMPANY", Description: "a maker",
				Aliases: []string{"Acme Inc", "Acme"}, Attributes: map[string]any{"founded": 1950.0}, Confidence: &conf,
				MessageIDs: []string{msg}, TraceIDs: []string{trace}}),
			rc.rec(u.user, events.EntityAdded{Name: "Bob", Type: "PERSON", MessageIDs: []string{msg}}),
			rc.rec(u.user, events.RelationshipAdded{Source: events.EntityRef{Name: "Bob", Type: "PERSON"},
				Target: events.EntityRef{ID: events.EntityID(u.user, "Acme", "ORGANIZATION")}, Type: "WORKS_AT", Confidence: &conf}),
			rc.rec(u.user, events.EntityAdded{Name: "ACME Corp", Type: "ORGANIZATION", Aliases: []string{"ACME"}}),
			rc.rec(u.user, events.RelationshipAdded{Source: events.EntityRef{Name: "ACME Corp", Type: "ORGANIZATION"},
				Target: events.EntityRef{Name: "Berlin", Type: "LOCATION"}, Type: "LOCATED_IN", Description: "HQ"}),
			rc.rec(u.user, events.RelationshipAdded{Source: events.EntityRef{Name: "Bob", Type: "PERSON"},
				Target: events.EntityRef{Name: "ACME Corp", Type: "ORGANIZATION"}, Type: "WORKS_AT", Description: "since 2020"}),
			rc.rec(u.user, events.EntitiesMerged{SourceID: events.EntityID(u.user, "ACME Corp", "ORGANIZATION"),
				TargetID: events.EntityID(u.user, "Acme", "ORGANIZATION")}),
			// After the merge, references to the merged entity reach the survivor.
			rc.rec(u.user, events.RelationshipAdded{Source: events.EntityRef{ID: events.EntityID(u.user, "ACME Corp", "ORGANIZATION")},
				Target: events.EntityRef{Name: "Alice", Type: "PERSON"}, Type: "EMPLOYS"}),
			rc.rec(u.user, events.EntityAdded{Name: "ACME Corp", Type: "ORGANIZATION", Description: "the maker of everything"}),
			rc.rec(u.user, events.FactAdded{FactID: events.NewID(), Subject: "Bob", Predicate: "works_at", Object: "Acme"}),
		)
	}
	return out
}

func TestApplyEntities(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	a, b := newTenant(t, "ent-a"), newTenant(t, "ent-b")
	var sc scope
	sc.add(a, b)
	cleanupScope(t, d, &sc)

	load := entityLoad(newRecorder(), a, b)
	out := apply(ctx, t, d, load)
	if len(out.Rejected) != 0 {
		t.Fatalf("rejected: %v", out.Rejected[0].Err)
	}
	if out.Applied[events.KindEntitiesMerged] != 2 || out.Applied[events.KindEntityAdded] != 8 ||
		out.Applied[events.KindRelationshipAdded] != 8 || out.Applied[events.KindFactAdded] != 2 {
		t.Fatalf("applied %v", out.Applied)
	}

	acme := events.EntityID(a.user, "Acme", "ORGANIZATION")
	corp := events.EntityID(a.user, "ACME Corp", "ORGANIZATION")
	// The preference's entity and the added one are one node, the user's, with what was added
	// (the last description by way of the merged entity's name, which reaches the survivor).
	recs := query(ctx, t, d, `
MATCH (u:User {identifier: $user})-[:HAS_ENTITY]->(e:Entity {id: $id})
RETURN e.name AS name, e.type AS type, e.subtype AS subtype, e.description AS description, e.aliases AS aliases,
       e.metadata AS metadata, e.confidence AS confidence, e.owner AS owner,
       [(p:Preference)-[:APPLIES_TO]->(e) | p.preference] AS prefs,
       [(m:Message)-[:MENTIONS]->(e) | m.content] AS messages,
       [(t:ReasoningTrace)-[:MENTIONS]->(e) | t.task] AS traces,
       [(e)-[r:RELATED_TO]->(o) | [r.type, o.name, r.id, r.description]] AS outs,
       [(o)-[r:RELATED_TO]->(e) | [r.type, o.name, r.id, r.description]] AS ins,
       [(o)-[:MERGED_INTO]->(e) | o.id] AS merged`, map[string]any{"user": a.user, "id": acme})
	if len(recs) != 1 {
		t.Fatalf("%d Acme entities of %s, want 1", len(recs), a.user)
	}
	m := recs[0].AsMap()
	if m["name"] != "Acme" || m["type"] != "ORGANIZATION" || m["subtype"] != "COMPANY" || m["description"] != "the maker of everything" ||
		m["metadata"] != `{"attributes":{"founded":1950}}` || m["confidence"] != 0.9 || m["owner"] != a.owner {
		t.Errorf("Acme = %v", m)
	}
	if got, want := m["aliases"], []any{"Acme Inc", "ACME Corp", "ACME"}; !slices.Equal(got.([]any), want) {
		t.Errorf("aliases %v, want %v (its own name left out, the merged entity's names added)", got, want)
	}
	if got := m["prefs"].([]any); len(got) != 1 || got[0] != "prefers Acme" {
		t.Errorf("preferences applying to Acme: %v", got)
	}
	if got := m["messages"].([]any); len(got) != 1 {
		t.Errorf("messages mentioning Acme: %v (the merged entity's mention folds into Acme's)", got)
	}
	if got := m["traces"].([]any); len(got) != 1 || got[0] != "who is Bob" {
		t.Errorf("traces mentioning Acme: %v", got)
	}
	berlin := events.EntityID(a.user, "Berlin", "LOCATION")
	alice := events.EntityID(a.user, "Alice", "PERSON")
	wantOuts := map[string][]any{
		"LOCATED_IN": {"LOCATED_IN", "Berlin", events.RelationshipID(a.user, acme, "LOCATED_IN", berlin), "HQ"},
		"EMPLOYS":    {"EMPLOYS", "Alice", events.RelationshipID(a.user, acme, "EMPLOYS", alice), nil},
	}
	outs := m["outs"].([]any)
	if len(outs) != len(wantOuts) {
		t.Errorf("Acme's relationships out: %v", outs)
	}
	for _, o := range outs {
		o := o.([]any)
		if !slices.Equal(o, wantOuts[o[0].(string)]) {
			t.Errorf("relationship %v, want %v", o, wantOuts[o[0].(string)])
		}
	}
	// Bob WORKS_AT Acme twice (once directly, once through ACME Corp): one edge, the later one's
	// description folded in.
	bob := events.EntityID(a.user, "Bob", "PERSON")
	ins := m["ins"].([]any)
	if len(ins) != 1 || !slices.Equal(ins[0].([]any), []any{"WORKS_AT", "Bob", events.RelationshipID(a.user, bob, "WORKS_AT", acme), "since 2020"}) {
		t.Errorf("Acme's relationships in: %v", ins)
	}
	if got := m["merged"].([]any); len(got) != 1 || got[0] != corp {
		t.Errorf("merged into Acme: %v", got)
	}
	// The merged entity stays as a tombstone without edges but its MERGED_INTO and HAS_ENTITY.
	n := value[int64](ctx, t, d, `MATCH (e:Entity {id: $id}) WHERE e.merged_into = $into
RETURN COUNT { (e)--() } AS v`, map[string]any{"id": corp, "into": acme})
	if n != 2 {
		t.Errorf("the merged entity has %d edges, want 2 (HAS_ENTITY, MERGED_INTO)", n)
	}
	if got := value[string](ctx, t, d, `MATCH (:User {identifier: $user})-[:HAS_FACT]->(f:Fact) RETURN f.subject + ' ' + f.predicate + ' ' + f.object AS v`,
		map[string]any{"user": a.user}); got != "Bob works_at Acme" {
		t.Errorf("fact %q", got)
	}
	// Nothing joins the two users.
	if n := value[int64](ctx, t, d, `MATCH (x {owner: $a})--(y) WHERE y.owner IS NOT NULL AND y.owner <> $a RETURN count(*) AS v`,
		map[string]any{"a": a.owner}); n != 0 {
		t.Errorf("%d edges from %s's nodes to another owner's", n, a.user)
	}

	once := fingerprintOf(ctx, t, d, sc)
	again := apply(ctx, t, d, load)
	if len(again.Rejected) != 0 {
		t.Fatalf("second apply rejected: %v", again.Rejected[0].Err)
	}
	if err := fingerprint.Compare(once, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Fatalf("applying the batch twice: %v", err)
	}
	purge(ctx, t, d, sc)
	for _, r := range load {
		apply(ctx, t, d, []Record{r})
	}
	if err := fingerprint.Compare(once, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Fatalf("event by event vs one batch: %v", err)
	}
	// A replay into an empty graph (Rebuild: state remembered, not looked up) in batches of 3.
	purge(ctx, t, d, sc)
	rb := NewRebuild(1 << 20)
	sess := d.NewSession(ctx, neo4j.SessionConfig{})
	defer func() { _ = sess.Close(context.WithoutCancel(ctx)) }()
	for i := 0; i < len(load); i += 3 {
		batch := load[i:min(i+3, len(load))]
		out, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (Outcome, error) { return rb.Apply(ctx, tx, batch) })
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Rejected) != 0 {
			t.Fatalf("rebuild rejected: %v", out.Rejected[0].Err)
		}
		rb.Commit()
	}
	if err := fingerprint.Compare(once, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Fatalf("rebuild vs live: %v", err)
	}

	// Erasing a deletes every entity, relationship, mention and fact of a's, and nothing of b's.
	bBefore := fingerprintOf(ctx, t, d, scope{owners: []string{b.owner}})
	rc := newRecorder()
	rc.seq = 1000
	apply(ctx, t, d, []Record{rc.rec(a.user, events.UserErased{Identifier: a.user})})
	if n := value[int64](ctx, t, d, `CALL { MATCH (n:Entity {owner: $o}) RETURN n UNION MATCH (n:Fact {owner: $o}) RETURN n
  UNION MATCH (n:User {owner: $o}) RETURN n } RETURN count(n) AS v`, map[string]any{"o": a.owner}); n != 0 {
		t.Errorf("%d entities, facts or users of the erased user left", n)
	}
	if err := fingerprint.Compare(bBefore, fingerprintOf(ctx, t, d, scope{owners: []string{b.owner}}), 20); err != nil {
		t.Errorf("erasing %s changed %s's graph: %v", a.user, b.user, err)
	}
}

func TestApplyEntitiesRejects(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	a, b := newTenant(t, "entrej-a"), newTenant(t, "entrej-b")
	var sc scope
	sc.add(a, b)
	cleanupScope(t, d, &sc)
	rc := newRecorder()
	bMsg := events.NewID()
	bAcme := events.EntityID(b.user, "Acme", "ORGANIZATION")
	aX, aY := events.EntityID(a.user, "X", "T"), events.EntityID(a.user, "Y", "T")
	setup := []Record{
		rc.rec(b.user, events.MessageAdded{MessageID: bMsg, ConversationID: events.ConversationID(b.user, "s"), SessionID: "s", Role: "user", Content: "c"}),
		rc.rec(b.user, events.EntityAdded{Name: "Acme", Type: "ORGANIZATION"}),
		rc.rec(a.user, events.EntityAdded{Name: "X", Type: "T"}),
		rc.rec(a.user, events.EntityAdded{Name: "Y", Type: "T"}),
		rc.rec(a.user, events.EntitiesMerged{SourceID: aX, TargetID: aY}),
	}
	if out := apply(ctx, t, d, setup); len(out.Rejected) != 0 {
		t.Fatalf("setup rejected: %v", out.Rejected[0].Err)
	}
	before := fingerprintOf(ctx, t, d, sc)
	cases := []struct {
		name string
		data any
		want Reason
	}{
		{"relationship to another user's entity", events.RelationshipAdded{Source: events.EntityRef{Name: "Me"}, Target: events.EntityRef{ID: bAcme}, Type: "R"}, ReasonForeignReference},
		{"relationship to an unknown entity", events.RelationshipAdded{Source: events.EntityRef{ID: events.NewID()}, Target: events.EntityRef{Name: "Me"}, Type: "R"}, ReasonMissingReference},
		{"relationship to the entity merged into it", events.RelationshipAdded{Source: events.EntityRef{ID: aX}, Target: events.EntityRef{ID: aY}, Type: "R"}, ReasonConflict},
		{"entity mentioned in another user's message", events.EntityAdded{Name: "Z", Type: "T", MessageIDs: []string{bMsg}}, ReasonForeignReference},
		{"entity mentioned in an unknown trace", events.EntityAdded{Name: "Z", Type: "T", TraceIDs: []string{events.NewID()}}, ReasonMissingReference},
		{"merge of another user's entity", events.EntitiesMerged{SourceID: bAcme, TargetID: aY}, ReasonForeignReference},
		{"merge of an unknown entity", events.EntitiesMerged{SourceID: events.NewID(), TargetID: aY}, ReasonMissingReference},
		{"merge into the entity merged into it", events.EntitiesMerged{SourceID: aY, TargetID: aX}, ReasonConflict},
	}
	for _, c := range cases {
		out := apply(ctx, t, d, []Record{rc.rec(a.user, c.data)})
		if len(out.Rejected) != 1 || out.Rejected[0].Reason != c.want {
			t.Errorf("%s: outcome %+v, want rejected as %s", c.name, out, c.want)
		}
	}
	if out := apply(ctx, t, d, []Record{rc.rec(a.user, events.EntitiesMerged{SourceID: aX, TargetID: aY})}); out.Duplicates != 1 {
		t.Errorf("a merge applied again: %+v, want a duplicate", out)
	}
	if err := fingerprint.Compare(before, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Errorf("rejected events wrote: %v", err)
	}
}
