package projection

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
)

// entityDeletionLoad is entityLoad, then a's deletions: Acme by the id of the entity merged
// into it (the survivor goes, with the tombstone), a second time, one never written; Acme
// added anew; Bob by id (the fact naming his alias goes too).
func entityDeletionLoad(rc *recorder, a, b tenant) (load, deletions []Record) {
	load = entityLoad(rc, a, b)
	del := func(id string) Record {
		r := rc.rec(a.user, events.EntityDeleted{EntityID: id})
		deletions = append(deletions, r)
		return r
	}
	fact := func(s, p, o string) Record {
		return rc.rec(a.user, events.FactAdded{FactID: events.NewID(), Subject: s, Predicate: p, Object: o})
	}
	load = append(load,
		fact("Acme Inc", "founded_in", "1950"), // an alias of Acme
		fact("Alice", "knows", "Bob Jr"),       // no name of theirs: it stays
		fact("Bobby", "likes", "tea"),
		fact("Carol", "knows", "Dave"),
		rc.rec(a.user, events.EntityAdded{Name: "Bob", Type: "PERSON", Aliases: []string{"Bobby"}}),
		del(events.EntityID(a.user, "ACME Corp", "ORGANIZATION")),
		del(events.EntityID(a.user, "Acme", "ORGANIZATION")), // gone already: a no-op
		del(events.NewID()), // never written: a no-op
		rc.rec(a.user, events.EntityAdded{Name: "Acme", Type: "ORGANIZATION", Description: "anew"}),
		del(events.EntityID(a.user, "Bob", "PERSON")),
	)
	return load, deletions
}

func TestApplyEntityDeletion(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	a, b := newTenant(t, "entdel-a"), newTenant(t, "entdel-b")
	var sc scope
	sc.add(a, b)
	cleanupScope(t, d, &sc)
	rc := newRecorder()
	load, deletions := entityDeletionLoad(rc, a, b)
	acme, corp, bob := events.EntityID(a.user, "Acme", "ORGANIZATION"), events.EntityID(a.user, "ACME Corp", "ORGANIZATION"),
		events.EntityID(a.user, "Bob", "PERSON")

	check := func(how string) {
		t.Helper()
		m := query(ctx, t, d, `
MATCH (u:User {identifier: $user})
RETURN [(u)-[:HAS_ENTITY]->(e:Entity) | e.name] AS entities,
       [(u)-[:HAS_FACT]->(f:Fact) | f.subject + ' ' + f.predicate + ' ' + f.object] AS facts,
       [(u)-[:HAS_ENTITY]->(:Entity)-[r:RELATED_TO]->(:Entity) | r.type] AS rels,
       [(u)-[:HAS_PREFERENCE]->(p:Preference) | [p.preference, COUNT { (p)-[:APPLIES_TO]->() }]] AS prefs,
       COUNT { (u)-[:HAS_CONVERSATION]->()-[:HAS_MESSAGE]->(:Message) } AS messages,
       COUNT { (u)-[:HAS_TRACE]->(:ReasoningTrace) } AS traces,
       [(u)-[:HAS_ENTITY]->(e:Entity {id: $acme}) | [e.description, e.aliases, COUNT { ()-[:MENTIONS]->(e) }]] AS acme,
       COUNT { (e:Entity) WHERE e.id IN [$corp, $bob] } AS gone`,
			map[string]any{"user": a.user, "acme": acme, "corp": corp, "bob": bob})[0].AsMap()
		sorted := func(v any) []string {
			var out []string
			for _, x := range v.([]any) {
				out = append(out, x.(string))
			}
			slices.Sort(out)
			return out
		}
		if got := sorted(m["entities"]); !slices.Equal(got, []string{"Acme", "Alice", "Berlin"}) {
			t.Errorf("%s: entities %v, want [Acme Alice Berlin] (Acme anew)", how, got)
		}
		if got := sorted(m["facts"]); !slices.Equal(got, []string{"Alice knows Bob Jr", "Carol knows Dave"}) {
			t.Errorf("%s: facts %v, want those naming neither deleted entity by name or alias", how, got)
		}
		if got := m["rels"].([]any); len(got) != 0 {
			t.Errorf("%s: relationships %v left, want none (every one had a deleted end)", how, got)
		}
		if got, ok := m["prefs"].([]any); !ok || len(got) != 1 || got[0].([]any)[1].(int64) != 0 {
			t.Errorf("%s: preferences %v, want the one preference, without APPLIES_TO", how, m["prefs"])
		}
		if m["messages"].(int64) != 1 || m["traces"].(int64) != 1 {
			t.Errorf("%s: %v messages and %v traces, want the one of each (mentions go, what mentions stays)", how, m["messages"], m["traces"])
		}
		if got := m["acme"].([]any); len(got) != 1 || got[0].([]any)[0] != "anew" || len(got[0].([]any)[1].([]any)) != 0 ||
			got[0].([]any)[2].(int64) != 0 {
			t.Errorf("%s: Acme %v, want the new one: its description only, no aliases, no mentions", how, got)
		}
		if n := m["gone"].(int64); n != 0 {
			t.Errorf("%s: %d of the deleted and merged entities left", how, n)
		}
	}

	// Event by event, as the live projector may see them.
	for _, r := range load {
		if out := apply(ctx, t, d, []Record{r}); len(out.Rejected) != 0 {
			t.Fatalf("event %d (%s) rejected: %v", r.Sequence, r.Event.Kind, out.Rejected[0].Err)
		}
	}
	check("event by event")
	once := fingerprintOf(ctx, t, d, sc)
	bOnly := fingerprintOf(ctx, t, d, scope{owners: []string{b.owner}})

	// Delivered again, every deletion is a no-op (the last one's entity is gone for good).
	for _, r := range deletions[len(deletions)-1:] {
		if out := apply(ctx, t, d, []Record{r}); out.Duplicates != 1 || len(out.Applied) != 0 {
			t.Errorf("deletion %d again: %+v, want a duplicate", r.Sequence, out)
		}
	}

	// One batch: the same graph, and the counts.
	purge(ctx, t, d, sc)
	out := apply(ctx, t, d, load)
	if len(out.Rejected) != 0 {
		t.Fatalf("batch rejected: %v", out.Rejected[0].Err)
	}
	if out.Applied[events.KindEntityDeleted] != 2 || out.Duplicates != 2 {
		t.Errorf("outcome %+v, want 2 deletions and 2 no-ops", out)
	}
	check("one batch")
	if err := fingerprint.Compare(once, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Fatalf("one batch vs event by event: %v", err)
	}

	// A replay forgets too: a Rebuild (state remembered, not looked up) in batches of 5 and 7.
	for _, size := range []int{5, 7} {
		purge(ctx, t, d, sc)
		rb := NewRebuild(1 << 20)
		sess := d.NewSession(ctx, neo4j.SessionConfig{})
		for i := 0; i < len(load); i += size {
			batch := load[i:min(i+size, len(load))]
			out, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (Outcome, error) { return rb.Apply(ctx, tx, batch) })
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Rejected) != 0 {
				t.Fatalf("rebuild rejected: %v", out.Rejected[0].Err)
			}
			rb.Commit()
		}
		_ = sess.Close(context.WithoutCancel(ctx))
		check("rebuild")
		if err := fingerprint.Compare(once, fingerprintOf(ctx, t, d, sc), 20); err != nil {
			t.Fatalf("rebuild in batches of %d vs live: %v", size, err)
		}
	}
	if err := fingerprint.Compare(bOnly, fingerprintOf(ctx, t, d, scope{owners: []string{b.owner}}), 20); err != nil {
		t.Errorf("a's deletions changed b's graph: %v", err)
	}

	// Another user's entity: a dead letter naming it, and nothing written.
	before := fingerprintOf(ctx, t, d, sc)
	bAcme := events.EntityID(b.user, "Acme", "ORGANIZATION")
	out = apply(ctx, t, d, []Record{rc.rec(a.user, events.EntityDeleted{EntityID: bAcme})})
	if len(out.Rejected) != 1 || out.Rejected[0].Reason != ReasonForeignReference {
		t.Fatalf("deletion of another user's entity: %+v, want rejected as %s", out, ReasonForeignReference)
	}
	if msg := out.Rejected[0].Err.Error(); !strings.Contains(msg, "another owner") || !strings.Contains(msg, bAcme) {
		t.Errorf("dead letter reason %q names neither the owner rule nor the entity", msg)
	}
	if err := fingerprint.Compare(before, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Errorf("the rejected deletion wrote: %v", err)
	}

	// Erasure after deletions leaves nothing of a's.
	apply(ctx, t, d, []Record{rc.rec(a.user, events.UserErased{Identifier: a.user})})
	if n := value[int64](ctx, t, d, `MATCH (n {owner: $o}) RETURN count(n) AS v`, map[string]any{"o": a.owner}); n != 0 {
		t.Errorf("%d nodes of the erased user left", n)
	}
}
