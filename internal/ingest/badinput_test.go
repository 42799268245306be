package ingest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/engram-memory/engram/internal/events"
)

// TestBadInput: every kind of bad request is answered 4xx naming the field, and nothing is
// published.
func TestBadInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	const u = `"user_identifier":"sara@omg.com"`
	msg := func(extra string) string {
		return `{` + u + `,"session_id":"s1","role":"user","content":"hi"` + extra + `}`
	}
	pref := func(extra string) string { return `{` + u + `,"category":"c","preference":"p"` + extra + `}` }
	trace, step := events.NewID(), events.NewID()
	v4 := uuid.NewString()
	big := `{` + u + `,"session_id":"s1","role":"user","content":"` + strings.Repeat("x", 1<<20) + `"}`
	refs := make([]string, 65)
	for i := range refs {
		refs[i] = `{"name":"e"}`
	}
	tooMany := make([]string, 1001)
	for i := range tooMany {
		tooMany[i] = `{"op":"complete_trace",` + u + `,"trace_id":"` + trace + `"}`
	}
	batch := func(cmds ...string) string { return `{"commands":[` + strings.Join(cmds, ",") + `]}` }
	okCmd := `{"op":"add_message",` + u + `,"session_id":"s1","role":"user","content":"hi"}`
	dupID := events.NewID()

	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		headers   []string
		wantCode  int
		wantField string
	}{
		{"malformed JSON", "POST", "/v1/messages", `{"session_id":`, nil, 400, "body"},
		{"malformed JSON inside", "POST", "/v1/messages", `{"session_id":"s1",,}`, nil, 400, "body"},
		{"trailing data", "POST", "/v1/messages", msg("") + `{}`, nil, 400, "body"},
		{"not an object", "POST", "/v1/messages", `["x"]`, nil, 400, "body"},
		{"null body", "POST", "/v1/messages", `null`, nil, 400, "body"},
		{"empty body", "POST", "/v1/messages", ``, []string{"Content-Type", "application/json"}, 400, "body"},
		{"unknown field", "POST", "/v1/messages", msg(`,"colour":"red"`), nil, 400, "colour"},
		{"unknown nested field", "POST", "/v1/preferences", pref(`,"applies_to":[{"name":"a"},{"name":"b","colour":"red"}]`), nil, 400, "applies_to[1].colour"},
		{"field name in the wrong case", "POST", "/v1/messages", `{` + u + `,"session_id":"s1","role":"user","Content":"hi"}`, nil, 400, "Content"},
		{"nested field name in the wrong case", "POST", "/v1/preferences", pref(`,"applies_to":[{"name":"a"},{"Name":"b"}]`), nil, 400, "applies_to[1].Name"},
		{"identifier with a trailing space", "PUT", "/v1/users/sara%20", ``, nil, 400, "identifier"},
		{"wrong type", "POST", "/v1/messages", `{` + u + `,"session_id":"s1","role":"user","content":5}`, nil, 400, "content"},
		{"wrong nested type", "POST", "/v1/preferences", pref(`,"applies_to":[{"name":"a"},{"name":7}]`), nil, 400, "applies_to[1].name"},
		{"wrong type of list", "POST", "/v1/preferences", pref(`,"applies_to":{"name":"a"}`), nil, 400, "applies_to"},
		{"bad date-time", "POST", "/v1/messages", msg(`,"timestamp":"yesterday"`), nil, 400, "timestamp"},
		{"integer overflow", "POST", "/v1/traces/" + trace + "/steps", `{` + u + `,"step_number":1e40}`, nil, 400, "step_number"},
		{"body over 1 MiB", "POST", "/v1/messages", big, nil, 413, "body"},
		{"text/plain", "POST", "/v1/messages", msg(""), []string{"Content-Type", "text/plain"}, 415, "Content-Type"},
		{"no content type", "POST", "/v1/messages", msg(""), []string{"Content-Type", ""}, 415, "Content-Type"},
		{"control character in path identifier", "PUT", "/v1/users/sara%01x", ``, nil, 400, "identifier"},
		{"identifier too long", "PUT", "/v1/users/" + strings.Repeat("a", 257), ``, nil, 400, "identifier"},
		{"identifier not UTF-8", "PUT", "/v1/users/sara%FF", ``, nil, 400, "identifier"},
		{"path and body disagree", "PUT", "/v1/users/sara", `{"identifier":"liam"}`, nil, 400, "identifier"},
		{"bad user identifier", "POST", "/v1/messages", `{"user_identifier":"sa\u0007ra","session_id":"s1","role":"user","content":"hi"}`, nil, 400, "user_identifier"},
		{"bad session id", "POST", "/v1/messages", `{` + u + `,"session_id":"","role":"user","content":"hi"}`, nil, 400, "session_id"},
		{"unknown role", "POST", "/v1/messages", `{` + u + `,"session_id":"s1","role":"boss","content":"hi"}`, nil, 400, "role"},
		{"missing role", "POST", "/v1/messages", `{` + u + `,"session_id":"s1","content":"hi"}`, nil, 400, "role"},
		{"content too long", "POST", "/v1/messages", `{` + u + `,"session_id":"s1","role":"user","content":"` + strings.Repeat("a", 262145) + `"}`, nil, 400, "content"},
		{"message id not a UUID", "POST", "/v1/messages", msg(`,"message_id":"m-1"`), nil, 400, "message_id"},
		{"event id not a UUIDv7", "POST", "/v1/messages", msg(`,"event_id":"` + v4 + `"`), nil, 400, "event_id"},
		{"event id upper case", "POST", "/v1/messages", msg(`,"event_id":"` + strings.ToUpper(events.NewID()) + `"`), nil, 400, "event_id"},
		{"applies_to entry empty", "POST", "/v1/preferences", pref(`,"applies_to":[{}]`), nil, 400, "applies_to[0]"},
		{"applies_to type only", "POST", "/v1/preferences", pref(`,"applies_to":[{"name":"a"},{"type":"Industry"}]`), nil, 400, "applies_to[1]"},
		{"applies_to id not a UUID", "POST", "/v1/preferences", pref(`,"applies_to":[{"id":"healthcare"}]`), nil, 400, "applies_to[0].id"},
		{"applies_to name too long", "POST", "/v1/preferences", pref(`,"applies_to":[{"name":"` + strings.Repeat("é", 257) + `"}]`), nil, 400, "applies_to[0].name"},
		{"applies_to too many", "POST", "/v1/preferences", pref(`,"applies_to":[` + strings.Join(refs, ",") + `]`), nil, 400, "applies_to"},
		{"confidence over 1", "POST", "/v1/preferences", pref(`,"confidence":2`), nil, 400, "confidence"},
		{"missing category", "POST", "/v1/preferences", `{` + u + `,"preference":"p"}`, nil, 400, "category"},
		{"supersede bad old id", "POST", "/v1/preferences/nope/supersede", `{` + u + `,"new_id":"` + events.NewID() + `"}`, nil, 400, "old_id"},
		{"supersede by itself", "POST", "/v1/preferences/" + trace + "/supersede", `{` + u + `,"new_id":"` + trace + `"}`, nil, 400, "new_id"},
		{"supersede missing new id", "POST", "/v1/preferences/" + trace + "/supersede", `{` + u + `}`, nil, 400, "new_id"},
		{"trace id not a UUID", "POST", "/v1/traces/abc/steps", `{` + u + `}`, nil, 400, "trace_id"},
		{"negative step number", "POST", "/v1/traces/" + trace + "/steps", `{` + u + `,"step_number":-1}`, nil, 400, "step_number"},
		{"unknown tool status", "POST", "/v1/traces/" + trace + "/tool-calls", `{` + u + `,"step_id":"` + step + `","tool_name":"t","status":"meh"}`, nil, 400, "status"},
		{"negative duration", "POST", "/v1/traces/" + trace + "/tool-calls", `{` + u + `,"step_id":"` + step + `","tool_name":"t","duration_ms":-5}`, nil, 400, "duration_ms"},
		// A duration near 2^63 would overflow the global Tool aggregate for every tenant.
		{"duration beyond 7 days", "POST", "/v1/traces/" + trace + "/tool-calls", `{` + u + `,"step_id":"` + step + `","tool_name":"t","duration_ms":9223372036854775000}`, nil, 400, "duration_ms"},
		{"missing tool name", "POST", "/v1/traces/" + trace + "/tool-calls", `{` + u + `,"step_id":"` + step + `"}`, nil, 400, "tool_name"},
		{"task missing", "POST", "/v1/traces", `{` + u + `,"session_id":"s"}`, nil, 400, "task"},
		{"bad correlation id", "POST", "/v1/messages", msg(""), []string{"X-Correlation-ID", "a\tb"}, 400, "X-Correlation-ID"},
		{"batch without commands", "POST", "/v1/batch", `{}`, nil, 400, "commands"},
		{"empty batch", "POST", "/v1/batch", batch(), nil, 400, "commands"},
		{"batch over the maximum", "POST", "/v1/batch", batch(tooMany...), nil, 413, "commands"},
		{"batch entry unknown op", "POST", "/v1/batch", batch(okCmd, `{"op":"drop_tables"}`), nil, 400, "commands[1].op"},
		{"batch entry without op", "POST", "/v1/batch", batch(`{"trace_id":"` + trace + `"}`), nil, 400, "commands[0].op"},
		{"batch entry not an object", "POST", "/v1/batch", batch(okCmd, `"x"`), nil, 400, "commands[1]"},
		{"batch entry unknown field", "POST", "/v1/batch", batch(okCmd, okCmd, `{"op":"add_message",`+u+`,"session_id":"s1","role":"user","content":"hi","zzz":1}`), nil, 400, "commands[2].zzz"},
		{"batch entry invalid", "POST", "/v1/batch", batch(okCmd, `{"op":"add_preference",`+u+`,"category":"c","preference":"p","applies_to":[{}]}`), nil, 400, "commands[1].applies_to[0]"},
		{"batch entry wrong type", "POST", "/v1/batch", batch(`{"op":"add_message",` + u + `,"session_id":"s1","role":"user","content":["hi"]}`), nil, 400, "commands[0].content"},
		{"batch repeats an event id", "POST", "/v1/batch", batch(
			`{"op":"complete_trace",`+u+`,"trace_id":"`+trace+`","event_id":"`+dupID+`"}`,
			`{"op":"complete_trace",`+u+`,"trace_id":"`+trace+`","event_id":"`+dupID+`"}`), nil, 400, "commands[1].event_id"},
		{"batch commands not a list", "POST", "/v1/batch", `{"commands":{}}`, nil, 400, "commands"},
		{"batch unknown top-level field", "POST", "/v1/batch", `{"commands":[` + okCmd + `],"atomic":false}`, nil, 400, "atomic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.path, tt.body, tt.headers...)
			if r.code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", r.code, tt.wantCode, r.body)
			}
			p := r.problem(t)
			if p.Field != tt.wantField {
				t.Errorf("field %q, want %q (%s)", p.Field, tt.wantField, p.Error)
			}
			t.Logf("%d %s", r.code, clipped(r.body))
			if p.Error == "" {
				t.Error("no error message")
			}
		})
	}
	if n := count(t, h.js); n != 0 {
		t.Errorf("bad input stored %d events, want none", n)
	}
	// Routing: unknown paths and methods are not commands.
	if r := h.do("GET", "/v1/messages", ""); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/messages: %d, want 405", r.code)
	}
	if r := h.do("POST", "/v1/nothing", "{}"); r.code != http.StatusNotFound {
		t.Errorf("POST /v1/nothing: %d, want 404", r.code)
	}
}

func clipped(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
