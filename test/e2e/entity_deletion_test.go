package e2e

import (
	"errors"
	"slices"
	"testing"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestEntityDeletionThroughTheStack drives the Go client through the real ingestor, projector
// and query service: an entity mentioned by a message and a trace, related to another and named
// by a fact, read back from both ends of its mentions; deleted, it is gone (by id, by name,
// from the message's entities and the other's relationships, its fact too) while the message,
// the trace and the other entity stay; deleting it again or an id never written is applied
// as a no-op; deleting another user's entity is dead-lettered and it stays.
func TestEntityDeletionThroughTheStack(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	d := testenv.Neo4j(t)
	sara, liam := testenv.User(t, "entdel-sara"), testenv.User(t, "entdel-liam")
	t.Cleanup(func() { testenv.Cleanup(t, d, sara, liam) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	msg, err := c.ShortTerm.AddMessage(ctx, "s", "user", "Bob works at Acme", client.ForUser(sara))
	must(err)
	trace, err := c.Reasoning.StartTrace(ctx, "s", "who is Acme", client.ForUser(sara))
	must(err)
	acme, err := c.LongTerm.AddEntity(ctx, "Acme", "ORGANIZATION", client.ForUser(sara), client.WithAliases("Acme Inc"),
		client.MentionedIn(msg.ID), client.MentionedInTrace(trace.ID))
	must(err)
	bob, err := c.LongTerm.AddEntity(ctx, "Bob", "PERSON", client.ForUser(sara), client.MentionedIn(msg.ID))
	must(err)
	_, err = c.LongTerm.AddRelationship(ctx, client.EntityRef{ID: bob.ID}, client.EntityRef{ID: acme.ID}, "WORKS_AT", client.ForUser(sara))
	must(err)
	_, err = c.LongTerm.AddFact(ctx, "Bob", "works_at", "Acme Inc", client.ForUser(sara))
	must(err)
	keep, err := c.LongTerm.AddFact(ctx, "Bob", "lives_in", "Paris", client.ForUser(sara))
	must(err)
	liamAcme, err := c.LongTerm.AddEntity(ctx, "Acme", "ORGANIZATION", client.ForUser(liam))
	must(err)

	at := client.AtLeast(keep.Receipt.Sequence)
	m, err := c.LongTerm.GetEntityMentions(ctx, sara, acme.ID, at)
	must(err)
	if len(m.Messages) != 1 || m.Messages[0].ID != msg.ID || m.Messages[0].SessionID != "s" || len(m.Traces) != 1 || m.Traces[0].ID != trace.ID {
		t.Fatalf("Acme's mentions %+v, want the message and the trace", m)
	}
	names := func(es []client.EntityDetail) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	me, err := c.ShortTerm.GetMessageEntities(ctx, sara, msg.ID, at)
	must(err)
	if !slices.Equal(names(me.Entities), []string{"Acme", "Bob"}) {
		t.Fatalf("the message's entities %v, want [Acme Bob]", names(me.Entities))
	}

	r, err := c.LongTerm.DeleteEntity(ctx, acme.ID, client.ForUser(sara))
	must(err)
	at = client.AtLeast(r.Sequence)
	if _, err := c.LongTerm.GetEntity(ctx, sara, acme.ID, at); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("the deleted entity by id: %v, want ErrNotFound", err)
	}
	if _, err := c.LongTerm.GetEntityByName(ctx, sara, "Acme Inc", at); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("the deleted entity by its alias: %v, want ErrNotFound", err)
	}
	me, err = c.ShortTerm.GetMessageEntities(ctx, sara, msg.ID, at)
	must(err)
	if !slices.Equal(names(me.Entities), []string{"Bob"}) {
		t.Errorf("the message's entities after the deletion %v, want [Bob]", names(me.Entities))
	}
	te, err := c.Reasoning.GetTraceEntities(ctx, sara, trace.ID, at)
	must(err)
	if len(te.Entities) != 0 {
		t.Errorf("the trace's entities after the deletion %v, want none", names(te.Entities))
	}
	rel, err := c.LongTerm.GetRelatedEntities(ctx, sara, bob.ID, at)
	must(err)
	if len(rel.Related) != 0 {
		t.Errorf("Bob's related entities after the deletion: %+v, want none", rel.Related)
	}
	facts, err := c.LongTerm.GetFactsAbout(ctx, sara, "Bob", at)
	must(err)
	if len(facts) != 1 || facts[0].ID != keep.ID {
		t.Errorf("Bob's facts after the deletion %+v, want only the one not naming Acme", facts)
	}

	// Again, and an id never written: applied as no-ops.
	for _, id := range []string{acme.ID, events.NewID()} {
		r, err := c.LongTerm.DeleteEntity(ctx, id, client.ForUser(sara))
		must(err)
		if f, err := c.WaitApplied(ctx, r); err != nil || f.Status != client.FateApplied {
			t.Errorf("deleting %s again or never written: fate %+v, %v; want applied", id, f, err)
		}
	}
	// Another user's entity: dead-lettered, and it stays.
	r, err = c.LongTerm.DeleteEntity(ctx, liamAcme.ID, client.ForUser(sara))
	must(err)
	if _, err := c.WaitApplied(ctx, r); !errors.Is(err, client.ErrRejected) {
		t.Errorf("deleting another user's entity: %v, want ErrRejected", err)
	}
	if _, err := c.LongTerm.GetEntity(ctx, liam, liamAcme.ID, client.AtLeast(r.Sequence)); err != nil {
		t.Errorf("liam's entity after sara's attempt: %v", err)
	}
}

// TestMessageCountThroughTheStack: each conversation answers its own message_count (the
// library's list_sessions count), and a deletion lowers it.
func TestMessageCountThroughTheStack(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	d := testenv.Neo4j(t)
	sara := testenv.User(t, "count-sara")
	t.Cleanup(func() { testenv.Cleanup(t, d, sara) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var last *client.Message
	for _, w := range []struct{ session, text string }{{"a", "1"}, {"a", "2"}, {"a", "3"}, {"b", "x"}, {"b", "y"}} {
		if last, err = c.ShortTerm.AddMessage(ctx, w.session, "user", w.text, client.ForUser(sara)); err != nil {
			t.Fatal(err)
		}
	}
	counts := func(seq uint64) map[string]int64 {
		t.Helper()
		convs, err := c.ShortTerm.GetConversations(ctx, sara, client.AtLeast(seq))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, cv := range convs {
			out[cv.SessionID] = cv.MessageCount
		}
		return out
	}
	if got := counts(last.Receipt.Sequence); got["a"] != 3 || got["b"] != 2 || len(got) != 2 {
		t.Fatalf("message counts %v, want a: 3, b: 2", got)
	}
	r, err := c.ShortTerm.DeleteMessage(ctx, last.ID, client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	if got := counts(r.Sequence); got["a"] != 3 || got["b"] != 1 {
		t.Errorf("message counts after deleting one of b's: %v, want a: 3, b: 1", got)
	}
}

// TestCrossMemorySequence is the compatibility kit's SPEC-5.1.2 in one sequence: messages,
// then entities and a relationship between them mentioned by the messages, then a trace, all
// read back with the last write's consistency token.
func TestCrossMemorySequence(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	d := testenv.Neo4j(t)
	sara := testenv.User(t, "cross-sara")
	t.Cleanup(func() { testenv.Cleanup(t, d, sara) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	m1, err := c.ShortTerm.AddMessage(ctx, "s", "user", "I work with Alice at Acme", client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShortTerm.AddMessage(ctx, "s", "assistant", "Noted: Alice, Acme", client.ForUser(sara)); err != nil {
		t.Fatal(err)
	}
	alice, err := c.LongTerm.AddEntity(ctx, "Alice", "PERSON", client.ForUser(sara), client.MentionedIn(m1.ID))
	if err != nil {
		t.Fatal(err)
	}
	acme, err := c.LongTerm.AddEntity(ctx, "Acme", "ORGANIZATION", client.ForUser(sara), client.MentionedIn(m1.ID))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LongTerm.AddRelationship(ctx, client.EntityRef{ID: alice.ID}, client.EntityRef{ID: acme.ID}, "WORKS_AT",
		client.ForUser(sara)); err != nil {
		t.Fatal(err)
	}
	tr, err := c.Reasoning.StartTrace(ctx, "s", "where does Alice work", client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.Reasoning.CompleteTrace(ctx, tr.ID, client.WithOutcome("Acme"), client.WithSuccess(true))
	if err != nil {
		t.Fatal(err)
	}
	at := client.AtLeast(done.Sequence)
	page, err := c.ShortTerm.GetMessages(ctx, sara, "s", at)
	if err != nil || len(page.Messages) != 2 {
		t.Fatalf("messages %+v, %v; want 2", page, err)
	}
	rel, err := c.LongTerm.GetRelatedEntities(ctx, sara, alice.ID, at)
	if err != nil || len(rel.Related) != 1 || rel.Related[0].Entity.ID != acme.ID || rel.Related[0].Relationship().Type != "WORKS_AT" {
		t.Fatalf("Alice's related entities %+v, %v; want Acme by WORKS_AT", rel, err)
	}
	me, err := c.ShortTerm.GetMessageEntities(ctx, sara, m1.ID, at)
	if err != nil || len(me.Entities) != 2 {
		t.Fatalf("the first message's entities %+v, %v; want Alice and Acme", me, err)
	}
	got, err := c.Reasoning.GetTrace(ctx, sara, tr.ID, at)
	if err != nil || got.Success == nil || !*got.Success || got.Outcome == nil || *got.Outcome != "Acme" {
		t.Fatalf("the trace %+v, %v; want completed, successful, outcome Acme", got, err)
	}
}
