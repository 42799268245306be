package e2e

import (
	"context"
	"slices"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestSearchThroughTheStack: what the client writes through the ingestor and the projector is
// found by the client's searches, each user's only: two users write the same words, each
// finds their own messages, preferences, entities and steps, with the kind's filters; once
// one is erased, nothing of theirs is found and the other's still is.
func TestSearchThroughTheStack(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	d := testenv.Neo4j(t)
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	t.Cleanup(func() { testenv.Cleanup(t, d, sara, liam) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	w := "zq" + events.NewID()[24:]

	type written struct {
		msgs              []string
		pref, trace, step string
	}
	own := map[string]*written{}
	for _, u := range []string{sara, liam} {
		x := &written{}
		own[u] = x
		for _, m := range []struct{ session, text string }{{"s1", "find me a " + w + " team"}, {"s2", "more about " + w}, {"s2", "nothing here"}} {
			msg, err := c.ShortTerm.AddMessage(ctx, m.session, "user", m.text, client.ForUser(u))
			if err != nil {
				t.Fatal(err)
			}
			x.msgs = append(x.msgs, msg.ID)
		}
		p, err := c.LongTerm.AddPreference(ctx, "consultants", "senior "+w+" consultants", client.ForUser(u),
			client.AppliesTo(client.EntityRef{Name: w + " Health", Type: "Industry"}))
		if err != nil {
			t.Fatal(err)
		}
		x.pref = p.ID
		tr, err := c.Reasoning.StartTrace(ctx, "s1", "staff the "+w+" project", client.ForUser(u))
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.Reasoning.AddStep(ctx, tr.ID, client.Thought("search the "+w+" pool"), client.Action("search"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Reasoning.CompleteTrace(ctx, tr.ID, client.WithOutcome("two found"), client.WithSuccess(true)); err != nil {
			t.Fatal(err)
		}
		x.trace, x.step = tr.ID, st.ID
	}

	for _, u := range []string{sara, liam} {
		x := own[u]
		// The client's read-your-writes waits until the user's writes are projected.
		msgs, err := c.ShortTerm.SearchMessages(ctx, u, client.SearchQuery{Text: w})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.ID)
			if m.Score <= 0 || m.SessionID == "" {
				t.Errorf("%s: message hit %+v", u, m)
			}
		}
		slices.Sort(ids)
		want := slices.Clone(x.msgs[:2])
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("%s's messages: %v, want %v", u, ids, want)
		}
		msgs, err = c.ShortTerm.SearchMessages(ctx, u, client.SearchQuery{Text: w + " team", SessionID: "s1"})
		if err != nil || len(msgs) != 1 || msgs[0].ID != x.msgs[0] {
			t.Errorf("%s's messages of s1: %+v %v", u, msgs, err)
		}
		prefs, err := c.LongTerm.SearchPreferences(ctx, u, client.SearchQuery{Text: w, Category: "consultants"})
		if err != nil || len(prefs) != 1 || prefs[0].ID != x.pref || len(prefs[0].AppliesTo) != 1 {
			t.Errorf("%s's preferences: %+v %v", u, prefs, err)
		}
		ents, err := c.LongTerm.SearchEntities(ctx, u, client.SearchQuery{Text: w, Type: "Industry"})
		if err != nil || len(ents) != 1 || ents[0].ID != events.EntityID(u, w+" Health", "Industry") {
			t.Errorf("%s's entities: %+v %v", u, ents, err)
		}
		steps, err := c.Reasoning.SearchSteps(ctx, u, client.SearchQuery{Text: w, SuccessOnly: true})
		if err != nil || len(steps) != 1 || steps[0].ID != x.step || steps[0].TraceID != x.trace ||
			steps[0].Task != "staff the "+w+" project" || steps[0].Outcome == nil || *steps[0].Outcome != "two found" {
			t.Errorf("%s's steps: %+v %v", u, steps, err)
		}
	}

	// Erase sara: the client's next reads about her wait for the erasure.
	if _, err := c.Users.EraseUser(ctx, sara); err != nil {
		t.Fatal(err)
	}
	q := client.SearchQuery{Text: w}
	msgs, err1 := c.ShortTerm.SearchMessages(ctx, sara, q)
	prefs, err2 := c.LongTerm.SearchPreferences(ctx, sara, q)
	ents, err3 := c.LongTerm.SearchEntities(ctx, sara, q)
	steps, err4 := c.Reasoning.SearchSteps(ctx, sara, q)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(msgs)+len(prefs)+len(ents)+len(steps) != 0 {
		t.Errorf("erased sara's searches found %d messages, %d preferences, %d entities, %d steps", len(msgs), len(prefs), len(ents), len(steps))
	}
	tok, _ := events.TenantToken(sara)
	res, err := neo4j.ExecuteQuery(context.Background(), d, "MATCH (n {owner: $owner}) RETURN count(n)", map[string]any{"owner": tok}, neo4j.EagerResultTransformer)
	if err != nil || res.Records[0].Values[0].(int64) != 0 {
		t.Errorf("erased sara's nodes left: %v %v", res.Records, err)
	}
	if msgs, err := c.ShortTerm.SearchMessages(ctx, liam, q); err != nil || len(msgs) != 2 {
		t.Errorf("liam's messages after sara's erasure: %+v %v", msgs, err)
	}
}
