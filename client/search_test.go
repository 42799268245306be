package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestSearchAsks: what the searches send (the kind's filter, limit, the user's consistency
// token) and how their answers decode.
func TestSearchAsks(t *testing.T) {
	t.Parallel()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		if r.URL.Query().Get("q") == "*" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error": "q: \"*\" has no word to search for", "field": "q"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{
			"messages": [{"id": "m1", "role": "user", "content": "healthcare team", "session_id": "s1", "score": 1.5}],
			"preferences": [{"id": "p1", "category": "consultants", "preference": "senior", "superseded_by": "p2", "score": 0.5}],
			"entities": [{"id": "e1", "name": "Healthcare", "type": "Industry", "description": null, "score": 2}],
			"steps": [{"id": "s1", "thought": "look", "trace_id": "t1", "session_id": "s", "task": "find", "outcome": null,
			           "success": true, "tool_calls": [], "score": 0.25}]}`))
	}))
	t.Cleanup(srv.Close)
	c, err := New(WithHTTP(srv.URL, srv.URL), WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	c.noteToken("sara@omg.com", 7)
	ctx := context.Background()
	msgs, err := c.ShortTerm.SearchMessages(ctx, "sara@omg.com", SearchQuery{Text: "healthcare team", SessionID: "s1", Limit: 5})
	if err != nil || len(msgs) != 1 || msgs[0].ID != "m1" || msgs[0].SessionID != "s1" || msgs[0].Score != 1.5 {
		t.Errorf("SearchMessages = %+v, %v", msgs, err)
	}
	prefs, err := c.LongTerm.SearchPreferences(ctx, "sara@omg.com", SearchQuery{Text: "senior", Category: "consultants"}, AtLeast(9))
	if err != nil || len(prefs) != 1 || prefs[0].User != "sara@omg.com" || prefs[0].SupersededBy == nil || prefs[0].Score != 0.5 {
		t.Errorf("SearchPreferences = %+v, %v", prefs, err)
	}
	ents, err := c.LongTerm.SearchEntities(ctx, "liam@omg.com", SearchQuery{Text: "health", Type: "Industry"})
	if err != nil || len(ents) != 1 || ents[0].Name != "Healthcare" || ents[0].Description != nil || ents[0].Score != 2 {
		t.Errorf("SearchEntities = %+v, %v", ents, err)
	}
	steps, err := c.Reasoning.SearchSteps(ctx, "", SearchQuery{Text: "look", SuccessOnly: true})
	if err != nil || len(steps) != 1 || steps[0].TraceID != "t1" || steps[0].Task != "find" || steps[0].Success == nil ||
		!*steps[0].Success || steps[0].Outcome != nil || steps[0].Score != 0.25 {
		t.Errorf("SearchSteps = %+v, %v", steps, err)
	}
	if _, err := c.ShortTerm.SearchMessages(ctx, "sara@omg.com", SearchQuery{Text: "*"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a search without a word: %v, want ErrInvalid", err)
	}
	want := []string{
		"/v1/users/sara@omg.com/search/messages?consistency=7&limit=5&q=healthcare+team&session_id=s1",
		"/v1/users/sara@omg.com/search/preferences?category=consultants&consistency=9&q=senior",
		"/v1/users/liam@omg.com/search/entities?q=health&type=Industry",
		"/v1/shared/search/steps?q=look&success_only=true",
		"/v1/users/sara@omg.com/search/messages?consistency=7&q=%2A",
	}
	if !slices.Equal(got, want) {
		t.Errorf("requests\n%q\nwant\n%q", got, want)
	}
}
