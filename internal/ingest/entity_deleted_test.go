package ingest_test

import (
	"testing"

	"github.com/engram-memory/engram/internal/events"
)

// TestEntityDeletionCommand: deleting an entity is stored as entity_deleted on the user's
// subject, from the path alone, with a body repeating it, or as a batch op; bad ones are a 400
// naming the field, and nothing of them is stored.
func TestEntityDeletionCommand(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	const user = "sara@omg.com"
	id := events.EntityID(user, "Acme", "ORGANIZATION")

	for _, req := range []struct{ path, body string }{
		{"/v1/users/sara@omg.com/entities/" + id, ""},
		{"/v1/users/sara@omg.com/entities/" + id, `{"user_identifier":"sara@omg.com","entity_id":"` + id + `"}`},
		{"/v1/entities/" + id, `{"user_identifier":"sara@omg.com"}`},
	} {
		a := h.do("DELETE", req.path, req.body).accepted(t)
		if a.EntityID != id {
			t.Errorf("%s: entity_id %q, want %s", req.path, a.EntityID, id)
		}
		ev := checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, user, events.KindEntityDeleted)
		if d := ev.Data.(events.EntityDeleted); d.EntityID != id {
			t.Errorf("entity_deleted data %+v, want entity %s", d, id)
		}
	}
	body := `{"commands":[{"op":"delete_entity","user_identifier":"sara@omg.com","entity_id":"` + id + `"}]}`
	if r := h.do("POST", "/v1/batch", body); r.code != 202 {
		t.Fatalf("batch: %d %s", r.code, r.body)
	}
	if n := count(t, h.js); n != 4 {
		t.Errorf("%d events stored, want 4", n)
	}

	refused := newHarness(t, true)
	tests := []struct{ name, method, path, body, field string }{
		{"id not a UUID", "DELETE", "/v1/users/sara@omg.com/entities/acme", "", "entity_id"},
		{"id upper case", "DELETE", "/v1/users/sara@omg.com/entities/" + upper(id), "", "entity_id"},
		{"body names another entity", "DELETE", "/v1/users/sara@omg.com/entities/" + id, `{"entity_id":"` + events.NewID() + `"}`, "entity_id"},
		{"body names another user", "DELETE", "/v1/users/sara@omg.com/entities/" + id, `{"user_identifier":"bob@omg.com"}`, "user_identifier"},
		{"unknown field", "DELETE", "/v1/users/sara@omg.com/entities/" + id, `{"cascade":false}`, "cascade"},
		{"no user in multi-tenant mode", "DELETE", "/v1/entities/" + id, "", "user_identifier"},
		{"batch without entity", "POST", "/v1/batch", `{"commands":[{"op":"delete_entity","user_identifier":"sara@omg.com"}]}`, "commands[0].entity_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := refused.do(tt.method, tt.path, tt.body)
			if r.code != 400 {
				t.Fatalf("status %d, want 400: %s", r.code, r.body)
			}
			if p := r.problem(t); p.Field != tt.field || p.Error == "" {
				t.Errorf("field %q, want %q (%s)", p.Field, tt.field, p.Error)
			}
		})
	}
	if n := count(t, refused.js); n != 0 {
		t.Errorf("refused commands stored %d events", n)
	}
}
