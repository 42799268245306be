package ingest_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/events"
)

// TestEntityCommands: entities, relationships, merges and facts are stored as their events,
// on the user's subject, with the ids answered at once (derived for entities and
// relationships, minted for facts).
func TestEntityCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	const user = "sara@omg.com"
	acme := events.EntityID(user, "Acme", "ORGANIZATION")
	bob := events.EntityID(user, "Bob", "PERSON")

	r := h.do("POST", "/v1/entities", `{"user_identifier":"sara@omg.com","name":"Acme","type":"ORGANIZATION",
		"subtype":"COMPANY","aliases":["Acme Inc"],"attributes":{"founded":1950},"confidence":0.8}`)
	a := r.accepted(t)
	if a.EntityID != acme {
		t.Errorf("entity_id %s, want the derived %s", a.EntityID, acme)
	}
	ev := checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, user, events.KindEntityAdded)
	if d := ev.Data.(events.EntityAdded); d.Name != "Acme" || d.Subtype != "COMPANY" || len(d.Aliases) != 1 || d.Attributes["founded"] != 1950.0 {
		t.Errorf("entity_added data %+v", d)
	}

	r = h.do("POST", "/v1/relationships", `{"user_identifier":"sara@omg.com","source":{"name":"Bob","type":"PERSON"},
		"target":{"id":"`+acme+`"},"type":"WORKS_AT","valid_from":"2020-01-01T00:00:00+01:00"}`)
	a = r.accepted(t)
	if want := events.RelationshipID(user, bob, "WORKS_AT", acme); a.RelationshipID != want {
		t.Errorf("relationship_id %s, want %s", a.RelationshipID, want)
	}
	ev = checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, user, events.KindRelationshipAdded)
	if d := ev.Data.(events.RelationshipAdded); d.ValidFrom == nil || d.ValidFrom.Location().String() != "UTC" || d.Target.ID != acme {
		t.Errorf("relationship_added data %+v", d)
	}

	r = h.do("POST", "/v1/entities/merge", `{"user_identifier":"sara@omg.com","source_id":"`+bob+`","target_id":"`+acme+`"}`)
	a = r.accepted(t)
	checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, user, events.KindEntitiesMerged)

	r = h.do("POST", "/v1/facts", `{"user_identifier":"sara@omg.com","subject":"Bob","predicate":"works_at","object":"Acme"}`)
	a = r.accepted(t)
	if a.FactID == "" {
		t.Error("no fact_id answered")
	}
	ev = checkEnvelope(t, stored(t, h.js, a.Sequence), a.EventID, user, events.KindFactAdded)
	if d := ev.Data.(events.FactAdded); d.FactID != a.FactID || d.Object != "Acme" {
		t.Errorf("fact_added data %+v", d)
	}

	// The batch ops.
	body, _ := json.Marshal(map[string]any{"commands": []map[string]any{
		{"op": "add_entity", "user_identifier": user, "name": "Berlin", "type": "LOCATION"},
		{"op": "add_relationship", "user_identifier": user, "source": map[string]any{"id": acme},
			"target": map[string]any{"name": "Berlin", "type": "LOCATION"}, "type": "LOCATED_IN"},
		{"op": "add_fact", "user_identifier": user, "subject": "Acme", "predicate": "hq", "object": "Berlin"},
		{"op": "merge_entities", "user_identifier": user, "source_id": events.EntityID(user, "Berlin", "LOCATION"), "target_id": acme},
	}})
	if r := h.do("POST", "/v1/batch", string(body)); r.code != 202 {
		t.Fatalf("batch: %d %s", r.code, r.body)
	}
}

// TestEntityCommandsRefused: bad entity, relationship, merge and fact commands are answered
// 400 naming the field, and nothing is stored.
func TestEntityCommandsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	const u = `"user_identifier":"sara@omg.com"`
	id := events.NewID()
	long := strings.Repeat("x", 257)
	many := `[` + strings.TrimSuffix(strings.Repeat(`"a",`, 65), ",") + `]`
	tests := []struct{ name, path, body, field string }{
		{"entity without user", "/v1/entities", `{"name":"Acme","type":"ORGANIZATION"}`, "user_identifier"},
		{"entity without name", "/v1/entities", `{` + u + `,"type":"ORGANIZATION"}`, "name"},
		{"entity without type", "/v1/entities", `{` + u + `,"name":"Acme"}`, "type"},
		{"entity name too long", "/v1/entities", `{` + u + `,"name":"` + long + `","type":"T"}`, "name"},
		{"entity empty alias", "/v1/entities", `{` + u + `,"name":"Acme","type":"T","aliases":["ok",""]}`, "aliases[1]"},
		{"entity too many aliases", "/v1/entities", `{` + u + `,"name":"Acme","type":"T","aliases":` + many + `}`, "aliases"},
		{"entity confidence above 1", "/v1/entities", `{` + u + `,"name":"Acme","type":"T","confidence":1.5}`, "confidence"},
		{"entity mention not a UUID", "/v1/entities", `{` + u + `,"name":"Acme","type":"T","message_ids":["m1"]}`, "message_ids[0]"},
		{"entity unknown field", "/v1/entities", `{` + u + `,"name":"Acme","type":"T","colour":"red"}`, "colour"},
		{"relationship without source", "/v1/relationships", `{` + u + `,"target":{"name":"b"},"type":"R"}`, "source"},
		{"relationship empty target", "/v1/relationships", `{` + u + `,"source":{"name":"a"},"target":{},"type":"R"}`, "target"},
		{"relationship target id not a UUID", "/v1/relationships", `{` + u + `,"source":{"name":"a"},"target":{"id":"x"},"type":"R"}`, "target.id"},
		{"relationship without type", "/v1/relationships", `{` + u + `,"source":{"name":"a"},"target":{"name":"b"}}`, "type"},
		{"relationship to itself", "/v1/relationships", `{` + u + `,"source":{"name":"a","type":"T"},"target":{"name":"a","type":"T"},"type":"R"}`, "target"},
		{"relationship validity reversed", "/v1/relationships", `{` + u + `,"source":{"name":"a"},"target":{"name":"b"},"type":"R",
			"valid_from":"2026-01-02T00:00:00Z","valid_until":"2026-01-01T00:00:00Z"}`, "valid_until"},
		{"merge into itself", "/v1/entities/merge", `{` + u + `,"source_id":"` + id + `","target_id":"` + id + `"}`, "target_id"},
		{"merge without source", "/v1/entities/merge", `{` + u + `,"target_id":"` + id + `"}`, "source_id"},
		{"fact without predicate", "/v1/facts", `{` + u + `,"subject":"s","object":"o"}`, "predicate"},
		{"fact id not a UUIDv7", "/v1/facts", `{` + u + `,"fact_id":"6f1d0c5e-8a0e-4b9f-9a51-1f4c2d3e4b5a","subject":"s","predicate":"p","object":"o"}`, "fact_id"},
		{"fact time with a 24h offset", "/v1/facts", `{` + u + `,"subject":"s","predicate":"p","object":"o","valid_from":"2026-01-01T00:00:00+24:00"}`, "valid_from"},
		{"batch entity invalid", "/v1/batch", `{"commands":[{"op":"add_entity",` + u + `,"name":"a"}]}`, "commands[0].type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("POST", tt.path, tt.body)
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
