package ingest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestEveryCommand: each endpoint answers 202 after the event is stored, and the stored event
// has the documented subject, CloudEvents headers and data, with the minted ids.
func TestEveryCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	user := testenv.User(t, "sara")
	odd := "liam/o'brien+" + user // a '/' in the path, percent-encoded
	var prefOld, prefNew, traceID, stepID string

	tests := []struct {
		name   string
		method string
		path   func() string
		body   func() string
		user   string
		kind   events.Kind
		check  func(t *testing.T, a ingest.Accepted, data any)
	}{
		{"upsert user", http.MethodPut, func() string { return userPath(user) },
			func() string { return `{"attributes":{"role":"manager","team":"consulting"}}` }, user, events.KindUserUpserted,
			func(t *testing.T, a ingest.Accepted, data any) {
				d := data.(events.UserUpserted)
				if d.Identifier != user || d.UserID != events.UserID(user) || d.Attributes["role"] != "manager" {
					t.Errorf("data %+v", d)
				}
			}},
		{"upsert user by body, path needs escaping", http.MethodPost, func() string { return "/v1/users" },
			func() string { return mustJSON(t, map[string]any{"identifier": odd, "clear_attributes": true}) }, odd, events.KindUserUpserted,
			func(t *testing.T, a ingest.Accepted, data any) {
				d := data.(events.UserUpserted)
				if d.Attributes == nil || len(d.Attributes) != 0 {
					t.Errorf("attributes %#v, want {} (clear)", d.Attributes)
				}
			}},
		{"upsert user with empty attributes", http.MethodPut, func() string { return userPath(odd) },
			func() string { return `{"attributes":{}}` }, odd, events.KindUserUpserted,
			func(t *testing.T, a ingest.Accepted, data any) {
				if d := data.(events.UserUpserted); d.Attributes != nil {
					t.Errorf("attributes %#v, want absent (leave, as the library's upsert_user)", d.Attributes)
				}
			}},
		{"upsert user without body", http.MethodPut, func() string { return userPath(odd) },
			func() string { return "" }, odd, events.KindUserUpserted,
			func(t *testing.T, a ingest.Accepted, data any) {
				if d := data.(events.UserUpserted); d.Attributes != nil {
					t.Errorf("attributes %#v, want absent (leave)", d.Attributes)
				}
			}},
		{"add message", http.MethodPost, func() string { return "/v1/messages" },
			func() string {
				return mustJSON(t, map[string]any{"user_identifier": user, "session_id": "sara-2026-05-01", "role": "user",
					"content": "Find me a healthcare team", "metadata": map[string]any{"n": 12345678901234567}})
			}, user, events.KindMessageAdded,
			func(t *testing.T, a ingest.Accepted, data any) {
				d := data.(events.MessageAdded)
				if a.MessageID == "" || d.MessageID != a.MessageID || a.ConversationID != events.ConversationID(user, "sara-2026-05-01") ||
					d.ConversationID != a.ConversationID || d.Role != "user" || d.Content != "Find me a healthcare team" {
					t.Errorf("answer %+v, data %+v", a, d)
				}
				if got := fmt.Sprint(d.Metadata["n"]); got != "1.2345678901234568e+16" && got != "12345678901234567" {
					t.Errorf("metadata n = %s", got)
				}
			}},
		{"add preference", http.MethodPost, func() string { return "/v1/preferences" },
			func() string {
				return mustJSON(t, map[string]any{"user_identifier": user, "category": "consultants", "preference": "Junior",
					"applies_to": []map[string]any{{"name": "Healthcare", "type": "Industry"}}, "confidence": 0.5,
					"valid_from": "2026-05-01T09:00:00+02:00"})
			}, user, events.KindPreferenceAdded,
			func(t *testing.T, a ingest.Accepted, data any) {
				d := data.(events.PreferenceAdded)
				prefOld = a.PreferenceID
				if d.PreferenceID != a.PreferenceID || len(d.AppliesTo) != 1 || d.AppliesTo[0] != (events.EntityRef{Name: "Healthcare", Type: "Industry"}) ||
					d.ValidFrom == nil || d.ValidFrom.Hour() != 7 || *d.Confidence != 0.5 {
					t.Errorf("answer %+v, data %+v", a, d)
				}
			}},
		{"add second preference", http.MethodPost, func() string { return "/v1/preferences" },
			func() string {
				return mustJSON(t, map[string]any{"user_identifier": user, "category": "consultants", "preference": "Senior"})
			}, user, events.KindPreferenceAdded,
			func(t *testing.T, a ingest.Accepted, data any) { prefNew = a.PreferenceID }},
		{"supersede preference", http.MethodPost, func() string { return "/v1/preferences/" + prefOld + "/supersede" },
			func() string { return mustJSON(t, map[string]any{"user_identifier": user, "new_id": prefNew}) }, user, events.KindPreferenceSuperseded,
			func(t *testing.T, a ingest.Accepted, data any) {
				d := data.(events.PreferenceSuperseded)
				if d.OldID != prefOld || d.NewID != prefNew || d.ValidUntil != nil {
					t.Errorf("data %+v, want %s -> %s", d, prefOld, prefNew)
				}
			}},
		{"start trace", http.MethodPost, func() string { return "/v1/traces" },
			func() string {
				return mustJSON(t, map[string]any{"user_identifier": user, "session_id": "sara-2026-05-01", "task": "consultant search"})
			}, user, events.KindTraceStarted,
			func(t *testing.T, a ingest.Accepted, data any) {
				traceID = a.TraceID
				if d := data.(events.TraceStarted); d.TraceID != a.TraceID || d.Task != "consultant search" {
					t.Errorf("answer %+v, data %+v", a, d)
				}
			}},
		{"add trace step", http.MethodPost, func() string { return "/v1/traces/" + traceID + "/steps" },
			func() string {
				return mustJSON(t, map[string]any{"user_identifier": user, "thought": "look", "step_number": 1})
			}, user, events.KindTraceStepAdded,
			func(t *testing.T, a ingest.Accepted, data any) {
				stepID = a.StepID
				if d := data.(events.TraceStepAdded); d.TraceID != traceID || d.StepID != a.StepID || d.StepNumber != 1 {
					t.Errorf("answer %+v, data %+v", a, d)
				}
			}},
		{"record tool call", http.MethodPost, func() string { return "/v1/traces/" + traceID + "/tool-calls" },
			func() string {
				return mustJSON(t, map[string]any{"user_identifier": user, "step_id": stepID, "tool_name": "search",
					"arguments": map[string]any{"q": "healthcare"}, "duration_ms": 12})
			}, user, events.KindToolCallRecorded,
			func(t *testing.T, a ingest.Accepted, data any) {
				d := data.(events.ToolCallRecorded)
				if d.ToolCallID != a.ToolCallID || d.StepID != stepID || d.Status != "success" || *d.DurationMS != 12 {
					t.Errorf("answer %+v, data %+v", a, d)
				}
			}},
		{"complete trace", http.MethodPost, func() string { return "/v1/traces/" + traceID + "/complete" },
			func() string {
				return mustJSON(t, map[string]any{"user_identifier": user, "outcome": "found", "success": true})
			}, user, events.KindTraceCompleted,
			func(t *testing.T, a ingest.Accepted, data any) {
				if d := data.(events.TraceCompleted); d.TraceID != traceID || !*d.Success {
					t.Errorf("data %+v", d)
				}
			}},
		{"erase user", http.MethodDelete, func() string { return userPath(odd) },
			func() string { return `{"reason":"asked"}` }, odd, events.KindUserErased,
			func(t *testing.T, a ingest.Accepted, data any) {
				if d := data.(events.UserErased); d.Identifier != odd || d.Reason != "asked" {
					t.Errorf("data %+v", d)
				}
			}},
	}
	seen := map[uint64]bool{}
	for _, tt := range tests {
		a := h.do(tt.method, tt.path(), tt.body()).accepted(t)
		if a.Sequence == 0 || seen[a.Sequence] || a.Duplicate {
			t.Errorf("%s: sequence %d (duplicate %v) is not a new sequence", tt.name, a.Sequence, a.Duplicate)
		}
		seen[a.Sequence] = true
		if a.UserID != events.UserID(tt.user) {
			t.Errorf("%s: user_id %s, want %s", tt.name, a.UserID, events.UserID(tt.user))
		}
		ev := checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, tt.user, tt.kind)
		if ev.ID != a.EventID || ev.User != tt.user || ev.Kind != tt.kind {
			t.Errorf("%s: event %+v", tt.name, ev)
		}
		t.Run(tt.name, func(t *testing.T) { tt.check(t, a, ev.Data) })
	}
	// The erasure of odd purged odd's earlier events from the stream, keeping the tombstone.
	purged := 0
	for _, tt := range tests {
		if tt.user == odd && tt.kind != events.KindUserErased {
			purged++
		}
	}
	if n := count(t, h.js); n != uint64(len(tests)-purged) {
		t.Errorf("stream holds %d events, want %d", n, len(tests)-purged)
	}
}

// TestGuardrail: in multi-tenant mode a write without a user is refused naming
// user_identifier and nothing is stored; with it off the write goes to the shared tenant.
func TestGuardrail(t *testing.T) {
	t.Parallel()
	t.Run("multi-tenant on", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, true)
		trace := events.NewID()
		for _, c := range []struct{ path, body, field string }{
			{"/v1/messages", `{"session_id":"s1","role":"user","content":"hi"}`, "user_identifier"},
			{"/v1/preferences", `{"category":"c","preference":"p"}`, "user_identifier"},
			{"/v1/preferences/" + events.NewID() + "/supersede", `{"new_id":"` + events.NewID() + `"}`, "user_identifier"},
			{"/v1/traces", `{"session_id":"s1","task":"t"}`, "user_identifier"},
			{"/v1/traces/" + trace + "/steps", `{"thought":"x"}`, "user_identifier"},
			{"/v1/traces/" + trace + "/tool-calls", `{"step_id":"` + events.NewID() + `","tool_name":"x"}`, "user_identifier"},
			{"/v1/traces/" + trace + "/complete", ``, "user_identifier"},
			{"/v1/messages", `{"user_identifier":"","session_id":"s1","role":"user","content":"hi"}`, "user_identifier"},
			{"/v1/batch", `{"commands":[{"op":"add_message","user_identifier":"a@x","session_id":"s","role":"user","content":"x"},
				{"op":"add_message","session_id":"s","role":"user","content":"x"}]}`, "commands[1].user_identifier"},
		} {
			r := h.do(http.MethodPost, c.path, c.body)
			if r.code != http.StatusBadRequest || r.problem(t).Field != c.field {
				t.Errorf("POST %s: %d %s, want 400 naming %s", c.path, r.code, r.body, c.field)
			}
		}
		if n := count(t, h.js); n != 0 {
			t.Errorf("stream holds %d events, want 0", n)
		}
	})
	t.Run("multi-tenant off", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, false)
		a := h.do(http.MethodPost, "/v1/messages", `{"session_id":"s1","role":"user","content":"hi"}`).accepted(t)
		m := stored(t, h.js, a.Sequence)
		if want := storedSubject(t, "", events.KindMessageAdded); m.Subject != want || !strings.HasPrefix(m.Subject, "mem._shared.message_added.") {
			t.Errorf("shared write stored on %q, want %q", m.Subject, want)
		}
		if m.Header.Get("ce-subject") != "" || m.Header.Get("ce-tenant") != events.SharedTenantToken {
			t.Errorf("shared write headers %v", m.Header)
		}
		ev, err := events.Decode(m.Subject, m.Header, m.Data)
		if err != nil || ev.User != "" || a.UserID != "" || a.ConversationID != events.ConversationID("", "s1") {
			t.Errorf("shared write: event %+v, answer %+v, err %v", ev, a, err)
		}
		// A named user still gets their own tenant; a user write still needs its identifier.
		user := testenv.User(t, "liam")
		a = h.do(http.MethodPost, "/v1/traces", mustJSON(t, map[string]any{"user_identifier": user, "session_id": "s", "task": "t"})).accepted(t)
		if m := stored(t, h.js, a.Sequence); m.Subject != storedSubject(t, user, events.KindTraceStarted) {
			t.Errorf("user write stored on %q", m.Subject)
		}
		if r := h.do(http.MethodPost, "/v1/users", `{"attributes":{}}`); r.code != http.StatusBadRequest || r.problem(t).Field != "identifier" {
			t.Errorf("upsert without identifier: %d %s", r.code, r.body)
		}
	})
}

// TestDuplicatePublish: the same event (same event id) sent twice is stored once; the second
// answer says duplicate and gives the first sequence.
func TestDuplicatePublish(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	user := testenv.User(t, "dup")
	body := mustJSON(t, map[string]any{
		"event_id": events.NewID(), "message_id": events.NewID(),
		"user_identifier": user, "session_id": "s1", "role": "user", "content": "hi",
	})
	first := h.do(http.MethodPost, "/v1/messages", body).accepted(t)
	second := h.do(http.MethodPost, "/v1/messages", body).accepted(t)
	if first.Duplicate || !second.Duplicate || second.Sequence != first.Sequence || second.EventID != first.EventID {
		t.Errorf("first %+v, second %+v: want the second a duplicate of the first", first, second)
	}
	if !reflect.DeepEqual(first.Minted, second.Minted) {
		t.Errorf("minted ids differ: %+v vs %+v", first.Minted, second.Minted)
	}
	if n := count(t, h.js); n != 1 {
		t.Errorf("stream holds %d events, want 1", n)
	}
}

// TestActor: the principal in the request context becomes the events' actor extension.
func TestActor(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	body := `{"user_identifier":"a@x","session_id":"s","role":"user","content":"hi"}`
	req := httptest.NewRequestWithContext(ingest.WithActor(t.Context(), "agent-7"), http.MethodPost, "/v1/messages", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	a := reply{code: rec.Code, body: rec.Body.Bytes()}.accepted(t)
	if got := stored(t, h.js, a.Sequence).Header.Get("ce-actor"); got != "agent-7" {
		t.Errorf("ce-actor %q, want agent-7", got)
	}
}
