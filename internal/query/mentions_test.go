package query

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// mentionWorld is the entity world with Sara's messages and traces that mention its entities
// (as entity_added's message_ids and trace_ids write them), one of them through the entity
// merged into Acme (the projector moves such mentions to the survivor; this one was written
// to the survivor, as the projector leaves it), and Liam's message mentioning his own Acme.
type mentionWorld struct {
	entityWorld
	m1, m2, m3, t1, t2, liamMsg string
}

func writeMentionWorld(t *testing.T, name string) mentionWorld {
	t.Helper()
	d := neo4jDriver(t)
	w := mentionWorld{entityWorld: writeEntityWorld(t, d, name)}
	f := w.f
	at := func(m int) time.Time { return entityT0.Add(time.Duration(m) * time.Minute) }
	w.m1 = f.message("s1", "user", "Bob joined Acme", at(20), nil)
	w.m2 = f.message("s1", "assistant", "Acme is in Berlin", at(21), nil)
	w.m3 = f.message("s2", "user", "nothing of note", at(22), nil)
	w.t1 = f.trace("s1", "who is Bob", at(23))
	w.t2 = f.trace("s2", "where is Acme", at(24))
	mention := func(label, from string, entities ...string) {
		f.write(`MATCH (n:`+label+` {id: $from}) UNWIND $entities AS id MATCH (e:Entity {id: id}) CREATE (n)-[:MENTIONS]->(e)`,
			map[string]any{"from": from, "entities": entities})
	}
	mention("Message", w.m1, w.bob, w.acme)
	mention("Message", w.m2, w.acme, w.berlin)
	mention("ReasoningTrace", w.t1, w.bob)
	mention("ReasoningTrace", w.t2, w.acme)
	liam := newFixture(t, d, name+"-liam")
	w.liamMsg = liam.message("s1", "user", "liam's Acme", at(25), nil)
	mention("Message", w.liamMsg, w.liamAcme)
	return w
}

// TestMentions: an entity's mentions (newest first, bounded, a merged id answering its
// survivor's) and a message's and a trace's entities, never another user's.
func TestMentions(t *testing.T) {
	t.Parallel()
	w := writeMentionWorld(t, "mentions")
	r, err := NewReader(neo4jDriver(t), "", WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ids := func(ms []MentioningMessage) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	traceIDs := func(ts []TraceSummary) []string {
		var out []string
		for _, x := range ts {
			out = append(out, x.ID)
		}
		return out
	}

	got, err := r.Mentions(ctx, w.f.id, w.acme, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got.Messages), []string{w.m2, w.m1}) || !slices.Equal(traceIDs(got.Traces), []string{w.t2}) ||
		got.Truncated || got.ResolvedFrom != nil || got.EntityID != w.acme {
		t.Errorf("Acme's mentions %+v, want messages m2, m1 and trace t2", got)
	}
	if m := got.Messages[0]; m.SessionID != "s1" || m.ConversationID == "" || m.Content != "Acme is in Berlin" || m.Timestamp == nil {
		t.Errorf("mentioning message %+v, want its content, time and conversation", m)
	}
	// The merged id answers the survivor's mentions.
	if got, err := r.Mentions(ctx, w.f.id, w.corp, 1); err != nil || got.EntityID != w.acme || got.ResolvedFrom == nil ||
		*got.ResolvedFrom != w.corp || !slices.Equal(ids(got.Messages), []string{w.m2}) || !got.Truncated {
		t.Errorf("ACME Corp's mentions, limit 1: %+v, %v; want Acme's newest, truncated", got, err)
	}
	if got, err := r.Mentions(ctx, w.f.id, w.alice, 0); err != nil || len(got.Messages) != 0 || len(got.Traces) != 0 ||
		got.Messages == nil || got.Traces == nil {
		t.Errorf("Alice's mentions %+v, %v; want empty lists", got, err)
	}
	// Another user's entity, and an unknown one: not found.
	for _, id := range []string{w.liamAcme, "not-an-entity"} {
		var nf *EntityNotFoundError
		if _, err := r.Mentions(ctx, w.f.id, id, 0); !errors.As(err, &nf) {
			t.Errorf("mentions of %s: %v, want an EntityNotFoundError", id, err)
		}
	}

	names := func(m MentionedEntities) []string { return entityIDs(m.Entities) }
	if got, err := r.MessageEntities(ctx, w.f.id, w.m2, 0); err != nil || !slices.Equal(names(got), []string{"Acme", "Berlin"}) ||
		got.MessageID != w.m2 || got.Truncated {
		t.Errorf("m2's entities %+v, %v; want Acme, Berlin", got, err)
	}
	if got, err := r.MessageEntities(ctx, w.f.id, w.m1, 1); err != nil || !slices.Equal(names(got), []string{"Acme"}) || !got.Truncated {
		t.Errorf("m1's entities, limit 1: %+v, %v; want Acme, truncated", got, err)
	}
	if got, err := r.MessageEntities(ctx, w.f.id, w.m3, 0); err != nil || len(got.Entities) != 0 || got.Entities == nil {
		t.Errorf("m3's entities %+v, %v; want an empty list", got, err)
	}
	if got, err := r.TraceEntities(ctx, w.f.id, w.t1, 0); err != nil || !slices.Equal(names(got), []string{"Bob"}) || got.TraceID != w.t1 {
		t.Errorf("t1's entities %+v, %v; want Bob", got, err)
	}
	// Liam's message is not Sara's, nor Sara's trace a message.
	var mnf *MessageNotFoundError
	if _, err := r.MessageEntities(ctx, w.f.id, w.liamMsg, 0); !errors.As(err, &mnf) {
		t.Errorf("another user's message: %v, want a MessageNotFoundError", err)
	}
	var tnf *TraceNotFoundError
	if _, err := r.TraceEntities(ctx, w.f.id, w.m1, 0); !errors.As(err, &tnf) {
		t.Errorf("a message id as a trace: %v, want a TraceNotFoundError", err)
	}
	if _, err := r.Mentions(ctx, w.f.id, w.acme, 51); err == nil {
		t.Error("limit above the maximum accepted")
	}
}

// TestMentionsHTTP: the three routes answer the reads, 404 naming what is missing, 400 naming
// the parameter.
func TestMentionsHTTP(t *testing.T) {
	t.Parallel()
	w := writeMentionWorld(t, "menthttp")
	srv := newServer(t, neo4jDriver(t))
	u := userURL(srv.url, w.f.id)
	var em EntityMentions
	if code, body := get(t, u+"/entities/"+w.bob+"/mentions?limit=5", nil, &em); code != 200 || len(em.Messages) != 1 ||
		em.Messages[0].ID != w.m1 || len(em.Traces) != 1 || em.Traces[0].ID != w.t1 || !strings.Contains(string(body), `"truncated":false`) {
		t.Errorf("Bob's mentions: %d %s", code, body)
	}
	var me MentionedEntities
	if code, body := get(t, u+"/messages/"+w.m1+"/entities", nil, &me); code != 200 || !slices.Equal(entityIDs(me.Entities), []string{"Acme", "Bob"}) {
		t.Errorf("m1's entities: %d %s", code, body)
	}
	if code, body := get(t, u+"/traces/"+w.t2+"/entities", nil, &me); code != 200 || !slices.Equal(entityIDs(me.Entities), []string{"Acme"}) {
		t.Errorf("t2's entities: %d %s", code, body)
	}
	for p, want := range map[string]string{
		"/entities/" + w.liamAcme + "/mentions": "entity", "/messages/" + w.liamMsg + "/entities": "message",
		"/traces/" + w.m1 + "/entities": "trace",
	} {
		if code, body := get(t, u+p, nil, nil); code != 404 || !strings.Contains(string(body), want) || !strings.Contains(string(body), w.f.id) {
			t.Errorf("%s: %d %s, want 404 naming the %s and the user", p, code, body, want)
		}
	}
	for p, field := range map[string]string{
		"/entities/" + w.bob + "/mentions?limit=0":  "limit",
		"/entities/" + w.bob + "/mentions?since=1":  "since",
		"/messages/" + w.m1 + "/entities?limit=x":   "limit",
		"/traces/" + w.t1 + "/entities?type=PERSON": "type",
	} {
		if code, body := get(t, u+p, nil, nil); code != 400 || !strings.Contains(string(body), `"field":"`+field+`"`) {
			t.Errorf("%s: %d %s, want 400 naming %s", p, code, body, field)
		}
	}
}
