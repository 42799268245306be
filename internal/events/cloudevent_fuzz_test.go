package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/events"
)

// headerText writes a header as the fuzzer's text: one "name:value" line per value, names
// as sent.
func headerText(h nats.Header) string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		for _, v := range h[k] {
			b.WriteString(k + ":" + v + "\n")
		}
	}
	return b.String()
}

// parseHeaderText is headerText's inverse for any text: every line with a colon is one
// value, names kept as written (as nats.go keeps them), repeated names and values allowed.
func parseHeaderText(s string) nats.Header {
	h := nats.Header{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h[k] = append(h[k], v)
		}
	}
	return h
}

// sentinels are the decoding errors the projector maps onto dead-letter reasons.
var sentinels = []error{events.ErrUndecodable, events.ErrUnknownType, events.ErrInvalidData, events.ErrNoUser}

// FuzzDecodeCloudEvent feeds events.Decode, the decoder of every message on the stream
// (whoever published it), an arbitrary subject, arbitrary ce- and other headers (names in
// any case, repeated, any values) and arbitrary data, starting from messages Encode wrote
// for each kind. It never panics and is deterministic (a header map built again, iterated in
// another order, decodes alike), and an event it accepts belongs on its subject, has valid
// identifiers, and survives Encode and Decode unchanged: what the decoder lets in is what the
// encoder writes.
func FuzzDecodeCloudEvent(f *testing.F) {
	user := "sara@omg.com"
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	conf, dur, ok := 0.9, int64(12), true
	for i, d := range []any{
		events.UserUpserted{UserID: events.UserID(user), Identifier: user, Attributes: map[string]any{"role": "manager", "n": 1.5}},
		events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(user, "s1"), SessionID: "s1", Role: "user",
			Content: "Find me a healthcare team", Timestamp: &at, Metadata: map[string]any{"a": []any{1.0, nil}}},
		events.PreferenceAdded{PreferenceID: events.NewID(), Category: "consultants", Preference: "Senior", Confidence: &conf, ValidFrom: &at,
			AppliesTo: []events.EntityRef{{Name: "Healthcare", Type: "Industry"}}},
		events.PreferenceSuperseded{OldID: events.NewID(), NewID: events.NewID()},
		events.TraceStarted{TraceID: events.NewID(), SessionID: "s1", Task: "consultant search"},
		events.TraceStepAdded{TraceID: events.NewID(), StepID: events.NewID(), Thought: "look"},
		events.ToolCallRecorded{TraceID: events.NewID(), StepID: events.NewID(), ToolCallID: events.NewID(), ToolName: "search",
			Status: "success", DurationMS: &dur, Arguments: map[string]any{"q": "x"}},
		events.TraceCompleted{TraceID: events.NewID(), Outcome: "found", Success: &ok},
		events.UserErased{Identifier: user},
		events.UserRecreated{UserID: events.UserID(user), Identifier: user, Reason: "came back"},
	} {
		e := &events.Event{ID: events.NewID(), Source: "/engram/ingestor", User: user, Time: at, Data: d}
		if i%2 == 0 {
			e.Actor, e.CorrelationID, e.CausationID = "agent-1", events.NewID(), events.NewID()
		}
		m, err := events.Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		h := headerText(m.Header)
		f.Add(m.Subject, h, m.Data)
		f.Add(m.Subject+".p3", h, m.Data)
		f.Add(m.Subject, strings.ReplaceAll(h, "ce-id:", "Ce-Id:"), m.Data)
		f.Add(m.Subject, h+"ce-id:"+events.NewID()+"\n", m.Data)
		f.Add(m.Subject, strings.ReplaceAll(h, "ce-time:", "ce-time:+"), m.Data)
	}
	f.Add("mem.x.message_added", "", []byte("poison"))
	f.Add("mem.*.>", "ce-specversion:1.0\n", []byte("{}"))

	f.Fuzz(func(t *testing.T, subject, header string, data []byte) {
		ev, err := events.Decode(subject, parseHeaderText(header), data)
		for range 2 {
			again, err2 := events.Decode(subject, parseHeaderText(header), data)
			if (err == nil) != (err2 == nil) {
				t.Fatalf("decoded once as %v, once as %v", err, err2)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) != errors.Is(err2, s) {
					t.Fatalf("decoded once as %v, once as %v", err, err2)
				}
			}
			if err == nil {
				sameEvent(t, "decoding again", ev, again)
			}
		}
		if err != nil {
			if ev != nil {
				t.Fatalf("an event beside the error %v", err)
			}
			return
		}
		tok, kind, _ := events.ParseSubject(subject)
		if want, err := events.TenantToken(ev.User); err != nil || want != tok || kind != ev.Kind {
			t.Fatalf("decoded %+v from subject %q (token %q, %v)", ev, subject, want, err)
		}
		if err := events.ValidateIdentifier(ev.ID); err != nil {
			t.Fatalf("accepted id %q: %v", ev.ID, err)
		}
		if k, ok := events.KindOf(ev.Data); !ok || k != ev.Kind {
			t.Fatalf("kind %s with data %T", ev.Kind, ev.Data)
		}
		m, err := events.Encode(ev)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v\n%+v", err, ev)
		}
		back, err := events.Decode(m.Subject, m.Header, m.Data)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v\n%s", err, m.Data)
		}
		sameEvent(t, "Encode then Decode", ev, back)
	})
}

func sameEvent(t *testing.T, what string, a, b *events.Event) {
	t.Helper()
	da, errA := json.Marshal(a.Data)
	db, errB := json.Marshal(b.Data)
	if errA != nil || errB != nil || !bytes.Equal(da, db) {
		t.Fatalf("%s changed the data: %s (%v) -> %s (%v)", what, da, errA, db, errB)
	}
	if a.ID != b.ID || a.Source != b.Source || a.Kind != b.Kind || a.User != b.User || !a.Time.Equal(b.Time) ||
		a.Actor != b.Actor || a.CorrelationID != b.CorrelationID || a.CausationID != b.CausationID {
		t.Fatalf("%s changed the envelope: %+v -> %+v", what, a, b)
	}
}
