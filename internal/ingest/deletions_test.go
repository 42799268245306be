package ingest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/events"
)

// TestDeletionCommands: deleting a message (with or without its session) and clearing a
// session are stored as their events on the user's subject, from the path alone or with a
// body repeating it, and as batch ops.
func TestDeletionCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	const user = "sara@omg.com"
	msg := events.NewID()
	conv := events.ConversationID(user, "s-1")

	r := h.do("DELETE", "/v1/users/sara@omg.com/messages/"+msg, "")
	a := r.accepted(t)
	if a.MessageID != msg {
		t.Errorf("message_id %q, want %s", a.MessageID, msg)
	}
	ev := checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, user, events.KindMessageDeleted)
	if d := ev.Data.(events.MessageDeleted); d.MessageID != msg || d.ConversationID != "" || d.SessionID != "" {
		t.Errorf("message_deleted data %+v, want the message alone", d)
	}

	r = h.do("DELETE", "/v1/users/sara@omg.com/conversations/s-1/messages/"+msg,
		`{"user_identifier":"sara@omg.com","message_id":"`+msg+`"}`)
	a = r.accepted(t)
	ev = checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, user, events.KindMessageDeleted)
	if d := ev.Data.(events.MessageDeleted); d.MessageID != msg || d.ConversationID != conv || d.SessionID != "s-1" {
		t.Errorf("message_deleted data %+v, want message %s of conversation %s", d, msg, conv)
	}
	if a.ConversationID != conv {
		t.Errorf("conversation_id %q, want %s", a.ConversationID, conv)
	}

	r = h.do("DELETE", "/v1/users/sara@omg.com/conversations/s-1", "")
	a = r.accepted(t)
	ev = checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, user, events.KindSessionCleared)
	if d := ev.Data.(events.SessionCleared); d.ConversationID != conv || d.SessionID != "s-1" {
		t.Errorf("session_cleared data %+v", d)
	}

	// Without the user in the path: the body names them.
	r = h.do("DELETE", "/v1/messages/"+msg, `{"user_identifier":"sara@omg.com"}`)
	a = r.accepted(t)
	checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, user, events.KindMessageDeleted)
	r = h.do("DELETE", "/v1/conversations/s-1", `{"user_identifier":"sara@omg.com"}`)
	a = r.accepted(t)
	checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, user, events.KindSessionCleared)

	body, _ := json.Marshal(map[string]any{"commands": []map[string]any{
		{"op": "delete_message", "user_identifier": user, "message_id": msg},
		{"op": "delete_message", "user_identifier": user, "message_id": msg, "session_id": "s-2"},
		{"op": "clear_session", "user_identifier": user, "session_id": "s-2"},
	}})
	if r := h.do("POST", "/v1/batch", string(body)); r.code != 202 {
		t.Fatalf("batch: %d %s", r.code, r.body)
	}
	if n := count(t, h.js); n != 8 {
		t.Errorf("%d events stored, want 8", n)
	}
}

// TestDeletionCommandsRefused: bad deletions are answered 400 naming the field, and nothing
// is stored.
func TestDeletionCommandsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	id := events.NewID()
	long := strings.Repeat("x", 300)
	tests := []struct{ name, method, path, body, field string }{
		{"message id not a UUID", "DELETE", "/v1/users/sara@omg.com/messages/m-1", "", "message_id"},
		{"message id upper case", "DELETE", "/v1/users/sara@omg.com/messages/" + upper(id), "", "message_id"},
		{"body names another message", "DELETE", "/v1/users/sara@omg.com/messages/" + id, `{"message_id":"` + events.NewID() + `"}`, "message_id"},
		{"body names another user", "DELETE", "/v1/users/sara@omg.com/messages/" + id, `{"user_identifier":"bob@omg.com"}`, "user_identifier"},
		{"bad user in the path", "DELETE", "/v1/users/" + long + "/messages/" + id, "", "user_identifier"},
		{"bad session in the path", "DELETE", "/v1/users/sara@omg.com/conversations/" + long + "/messages/" + id, "", "session_id"},
		{"unknown field", "DELETE", "/v1/users/sara@omg.com/conversations/s-1", `{"cascade":true}`, "cascade"},
		{"clear bad session", "DELETE", "/v1/users/sara@omg.com/conversations/s%0A1", "", "session_id"},
		{"batch delete without message", "POST", "/v1/batch", `{"commands":[{"op":"delete_message","user_identifier":"sara@omg.com"}]}`, "commands[0].message_id"},
		{"batch clear without session", "POST", "/v1/batch", `{"commands":[{"op":"clear_session","user_identifier":"sara@omg.com"}]}`, "commands[0].session_id"},
		{"no user in multi-tenant mode", "DELETE", "/v1/messages/" + id, "", "user_identifier"},
		{"clear without user in multi-tenant mode", "DELETE", "/v1/conversations/s-1", "", "user_identifier"},
		{"batch delete without user", "POST", "/v1/batch", `{"commands":[{"op":"delete_message","message_id":"` + id + `"}]}`, "commands[0].user_identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.path, tt.body)
			if r.code != 400 {
				t.Fatalf("status %d, want 400: %s", r.code, r.body)
			}
			if p := r.problem(t); p.Field != tt.field || p.Error == "" {
				t.Errorf("field %q, want %q (%s)", p.Field, tt.field, p.Error)
			}
		})
	}
	if n := count(t, h.js); n != 0 {
		t.Errorf("refused commands stored %d events", n)
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
