package mcp_test

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/mcp"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestVectorSearch: the searches by meaning through the MCP protocol, the built server over
// stdio against a stack whose ingestor and query service embed with the deterministic
// hashing embedder (EMBEDDER=hash:64). Two users write the same memories through the tools
// (the ingestor embeds them); mode vector ranks every memory with a vector, nearest first,
// with the scores the embedder's vectors give; threshold drops the far ones; the kinds'
// filters apply; memory_get_similar_traces finds the traces of the nearest tasks
// (success_only, threshold, limit); and no search of one user ever finds the other's.
func TestVectorSearch(t *testing.T) {
	t.Parallel()
	const dims = 64
	stack := testenv.StartStack(t, "EMBEDDER=hash:64")
	sara, liam := testenv.User(t, "vsara"), testenv.User(t, "vliam")
	t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), sara, liam) })
	s := connectStdio(t, serverEnv(stack))

	w := "zv" + events.NewID()[24:] // a word no other test writes
	messages := []string{
		"book a table at the " + w + " sushi place",
		"the " + w + " sushi place was closed on monday",
		"renew the car insurance before june",
	}
	tasks := []string{"find a " + w + " sushi place for friday", "book the " + w + " sushi place for lunch", "compare car insurance offers"}
	type written struct {
		messages, traces []string // ids, in the order of messages and tasks
		food, sushi      string   // the food preference's id, the sushi entity's
	}
	wrote := map[string]*written{}
	for _, u := range []string{sara, liam} {
		wr := &written{}
		wrote[u] = wr
		var added mcp.AddMessagesOut
		var msgs []any
		for _, m := range messages {
			msgs = append(msgs, map[string]any{"role": "user", "content": m})
		}
		s.call("memory_add_messages", map[string]any{"user_identifier": u, "session_id": "s1", "messages": msgs}, &added)
		for _, m := range added.Messages {
			wr.messages = append(wr.messages, m.MessageID)
		}
		var food, travel mcp.AddPreferenceOut
		s.call("memory_add_preference", map[string]any{"user_identifier": u, "category": "food", "preference": "loves " + w + " sushi"}, &food)
		s.call("memory_add_preference", map[string]any{"user_identifier": u, "category": "travel", "preference": "prefers aisle seats"}, &travel)
		wr.food = food.PreferenceID
		var sushi, acme mcp.AddEntityOut
		s.call("memory_add_entity", map[string]any{"user_identifier": u, "name": w + " Sushi", "type": "ORGANIZATION",
			"description": "the sushi place by the station"}, &sushi)
		s.call("memory_add_entity", map[string]any{"user_identifier": u, "name": "Acme Insurance", "type": "ORGANIZATION"}, &acme)
		wr.sushi = sushi.ID
		for i, task := range tasks {
			var tr mcp.StartTraceOut
			s.call("memory_start_trace", map[string]any{"user_identifier": u, "session_id": "s1", "task": task}, &tr)
			wr.traces = append(wr.traces, tr.TraceID)
			if i < 2 { // the first failed, the second succeeded, the third is open
				var done mcp.CompleteTraceOut
				s.call("memory_complete_trace", map[string]any{"user_identifier": u, "trace_id": tr.TraceID, "outcome": "done", "success": i == 1}, &done)
			}
		}
		if len(wr.messages) != 3 || food.Status != mcp.StatusApplied || sushi.Status != mcp.StatusApplied || len(wr.traces) != 3 {
			t.Fatalf("writes of %s: %+v", u, wr)
		}
	}

	// expected ranks texts (with their ids) as the hashing embedder's vectors do: nearest
	// the query first, each with its score (1 + cos) / 2.
	type ranked struct {
		id    string
		score float64
	}
	expected := func(query string, texts, ids []string) []ranked {
		t.Helper()
		q, err := embed.Hash{D: dims}.Embed(query)
		if err != nil {
			t.Fatal(err)
		}
		var out []ranked
		for i, text := range texts {
			v, err := embed.Hash{D: dims}.Embed(text)
			if err != nil {
				t.Fatal(err)
			}
			var cos float64
			for j := range v {
				cos += v[j] * q[j]
			}
			out = append(out, ranked{ids[i], (1 + cos) / 2})
		}
		slices.SortFunc(out, func(a, b ranked) int { return cmp.Or(cmp.Compare(b.score, a.score), strings.Compare(a.id, b.id)) })
		return out
	}
	check := func(what string, got, want []ranked) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d hits %+v, want %+v", what, len(got), got, want)
		}
		for i := range want {
			if got[i].id != want[i].id || math.Abs(got[i].score-want[i].score) > 1e-5 {
				t.Errorf("%s: hit %d is %s (score %v), want %s (%v)", what, i, got[i].id, got[i].score, want[i].id, want[i].score)
			}
		}
	}
	messageRanks := func(hits []mcp.MessageHit) []ranked {
		var out []ranked
		for _, h := range hits {
			out = append(out, ranked{h.ID, h.Score})
		}
		return out
	}
	traceRanks := func(hits []mcp.TraceHit) []ranked {
		var out []ranked
		for _, h := range hits {
			out = append(out, ranked{h.ID, h.Score})
		}
		return out
	}

	for _, u := range []string{sara, liam} {
		other := wrote[sara]
		if u == sara {
			other = wrote[liam]
		}
		foreign := func(what string, id string) {
			t.Helper()
			if slices.Contains(other.messages, id) || slices.Contains(other.traces, id) || id == other.food || id == other.sushi {
				t.Errorf("%s of %s found the other user's %s", what, u, id)
			}
		}

		// Messages: mode vector ranks all three, nearest first, with the embedder's scores;
		// full text finds the two that share a word.
		query := w + " sushi place"
		var byMeaning, byText, near mcp.MessageHitsOut
		s.call("memory_search_messages", map[string]any{"user_identifier": u, "query": query, "mode": "vector"}, &byMeaning)
		check("messages by meaning", messageRanks(byMeaning.Messages), expected(query, messages, wrote[u].messages))
		for _, h := range byMeaning.Messages {
			foreign("messages by meaning", h.ID)
			if h.SessionID != "s1" || h.Score < 0 || h.Score > 1 || h.Content == "" {
				t.Errorf("a message hit: %+v", h)
			}
		}
		if got := byMeaning.Messages; len(got) == 3 && got[2].ID != wrote[u].messages[2] {
			t.Errorf("the insurance message is not the farthest: %+v", got)
		}
		s.call("memory_search_messages", map[string]any{"user_identifier": u, "query": query}, &byText)
		if len(byText.Messages) != 2 || slices.ContainsFunc(byText.Messages, func(h mcp.MessageHit) bool { return h.ID == wrote[u].messages[2] }) {
			t.Errorf("messages by text: %+v", byText.Messages)
		}
		// A threshold between the sushi messages and the insurance one drops it.
		if len(byMeaning.Messages) == 3 {
			th := (byMeaning.Messages[1].Score + byMeaning.Messages[2].Score) / 2
			s.call("memory_search_messages", map[string]any{"user_identifier": u, "query": query, "mode": "vector", "threshold": th}, &near)
			check("messages above the threshold", messageRanks(near.Messages), messageRanks(byMeaning.Messages[:2]))
		}
		s.call("memory_search_messages", map[string]any{"user_identifier": u, "query": query, "mode": "vector", "session_id": "s2"}, &near)
		if len(near.Messages) != 0 {
			t.Errorf("messages by meaning of another session: %+v", near.Messages)
		}
		s.call("memory_search_messages", map[string]any{"user_identifier": u, "query": query, "mode": "vector", "limit": 1}, &near)
		if len(near.Messages) != 1 || len(byMeaning.Messages) == 0 || near.Messages[0].ID != byMeaning.Messages[0].ID {
			t.Errorf("the nearest message: %+v", near.Messages)
		}

		// Preferences and entities: the sushi ones first; the kinds' filters apply.
		var prefs mcp.PreferenceHitsOut
		s.call("memory_search_preferences", map[string]any{"user_identifier": u, "query": w + " sushi", "mode": "vector"}, &prefs)
		if len(prefs.Preferences) != 2 || prefs.Preferences[0].ID != wrote[u].food || prefs.Preferences[0].Score < prefs.Preferences[1].Score {
			t.Errorf("preferences by meaning: %+v", prefs.Preferences)
		}
		for _, h := range prefs.Preferences {
			foreign("preferences by meaning", h.ID)
		}
		s.call("memory_search_preferences", map[string]any{"user_identifier": u, "query": w + " sushi", "mode": "vector", "category": "travel"}, &prefs)
		if len(prefs.Preferences) != 1 || prefs.Preferences[0].Category != "travel" {
			t.Errorf("preferences by meaning in category travel: %+v", prefs.Preferences)
		}
		var ents mcp.EntityHitsOut
		s.call("memory_search_entities", map[string]any{"user_identifier": u, "query": "sushi place " + w, "mode": "vector"}, &ents)
		if len(ents.Entities) != 2 || ents.Entities[0].ID != wrote[u].sushi || ents.Entities[0].Description == nil || ents.Entities[0].Score < ents.Entities[1].Score {
			t.Errorf("entities by meaning: %+v", ents.Entities)
		}
		for _, h := range ents.Entities {
			foreign("entities by meaning", h.ID)
		}
		s.call("memory_search_entities", map[string]any{"user_identifier": u, "query": "sushi place " + w, "mode": "vector", "type": "PERSON"}, &ents)
		if len(ents.Entities) != 0 {
			t.Errorf("entities by meaning of type PERSON: %+v", ents.Entities)
		}

		// memory_search: each kind by meaning, as the single-kind searches rank them.
		var all mcp.SearchOut
		s.call("memory_search", map[string]any{"user_identifier": u, "query": query, "mode": "vector"}, &all)
		check("memory_search's messages", messageRanks(all.Messages), messageRanks(byMeaning.Messages))
		if len(all.Preferences) != 2 || len(all.Entities) != 2 || all.Entities[0].ID != wrote[u].sushi || all.Steps != nil {
			t.Errorf("memory_search by meaning: %+v", all)
		}
		for _, h := range all.Preferences {
			foreign("memory_search", h.ID)
		}
		for _, h := range all.Entities {
			foreign("memory_search", h.ID)
		}

		// Similar traces: the nearest tasks first; success_only, threshold and limit.
		task := "find a " + w + " sushi place"
		var similar, succeeded, close, one mcp.TraceHitsOut
		s.call("memory_get_similar_traces", map[string]any{"user_identifier": u, "task": task}, &similar)
		check("similar traces", traceRanks(similar.Traces), expected(task, tasks, wrote[u].traces))
		for _, h := range similar.Traces {
			foreign("similar traces", h.ID)
		}
		if len(similar.Traces) == 3 {
			first := similar.Traces[0]
			if first.ID != wrote[u].traces[0] || first.Task != tasks[0] || first.SessionID != "s1" || first.Success == nil || *first.Success ||
				first.Outcome == nil || first.CompletedAt == nil || first.StartedAt == nil {
				t.Errorf("the nearest trace: %+v", first)
			}
			s.call("memory_get_similar_traces", map[string]any{"user_identifier": u, "task": task, "threshold": (similar.Traces[1].Score + similar.Traces[2].Score) / 2}, &close)
			check("similar traces above the threshold", traceRanks(close.Traces), traceRanks(similar.Traces[:2]))
		}
		s.call("memory_get_similar_traces", map[string]any{"user_identifier": u, "task": task, "success_only": true}, &succeeded)
		if len(succeeded.Traces) != 1 || succeeded.Traces[0].ID != wrote[u].traces[1] || succeeded.Traces[0].Success == nil || !*succeeded.Traces[0].Success {
			t.Errorf("similar traces that succeeded: %+v", succeeded.Traces)
		}
		s.call("memory_get_similar_traces", map[string]any{"user_identifier": u, "task": task, "limit": 1}, &one)
		if len(one.Traces) != 1 || one.Traces[0].ID != wrote[u].traces[0] {
			t.Errorf("the most similar trace: %+v", one.Traces)
		}
	}

	// A user with nothing written finds nothing, whatever the others hold.
	nobody := testenv.User(t, "vnobody")
	var none mcp.MessageHitsOut
	s.call("memory_search_messages", map[string]any{"user_identifier": nobody, "query": w + " sushi place", "mode": "vector"}, &none)
	var noTraces mcp.TraceHitsOut
	s.call("memory_get_similar_traces", map[string]any{"user_identifier": nobody, "task": "find a " + w + " sushi place"}, &noTraces)
	if len(none.Messages) != 0 || len(noTraces.Traces) != 0 {
		t.Errorf("a user without memories found %+v, %+v", none.Messages, noTraces.Traces)
	}

	// Refusals name the argument: Engram's (a query with no word to embed) mapped onto the
	// tools' names, and the tools' own.
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"memory_search_messages", map[string]any{"user_identifier": sara, "query": "?!", "mode": "vector"}, `invalid argument "query"`},
		{"memory_get_similar_traces", map[string]any{"user_identifier": sara, "task": "?!"}, `invalid argument "task"`},
		{"memory_search_entities", map[string]any{"user_identifier": sara, "query": "sushi", "threshold": 0.5}, `invalid argument "threshold": only with mode vector`},
		{"memory_search", map[string]any{"user_identifier": sara, "query": "sushi", "mode": "vector", "memory_types": []any{"steps"}}, `invalid argument "memory_types"`},
		{"memory_get_similar_traces", map[string]any{"user_identifier": sara, "task": "sushi", "threshold": 1.01}, `invalid argument "threshold"`},
	} {
		if msg := s.callErr(tc.tool, tc.args); !strings.Contains(msg, tc.want) {
			t.Errorf("%s(%v): %q, want %q", tc.tool, tc.args, msg, tc.want)
		}
	}
}
