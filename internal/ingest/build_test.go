package ingest_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
)

// TestUpsertAttributes: absent (nil) and empty attributes leave the stored ones (the
// library's upsert_user(attributes={})), an object replaces them, clear_attributes clears
// them; the event data says which on the wire (no member: leave; {}: clear).
func TestUpsertAttributes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		attrs map[string]any
		clear bool
		want  string
	}{
		{"absent leaves", nil, false, `{"user_id":"%s","identifier":"sara@omg.com"}`},
		{"empty leaves", map[string]any{}, false, `{"user_id":"%s","identifier":"sara@omg.com"}`},
		{"clear clears", nil, true, `{"user_id":"%s","identifier":"sara@omg.com","attributes":{}}`},
		{"clear with empty clears", map[string]any{}, true, `{"user_id":"%s","identifier":"sara@omg.com","attributes":{}}`},
		{"object replaces", map[string]any{"role": "manager"}, false, `{"user_id":"%s","identifier":"sara@omg.com","attributes":{"role":"manager"}}`},
	} {
		ev, m, err := ingest.Build(&ingest.UpsertUser{Identifier: "sara@omg.com", Attributes: tt.attrs, ClearAttributes: tt.clear}, ingest.Settings{MultiTenant: true})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		msg, err := events.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Replace(tt.want, "%s", events.UserID("sara@omg.com"), 1)
		if string(msg.Data) != want {
			t.Errorf("%s: data %s, want %s", tt.name, msg.Data, want)
		}
		if m.UserID != events.UserID("sara@omg.com") {
			t.Errorf("%s: user id %s", tt.name, m.UserID)
		}
		// Idempotent: the same identifier always derives the same user id.
		if ev.Data.(events.UserUpserted).UserID != m.UserID {
			t.Errorf("%s: event user id differs from the answer", tt.name)
		}
	}
}

// TestUpsertClearWithAttributes: clearing and replacing at once is a contradiction, refused
// with the field named.
func TestUpsertClearWithAttributes(t *testing.T) {
	t.Parallel()
	_, _, err := ingest.Build(&ingest.UpsertUser{Identifier: "sara@omg.com", Attributes: map[string]any{"role": "x"}, ClearAttributes: true}, ingest.Settings{MultiTenant: true})
	var fe *ingest.FieldError
	if !errors.As(err, &fe) || fe.Field != "clear_attributes" || !errors.Is(err, ingest.ErrInvalid) {
		t.Fatalf("err %v, want a FieldError on clear_attributes", err)
	}
}

// TestEmptyMessageContent: an assistant turn that is only a tool call has no text; the
// library stores it (the compatibility kit's SPEC-2.1.7), and so does Engram.
func TestEmptyMessageContent(t *testing.T) {
	t.Parallel()
	ev, _, err := ingest.Build(&ingest.AddMessage{UserIdentifier: "sara@omg.com", SessionID: "s", Role: "assistant"}, ingest.Settings{MultiTenant: true})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Decode(msg.Subject, msg.Header, msg.Data); err != nil {
		t.Fatalf("the event of an empty message does not decode: %v", err)
	}
	if !strings.Contains(string(msg.Data), `"content":""`) {
		t.Errorf("data %s has no empty content", msg.Data)
	}
}

// TestBuildSettings: the envelope takes source, actor, correlation and clock from the
// settings, with documented defaults.
func TestBuildSettings(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	cmd := &ingest.StartTrace{UserIdentifier: "sara@omg.com", SessionID: "s", Task: "t"}
	ev, m, err := ingest.Build(cmd, ingest.Settings{MultiTenant: true, Now: func() time.Time { return at }, CorrelationID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Source != ingest.DefaultSource || ev.Actor != ingest.AnonymousActor || ev.CorrelationID != "c-1" ||
		!ev.Time.Equal(at) || ev.Time.Location() != time.UTC || ev.Kind != events.KindTraceStarted || ev.User != "sara@omg.com" {
		t.Errorf("envelope %+v", ev)
	}
	if m.TraceID == "" || ev.Data.(events.TraceStarted).TraceID != m.TraceID {
		t.Errorf("minted %+v", m)
	}
	// A caller's own ids are kept.
	id, trace := events.NewID(), events.NewID()
	ev, m, err = ingest.Build(&ingest.StartTrace{EventID: id, TraceID: trace, UserIdentifier: "a", SessionID: "s", Task: "t"},
		ingest.Settings{MultiTenant: true, Actor: "agent-7", Source: "/engram/client"})
	if err != nil || ev.ID != id || m.TraceID != trace || ev.Actor != "agent-7" || ev.Source != "/engram/client" {
		t.Errorf("own ids: %+v %+v %v", ev, m, err)
	}
	if _, _, err := ingest.Build(nil, ingest.Settings{}); !errors.Is(err, ingest.ErrInvalid) {
		t.Errorf("nil command: %v", err)
	}
}

// TestMarshalBatchEntry: a command marshalled for a batch decodes back to the same command.
func TestMarshalBatchEntry(t *testing.T) {
	t.Parallel()
	conf := 0.7
	cmds := []ingest.Command{
		&ingest.UpsertUser{Identifier: "a", Attributes: map[string]any{}},
		&ingest.EraseUser{Identifier: "a"},
		&ingest.AddPreference{UserIdentifier: "a", Category: "c", Preference: "p", Confidence: &conf,
			AppliesTo: []events.EntityRef{{Name: "Healthcare", Type: "Industry"}}},
		&ingest.CompleteTrace{TraceID: events.NewID()},
	}
	var entries []json.RawMessage
	for _, c := range cmds {
		b, err := ingest.MarshalBatchEntry(c)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, b)
	}
	body, _ := json.Marshal(map[string]any{"commands": entries})
	got, err := ingest.DecodeBatch(body, 10)
	if err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	for i := range cmds {
		a, _ := json.Marshal(cmds[i])
		b, _ := json.Marshal(got[i])
		if string(a) != string(b) || got[i].Op() != cmds[i].Op() {
			t.Errorf("entry %d: %s became %s", i, a, b)
		}
	}
}
