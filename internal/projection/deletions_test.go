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

// chainOf reads a conversation's messages along FIRST_MESSAGE and NEXT_MESSAGE, and checks
// that the chain is the whole conversation: every HAS_MESSAGE on it once, one first, the tail
// (last_message_id) its end. exists is false when the conversation is gone.
func chainOf(ctx context.Context, t *testing.T, d neo4j.DriverWithContext, conv string) (contents []string, exists bool) {
	t.Helper()
	recs := query(ctx, t, d, `
MATCH (c:Conversation {id: $id})
OPTIONAL MATCH p = (c)-[:FIRST_MESSAGE]->(:Message)-[:NEXT_MESSAGE*0..]->(last:Message)
  WHERE NOT (last)-[:NEXT_MESSAGE]->()
RETURN CASE WHEN p IS NULL THEN [] ELSE [n IN nodes(p)[1..] | n.content] END AS chain, last.id AS last,
       c.last_message_id AS tail, COUNT { (c)-[:HAS_MESSAGE]->() } AS n, COUNT { (c)-[:FIRST_MESSAGE]->() } AS firsts,
       COUNT { (c)-[:HAS_MESSAGE]->(m)<-[:NEXT_MESSAGE]-(:Message)-[:NEXT_MESSAGE]->(o) WHERE o <> m } AS forks`,
		map[string]any{"id": conv})
	if len(recs) == 0 {
		return nil, false
	}
	if len(recs) != 1 {
		t.Fatalf("conversation %s: %d chains, want one", conv, len(recs))
	}
	m := recs[0].AsMap()
	for _, c := range m["chain"].([]any) {
		contents = append(contents, c.(string))
	}
	if n := m["n"].(int64); n != int64(len(contents)) {
		t.Errorf("conversation %s has %d messages, its chain %d: %v", conv, n, len(contents), contents)
	}
	if f := m["firsts"].(int64); (len(contents) == 0 && f != 0) || (len(contents) > 0 && f != 1) {
		t.Errorf("conversation %s has %d FIRST_MESSAGE for %d messages", conv, f, len(contents))
	}
	if m["tail"] != m["last"] {
		t.Errorf("conversation %s: last_message_id %v, the chain ends at %v", conv, m["tail"], m["last"])
	}
	return contents, true
}

// deletionLoad writes two sessions of a, deletes a middle, a first and a last message of the
// first, adds to it, deletes what is gone or never was or is in another conversation, clears
// the second session twice and starts it anew.
func deletionLoad(rc *recorder, a tenant) (load []Record, deletions []Record, ids map[string]string) {
	s1, s2 := events.ConversationID(a.user, "s1"), events.ConversationID(a.user, "s2")
	ids = map[string]string{}
	msg := func(session, conv, content string) Record {
		ids[content] = events.NewID()
		return rc.rec(a.user, events.MessageAdded{MessageID: ids[content], ConversationID: conv, SessionID: session, Role: "user", Content: content})
	}
	del := func(content, conv string) Record {
		id := ids[content]
		if id == "" {
			id = events.NewID()
		}
		d := events.MessageDeleted{MessageID: id}
		if conv != "" {
			d.ConversationID, d.SessionID = conv, "s1"
		}
		r := rc.rec(a.user, d)
		deletions = append(deletions, r)
		return r
	}
	clear := func() Record {
		r := rc.rec(a.user, events.SessionCleared{ConversationID: s2, SessionID: "s2"})
		deletions = append(deletions, r)
		return r
	}
	load = append(load,
		msg("s1", s1, "m1"), msg("s1", s1, "m2"), msg("s1", s1, "m3"), msg("s1", s1, "m4"), msg("s1", s1, "m5"),
		msg("s2", s2, "n1"), msg("s2", s2, "n2"),
	)
	// The entity the deleted message mentions stays; the mention goes with the message.
	load = append(load, rc.rec(a.user, events.EntityAdded{Name: "Acme", Type: "ORGANIZATION", MessageIDs: []string{ids["m3"], ids["m4"]}}))
	load = append(load,
		del("m3", s1), // middle, in its conversation
		del("m1", ""), // first
		del("m5", ""), // last: the tail goes back to m4
		msg("s1", s1, "m6"),
		del("m3", ""),    // again: a no-op
		del("never", ""), // never written: a no-op
		del("n1", s1),    // not in s1: a no-op, n1 stays
		clear(), clear(), // the second is a no-op
		msg("s2", s2, "n3"), // a new conversation of the same id
	)
	return load, deletions, ids
}

func TestApplyDeletions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	a, b := newTenant(t, "del-a"), newTenant(t, "del-b")
	var sc scope
	sc.add(a, b)
	cleanupScope(t, d, &sc)
	rc := newRecorder()
	// b's conversation of the same session ids must not change.
	bLoad := []Record{rc.rec(b.user, events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(b.user, "s2"),
		SessionID: "s2", Role: "user", Content: "b's"})}
	apply(ctx, t, d, bLoad)
	bBefore := fingerprintOf(ctx, t, d, scope{owners: []string{b.owner}})

	load, deletions, ids := deletionLoad(rc, a)
	s1, s2 := events.ConversationID(a.user, "s1"), events.ConversationID(a.user, "s2")
	check := func(how string) {
		t.Helper()
		if got, _ := chainOf(ctx, t, d, s1); !slices.Equal(got, []string{"m2", "m4", "m6"}) {
			t.Errorf("%s: s1 chain %v, want [m2 m4 m6]", how, got)
		}
		if got, ok := chainOf(ctx, t, d, s2); !ok || !slices.Equal(got, []string{"n3"}) {
			t.Errorf("%s: s2 chain %v (exists %v), want the new conversation [n3]", how, got, ok)
		}
		if n := value[int64](ctx, t, d, `MATCH (m:Message) WHERE m.id IN $ids RETURN count(m) AS v`,
			map[string]any{"ids": []any{ids["m1"], ids["m3"], ids["m5"], ids["n1"], ids["n2"]}}); n != 0 {
			t.Errorf("%s: %d deleted messages still in the graph", how, n)
		}
		if got := value[[]any](ctx, t, d, `MATCH (e:Entity {id: $id}) RETURN [(m:Message)-[:MENTIONS]->(e) | m.content] AS v`,
			map[string]any{"id": events.EntityID(a.user, "Acme", "ORGANIZATION")}); !slices.Equal(got, []any{"m4"}) {
			t.Errorf("%s: Acme mentioned by %v, want [m4] (the entity stays, the deleted message's mention goes)", how, got)
		}
		if n := value[int64](ctx, t, d, `MATCH (:User {identifier: $u})-[:HAS_CONVERSATION]->(c:Conversation) RETURN count(c) AS v`,
			map[string]any{"u": a.user}); n != 2 {
			t.Errorf("%s: %d conversations of the user, want 2", how, n)
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

	// A message deletion delivered again is a duplicate and changes nothing. (A clearing
	// delivered again after the session's new message would clear that too, as a new clearing
	// would: the projector's checkpoint skips redeliveries; the load's second clearing, right
	// after the first, is the no-op.)
	for _, r := range deletions {
		if r.Event.Kind != events.KindMessageDeleted {
			continue
		}
		if out := apply(ctx, t, d, []Record{r}); out.Duplicates != 1 || len(out.Applied) != 0 {
			t.Errorf("deletion %d again: %+v, want a duplicate", r.Sequence, out)
		}
	}
	if err := fingerprint.Compare(once, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Fatalf("deletions delivered again: %v", err)
	}

	// One batch: the same graph, and the counts.
	purge(ctx, t, d, scope{owners: []string{a.owner}})
	out := apply(ctx, t, d, load)
	if len(out.Rejected) != 0 {
		t.Fatalf("batch rejected: %v", out.Rejected[0].Err)
	}
	if out.Applied[events.KindMessageDeleted] != 3 || out.Applied[events.KindSessionCleared] != 1 || out.Duplicates != 4 {
		t.Errorf("outcome %+v, want 3 deletions, 1 clearing and 4 no-ops", out)
	}
	check("one batch")
	if err := fingerprint.Compare(once, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Fatalf("one batch vs event by event: %v", err)
	}

	// A replay forgets too: a Rebuild (state remembered, not looked up) in batches of 3 and 4.
	for _, size := range []int{3, 4} {
		purge(ctx, t, d, scope{owners: []string{a.owner}})
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
	if err := fingerprint.Compare(bBefore, fingerprintOf(ctx, t, d, scope{owners: []string{b.owner}}), 20); err != nil {
		t.Errorf("a's deletions changed b's graph: %v", err)
	}

	// Erasure after deletions leaves nothing of a's.
	apply(ctx, t, d, []Record{rc.rec(a.user, events.UserErased{Identifier: a.user})})
	if n := value[int64](ctx, t, d, `MATCH (n {owner: $o}) RETURN count(n) AS v`, map[string]any{"o": a.owner}); n != 0 {
		t.Errorf("%d nodes of the erased user left", n)
	}
}

// TestApplyDeletionsRejects: deleting another user's message or clearing another user's
// conversation is a dead letter and writes nothing.
func TestApplyDeletionsRejects(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	a, b := newTenant(t, "delrej-a"), newTenant(t, "delrej-b")
	var sc scope
	sc.add(a, b)
	cleanupScope(t, d, &sc)
	rc := newRecorder()
	bMsg, bConv := events.NewID(), events.ConversationID(b.user, "s")
	if out := apply(ctx, t, d, []Record{
		rc.rec(b.user, events.MessageAdded{MessageID: bMsg, ConversationID: bConv, SessionID: "s", Role: "user", Content: "b's"}),
		rc.rec(a.user, events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(a.user, "s"), SessionID: "s", Role: "user", Content: "a's"}),
	}); len(out.Rejected) != 0 {
		t.Fatalf("setup rejected: %v", out.Rejected[0].Err)
	}
	before := fingerprintOf(ctx, t, d, sc)
	for _, data := range []any{
		events.MessageDeleted{MessageID: bMsg},
		events.MessageDeleted{MessageID: bMsg, ConversationID: bConv, SessionID: "s"},
		events.SessionCleared{ConversationID: bConv, SessionID: "s"},
	} {
		out := apply(ctx, t, d, []Record{rc.rec(a.user, data)})
		if len(out.Rejected) != 1 || out.Rejected[0].Reason != ReasonForeignReference {
			t.Errorf("%T by another user: outcome %+v, want rejected as %s", data, out, ReasonForeignReference)
			continue
		}
		if msg := out.Rejected[0].Err.Error(); !strings.Contains(msg, "another owner") || !strings.Contains(msg, bConv[:8]) && !strings.Contains(msg, bMsg) {
			t.Errorf("%T: dead letter reason %q names neither the owner rule nor the node", data, msg)
		}
	}
	if err := fingerprint.Compare(before, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Errorf("rejected deletions wrote: %v", err)
	}
}
