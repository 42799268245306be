package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/ingest"
)

// inMemory connects a client to a server configured by cfg, in process. Engram's APIs are
// an HTTP server that counts the requests it gets and answers every one with answer.
func inMemory(t *testing.T, cfg Config, answer string) (*sdk.ClientSession, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	cs := inMemoryWith(t, cfg, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(answer))
	})
	return cs, &requests
}

// inMemoryWith is inMemory with Engram's APIs answered by h.
func inMemoryWith(t *testing.T, cfg Config, h http.HandlerFunc) *sdk.ClientSession {
	t.Helper()
	engram := httptest.NewServer(h)
	t.Cleanup(engram.Close)
	cfg.IngestorURL, cfg.QueryURL = engram.URL, engram.URL
	if cfg.Transport == "" {
		cfg.Transport = TransportStdio
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	s := NewServer(NewMemory(cfg, nil), cfg.Erasure, nil, nil)
	ct, st := sdk.NewInMemoryTransports()
	ctx := t.Context()
	if _, err := s.Connect(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func toolText(t *testing.T, cs *sdk.ClientSession, name string, args any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v", name, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError
}

// TestBadInputIsRefusedBeforeEngram: arguments the schema or the command's validation
// refuses answer a tool error naming the argument, and no request reaches Engram.
func TestBadInputIsRefusedBeforeEngram(t *testing.T) {
	t.Parallel()
	cs, requests := inMemory(t, Config{MultiTenant: true}, `{}`)
	u := "sara@omg.com"
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"memory_add_preference", map[string]any{"category": "c", "preference": "p"}, `invalid argument "user_identifier": required`},
		{"memory_add_preference", map[string]any{"user_identifier": u, "category": "c", "preference": "p", "confidence": -1}, `invalid argument "confidence"`},
		{"memory_add_preference", map[string]any{"user_identifier": u, "category": "c", "preference": "p", "colour": "red"}, `invalid argument "colour": not an argument`},
		{"memory_add_preference", map[string]any{"user_identifier": u, "category": 3, "preference": "p"}, `invalid argument "category"`},
		{"memory_add_preference", map[string]any{"user_identifier": u, "category": "c", "preference": "p", "applies_to": []any{map[string]any{}}}, `invalid argument "applies_to[0]"`},
		{"memory_add_preference", map[string]any{"user_identifier": u, "category": "c", "preference": "p", "applies_to": []any{map[string]any{"name": ""}}}, `invalid argument "applies_to[].name"`},
		{"memory_add_preference", map[string]any{"user_identifier": u + "\u200b", "category": "c", "preference": "p"}, `invalid argument "user_identifier"`},
		{"memory_add_preference", map[string]any{"user_identifier": u, "category": "c", "preference": "p", "valid_from": "2026-05-01"}, `invalid argument "valid_from"`},
		{"memory_add_messages", map[string]any{"user_identifier": u, "session_id": "s", "messages": []any{map[string]any{"role": "user"}}}, `invalid argument "messages[].content": required`},
		{"memory_add_messages", map[string]any{"user_identifier": u, "session_id": "s", "messages": []any{
			map[string]any{"role": "user", "content": "ok"}, map[string]any{"role": "user", "content": strings.Repeat("x", 262145)}}}, `invalid argument "messages[1].content"`},
		{"memory_add_messages", map[string]any{"user_identifier": u, "session_id": "s", "title": strings.Repeat("t", 1025), "messages": []any{
			map[string]any{"role": "user", "content": "ok"}}}, `invalid argument "title"`},
		{"memory_record_step", map[string]any{"user_identifier": u, "trace_id": "01a2320c-7ca5-7447-8bb8-8c4e68040d11", "tool_call": map[string]any{"tool_name": "t", "duration_ms": -5}}, `invalid argument "tool_call.duration_ms"`},
		{"memory_get_preferences", map[string]any{"user_identifier": u, "applies_to": map[string]any{"type": "Industry"}}, `invalid argument "applies_to"`},
		{"memory_get_preferences", map[string]any{"user_identifier": u, "as_of": "noon"}, `invalid argument "as_of"`},
		{"memory_get_conversation", map[string]any{"user_identifier": u, "session_id": "s", "limit": 0}, `invalid argument "limit"`},
		{"memory_get_conversation", map[string]any{"user_identifier": u, "session_id": "s", "order": "random"}, `invalid argument "order"`},
		{"memory_search", map[string]any{"user_identifier": u, "query": "x", "memory_types": []any{"facts"}}, `invalid argument "memory_types[]"`},
		{"memory_search", map[string]any{"user_identifier": u, "query": "x", "success_only": true}, `invalid argument "success_only"`},
		{"memory_upsert_user", map[string]any{"user_identifier": u, "attributes": manyMembers(300)}, `invalid argument "attributes"`},
		{"memory_add_entity", map[string]any{"user_identifier": u, "name": strings.Repeat("n", 257), "type": "t"}, `invalid argument "name"`},
		{"memory_add_fact", map[string]any{"user_identifier": u, "subject": strings.Repeat("s", 1025), "predicate": "p", "object": "o"}, `invalid argument "subject"`},
		{"memory_create_relationship", map[string]any{"user_identifier": u, "source": map[string]any{"name": "a", "type": "t"},
			"target": map[string]any{"name": "b", "type": "t"}, "relationship_type": strings.Repeat("R", 257)}, `invalid argument "relationship_type"`},
		{"memory_merge_entities", map[string]any{"user_identifier": u, "source_id": "01a2320c-7ca5-7447-8bb8-8c4e68040d11", "target_id": "01a2320c-7ca5-7447-8bb8-8c4e68040d11"}, `invalid argument "target_id": must differ from source_id`},
		{"memory_merge_entities", map[string]any{"user_identifier": u, "source_id": "01a2320c-7ca5-7447-8bb8-8c4e68040d11"}, `invalid argument "target_id": required`},
		{"memory_add_entity", map[string]any{"user_identifier": u, "name": "n", "type": "t", "message_ids": manyIDs(65)}, `invalid argument "message_ids"`},
		{"memory_list_entities", map[string]any{"user_identifier": u, "type": ""}, `invalid argument "type"`},
		{"memory_get_entity_mentions", map[string]any{"user_identifier": u, "entity_id": "01a2320c-7ca5-7447-8bb8-8c4e68040d11", "limit": 5000}, `invalid argument "limit"`},
		{"memory_get_trace_entities", map[string]any{"user_identifier": u, "trace_id": "t-1"}, `invalid argument "trace_id"`},
		{"memory_search_preferences", map[string]any{"user_identifier": u, "query": ""}, `invalid argument "query"`},
		{"memory_search_steps", map[string]any{"user_identifier": u, "query": "x", "category": "c"}, `invalid argument "category": not an argument`},
		// Search by meaning: mode and threshold.
		{"memory_search_messages", map[string]any{"user_identifier": u, "query": "x", "threshold": 0.5}, `invalid argument "threshold": only with mode vector`},
		{"memory_search_messages", map[string]any{"user_identifier": u, "query": "x", "mode": "text", "threshold": 0.5}, `invalid argument "threshold": only with mode vector`},
		{"memory_search_messages", map[string]any{"user_identifier": u, "query": "x", "mode": "fuzzy"}, `invalid argument "mode"`},
		{"memory_search_preferences", map[string]any{"user_identifier": u, "query": "x", "mode": "vector", "threshold": 1.5}, `invalid argument "threshold"`},
		{"memory_search_entities", map[string]any{"user_identifier": u, "query": "x", "mode": "vector", "threshold": -0.1}, `invalid argument "threshold"`},
		{"memory_search", map[string]any{"user_identifier": u, "query": "x", "mode": "vector", "memory_types": []any{"messages", "steps"}}, `invalid argument "memory_types": steps have no vectors`},
		{"memory_search", map[string]any{"user_identifier": u, "query": "x", "threshold": 0.2}, `invalid argument "threshold"`},
		{"memory_search_steps", map[string]any{"user_identifier": u, "query": "x", "mode": "vector"}, `invalid argument "mode": not an argument`},
		{"memory_search_messages", map[string]any{"user_identifier": u, "query": "x", "mode": "vector", "embedding": []any{1, 0}}, `invalid argument "embedding": not an argument`},
		{"memory_get_similar_traces", map[string]any{"user_identifier": u}, `invalid argument "task": required`},
		{"memory_get_similar_traces", map[string]any{"user_identifier": u, "task": "x", "threshold": 2}, `invalid argument "threshold"`},
		{"memory_get_similar_traces", map[string]any{"user_identifier": u, "task": "x", "limit": 0}, `invalid argument "limit"`},
		{"memory_add_messages", map[string]any{"user_identifier": u, "session_id": "s", "messages": []any{
			map[string]any{"role": "user", "content": "ok", "embedding": []any{1, 0}}}}, `invalid argument "messages[].embedding": not an argument`},
	} {
		before := requests.Load()
		text, isErr := toolText(t, cs, tc.tool, tc.args)
		if !isErr || !strings.Contains(text, tc.want) {
			t.Errorf("%s(%v): %q (error %v), want %q", tc.tool, tc.args, text, isErr, tc.want)
		}
		if n := requests.Load() - before; n != 0 {
			t.Errorf("%s(%v): %d requests reached Engram", tc.tool, tc.args, n)
		}
	}
}

// TestSearchByMeaningWithoutEmbedder: Engram's 400 naming mode (its query service has no
// embedder) is a tool error naming mode on the searches, and a refusal naming no argument on
// memory_get_similar_traces, whose only mode it is; each says what to do instead.
func TestSearchByMeaningWithoutEmbedder(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	cs := inMemoryWith(t, Config{User: "sara@omg.com"}, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error": "invalid argument: vector search of q needs an embedder, and this service has none (EMBEDDER); POST the query vector instead", "field": "mode"}`))
	})
	for _, tc := range []struct {
		tool string
		args map[string]any
		want []string
	}{
		{"memory_search_messages", map[string]any{"query": "sushi", "mode": "vector", "threshold": 0.6}, []string{`invalid argument "mode": vector: Engram has no embedder`, "search by text"}},
		{"memory_search_preferences", map[string]any{"query": "sushi", "mode": "vector"}, []string{`invalid argument "mode"`, "EMBEDDER"}},
		{"memory_search_entities", map[string]any{"query": "sushi", "mode": "vector"}, []string{`invalid argument "mode"`, "EMBEDDER"}},
		{"memory_search", map[string]any{"query": "sushi", "mode": "vector"}, []string{`invalid argument "mode"`, "EMBEDDER"}},
		{"memory_get_similar_traces", map[string]any{"task": "book sushi"}, []string{"Engram has no embedder", "memory_list_traces"}},
	} {
		text, isErr := toolText(t, cs, tc.tool, tc.args)
		for _, want := range tc.want {
			if !isErr || !strings.Contains(text, want) {
				t.Errorf("%s(%v): %q (error %v), want %q", tc.tool, tc.args, text, isErr, want)
			}
		}
		if strings.Contains(text, "invalid argument \"mode\"") != (tc.tool != "memory_get_similar_traces") {
			t.Errorf("%s: %q", tc.tool, text)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// What the tools sent: mode=vector and the threshold on the searches; the task as q.
	for _, want := range []string{"/v1/users/sara@omg.com/search/messages?", "mode=vector", "threshold=0.6", "/search/traces?", "q=book+sushi"} {
		if !strings.Contains(strings.Join(seen, " "), want) {
			t.Errorf("requests %q lack %q", seen, want)
		}
	}
}

func manyIDs(n int) []any {
	ids := make([]any, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("01a2320c-7ca5-7447-8bb8-%012d", i)
	}
	return ids
}

// TestNullArguments: "arguments": null is no arguments. The SDK alone panics on it for a
// tool whose schema has defaults (memory_list_sessions' limit), which would end the process.
func TestNullArguments(t *testing.T) {
	t.Parallel()
	cs, requests := inMemory(t, Config{User: "sara@omg.com"}, `{"conversations": []}`)
	text, isErr := toolText(t, cs, "memory_list_sessions", json.RawMessage("null"))
	if isErr || !strings.Contains(text, `"conversations":[]`) || requests.Load() != 1 {
		t.Errorf("null arguments: %q (error %v, %d requests)", text, isErr, requests.Load())
	}
}

// TestSharedTenant: with multi-tenant mode off, a call without a user is about the shared
// tenant, read under /v1/shared and written without a user.
func TestSharedTenant(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	cs := inMemoryWith(t, Config{MultiTenant: false}, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+string(body))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"event_id": "e", "sequence": 0}`))
			return
		}
		_, _ = w.Write([]byte(`{"preferences": []}`))
	})
	if text, isErr := toolText(t, cs, "memory_get_preferences", map[string]any{}); isErr {
		t.Fatal(text)
	}
	if text, isErr := toolText(t, cs, "memory_add_preference", map[string]any{"category": "c", "preference": "p"}); isErr {
		t.Fatal(text)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || !strings.HasPrefix(seen[0], "GET /v1/shared/preferences") || !strings.HasPrefix(seen[1], "POST /v1/preferences") ||
		strings.Contains(seen[1], "user_identifier") {
		t.Errorf("requests: %q", seen)
	}
}

// TestAddMessagesPartly: when Engram fails in the middle of memory_add_messages, the error
// says which messages were stored and which were not sent.
func TestAddMessagesPartly(t *testing.T) {
	t.Parallel()
	var posts atomic.Int64
	cs := inMemoryWith(t, Config{User: "sara@omg.com"}, func(w http.ResponseWriter, r *http.Request) {
		if posts.Add(1) == 1 {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"event_id": "e1", "sequence": 0}`))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error": "the event store is unavailable; retry later"}`))
	})
	text, isErr := toolText(t, cs, "memory_add_messages", map[string]any{"session_id": "s", "messages": []any{
		map[string]any{"role": "user", "content": "one"}, map[string]any{"role": "user", "content": "two"}, map[string]any{"role": "user", "content": "three"}}})
	if !isErr || !strings.Contains(text, "messages[0] was stored") || !strings.Contains(text, "messages[1] and after were not") ||
		!strings.Contains(text, "unavailable") {
		t.Errorf("%q", text)
	}
	if n := posts.Load(); n != 4 { // the first, then the second and its two retries
		t.Errorf("%d posts, want 4", n)
	}
}

func TestResolveUser(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		configured  string
		multiTenant bool
		arg, want   string
		wantErr     bool
	}{
		{"configured", "sara@omg.com", true, "", "sara@omg.com", false},
		{"configured, repeated", "sara@omg.com", true, "sara@omg.com", "sara@omg.com", false},
		{"configured, another", "sara@omg.com", true, "liam@omg.com", "", true},
		{"argument", "", true, "liam@omg.com", "liam@omg.com", false},
		{"guardrail", "", true, "", "", true},
		{"shared tenant", "", false, "", "", false},
		{"invalid", "", false, "liam\x00", "", true},
	} {
		m := &Memory{user: tc.configured, multiTenant: tc.multiTenant}
		got, err := m.resolveUser(tc.arg)
		var ae *ArgError
		if (err != nil) != tc.wantErr || got != tc.want || (err != nil && (!errors.As(err, &ae) || ae.Arg != "user_identifier")) {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
	}
}

func TestToolError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want string
		kind string
	}{
		{"400 naming a parameter", &client.APIError{Status: 400, Field: "q", Msg: "no word left"}, `invalid argument "query": no word left`, "invalid"},
		{"403", &client.APIError{Status: 403, Msg: `forbidden: principal "a" may not act for user "b" (scope "write")`}, `forbidden: principal "a" may not act for user "b" (scope "write")`, "forbidden"},
		{"401", &client.APIError{Status: 401, Msg: "unauthenticated: token expired"}, "token expired", "unauthenticated"},
		{"404", &client.APIError{Status: 404, Msg: `trace "x" of user "b" not found`}, `trace "x" of user "b" not found`, "not_found"},
		{"410", &client.APIError{Status: 410, Msg: "user erased at ..."}, "user erased", "gone"},
		{"503", &client.APIError{Status: 503, Msg: "the graph database is unavailable; retry later"}, "retry later", "unavailable"},
		{"connection refused", errors.Join(client.ErrUnavailable, errors.New("dial tcp: refused")), "engram is unavailable", "unavailable"},
		{"local validation", &ingest.FieldError{Field: "q", Reason: "bad"}, `invalid argument "query": bad`, "invalid"},
		{"rejected", &client.RejectedError{Reason: "missing_reference", Message: "preference x not found"}, "projector refused it (missing_reference)", "error"},
		{"timeout", context.DeadlineExceeded, "MCP_CALL_TIMEOUT", "error"},
	} {
		err := toolError(tc.err, searchParam("type"))
		if err == nil || !strings.Contains(err.Error(), tc.want) || outcomeOf(err) != tc.kind {
			t.Errorf("%s: %v (%s), want %q (%s)", tc.name, err, outcomeOf(err), tc.want, tc.kind)
		}
	}
}

func TestRewordSchemaError(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`validating "arguments": validating root: validating /properties/confidence: maximum: 2/1 is greater than 1.000000`:                                                                                                                        `invalid argument "confidence": maximum: 2/1 is greater than 1.000000`,
		`validating "arguments": validating root: required: missing properties: ["preference"]`:                                                                                                                                                    `invalid argument "preference": required`,
		`validating "arguments": validating root: required: missing properties: ["a","b"]`:                                                                                                                                                         `invalid arguments "a", "b": required`,
		`validating "arguments": validating root: unexpected additional properties ["bogus"]`:                                                                                                                                                      `invalid argument "bogus": not an argument of this tool (see its input schema)`,
		`validating "arguments": validating root: validating /properties/tool_call: required: missing properties: ["tool_name"]`:                                                                                                                   `invalid argument "tool_call.tool_name": required`,
		`validating "arguments": validating root: validating /properties/applies_to: validating /properties/applies_to/items: validating /properties/applies_to/items/properties/name: minLength: "" contains 0 Unicode code points, fewer than 1`: `invalid argument "applies_to[].name": minLength: "" contains 0 Unicode code points, fewer than 1`,
		`validating "arguments": something else`: `invalid arguments: something else`,
	} {
		if got := rewordSchemaError(in); got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
}

func manyMembers(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[strings.Repeat("k", 1+i%7)+string(rune('a'+i%26))+string(rune('a'+i/26))] = i
	}
	return m
}
