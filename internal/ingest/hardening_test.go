package ingest_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/events"
)

// TestRefusedAtTheCall covers issue 12 findings 6, 7 and 11: whatever the projector would
// dead-letter, and whatever encoding/json would silently bend, is a 400 naming the field and
// nothing is stored: identifiers with leading or trailing Unicode space or format characters,
// numbers no float64 holds, invalid UTF-8, repeated members, and times beyond RFC 3339
// (offsets of 24h or more, years outside 0000-9999 in UTC).
func TestRefusedAtTheCall(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	const u = `"user_identifier":"sara@omg.com"`
	msg := func(extra string) string {
		return `{` + u + `,"session_id":"s1","role":"user","content":"hi"` + extra + `}`
	}
	trace := events.NewID()
	tests := []struct {
		name, method, path, body, wantField string
	}{
		{"metadata number beyond float64", "POST", "/v1/messages", msg(`,"metadata":{"n":1e400}`), "metadata.n"},
		{"nested negative number beyond float64", "POST", "/v1/preferences", `{` + u + `,"category":"c","preference":"p","metadata":{"a":[1,{"b":-2e308}]}}`, "metadata.a[1].b"},
		{"attributes number beyond float64", "PUT", "/v1/users/sara@omg.com", `{"attributes":{"n":1e999}}`, "attributes.n"},
		{"tool arguments number beyond float64", "POST", "/v1/traces/" + trace + "/tool-calls", `{` + u + `,"step_id":"` + events.NewID() + `","tool_name":"t","arguments":{"x":9e999}}`, "arguments.x"},
		{"batch number beyond float64", "POST", "/v1/batch", `{"commands":[{"op":"add_message",` + u + `,"session_id":"s1","role":"user","content":"hi","metadata":{"n":1e400}}]}`, "commands[0].metadata.n"},
		{"duplicate member", "POST", "/v1/messages", `{` + u + `,"session_id":"s1","role":"user","content":"hi","content":"bye"}`, "content"},
		{"duplicate user", "POST", "/v1/messages", `{` + u + `,"session_id":"s1","role":"user","content":"hi","user_identifier":"liam@omg.com"}`, "user_identifier"},
		{"duplicate nested member", "POST", "/v1/messages", msg(`,"metadata":{"a":1,"a":2}`), "metadata.a"},
		{"duplicate member in a batch", "POST", "/v1/batch", `{"commands":[{"op":"add_message",` + u + `,"session_id":"s1","role":"user","content":"hi","role":"system"}]}`, "commands[0].role"},
		{"invalid UTF-8 in a value", "POST", "/v1/messages", msg(`,"title":"t` + "\xff" + `"`), "body"},
		{"invalid UTF-8 in user_identifier", "POST", "/v1/messages", `{"user_identifier":"sara` + "\xc3" + `@omg.com","session_id":"s1","role":"user","content":"hi"}`, "body"},
		{"offset +24:00", "POST", "/v1/messages", msg(`,"timestamp":"2026-05-01T09:00:00+24:00"`), "timestamp"},
		{"offset -24:00", "POST", "/v1/preferences", `{` + u + `,"category":"c","preference":"p","valid_from":"2026-05-01T09:00:00-24:00"}`, "valid_from"},
		{"year 10000 in UTC", "POST", "/v1/preferences/" + trace + "/supersede", `{` + u + `,"new_id":"` + events.NewID() + `","valid_until":"9999-12-31T23:30:00-23:00"}`, "valid_until"},
		{"year -1 in UTC", "POST", "/v1/messages", msg(`,"timestamp":"0000-01-01T00:00:00+01:00"`), "timestamp"},
	}
	for _, ws := range []string{"\u00a0", "\u2003", "\u3000", "\u2028", "\u200b", "\ufeff"} {
		for _, id := range []string{ws + "sara@omg.com", "sara@omg.com" + ws} {
			tests = append(tests,
				struct{ name, method, path, body, wantField string }{"user_identifier " + url.PathEscape(id), "POST", "/v1/messages",
					`{"user_identifier":"` + id + `","session_id":"s1","role":"user","content":"hi"}`, "user_identifier"},
				struct{ name, method, path, body, wantField string }{"path identifier " + url.PathEscape(id), "PUT", userPath(id), ``, "identifier"},
				struct{ name, method, path, body, wantField string }{"session_id " + url.PathEscape(id), "POST", "/v1/messages",
					`{` + u + `,"session_id":"` + strings.Replace(id, "sara@omg.com", "s1", 1) + `","role":"user","content":"hi"}`, "session_id"},
			)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.path, tt.body)
			if r.code != 400 {
				t.Fatalf("status %d, want 400: %s", r.code, r.body)
			}
			if p := r.problem(t); p.Field != tt.wantField || p.Error == "" {
				t.Errorf("field %q, want %q (%s)", p.Field, tt.wantField, p.Error)
			}
		})
	}
	if n := count(t, h.js); n != 0 {
		t.Errorf("refused input stored %d events, want none", n)
	}
}
