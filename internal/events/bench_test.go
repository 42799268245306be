package events_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/events"
)

// The benchmarks of the hot functions of the write and projection paths: every event passes
// through Encode at the ingestor (or the agent's client) and through Decode at the projector,
// and both validate the data against its JSON Schema. `make bench` runs the load driver;
// these measure single calls: go test -run '^$' -bench . -benchmem ./internal/events/

const benchUser = "sara@omg.com"

type namedEvent struct {
	name string
	ev   *events.Event
}

// benchEvents is a realistic event of each frequent kind, as an agent writes them.
func benchEvents() []namedEvent {
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	conf := 0.85
	dur := int64(42)
	ok := true
	mk := func(d any) *events.Event {
		return &events.Event{ID: events.NewID(), Source: "/engram/ingestor", User: benchUser, Time: at,
			Actor: "agent-7", CorrelationID: events.NewID(), Data: d}
	}
	return []namedEvent{
		{"user_upserted", mk(events.UserUpserted{UserID: events.UserID(benchUser), Identifier: benchUser,
			Attributes: map[string]any{"role": "manager", "team": "healthcare"}})},
		{"message_added", mk(events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(benchUser, "s-42"),
			SessionID: "s-42", Role: "user", Content: "Find me a senior consultant team for a healthcare project in Berlin, starting in June."})},
		{"preference_added", mk(events.PreferenceAdded{PreferenceID: events.NewID(), Category: "consultants",
			Preference: "Prefers senior consultants with healthcare experience", Context: "staffing", Confidence: &conf, ValidFrom: &at,
			AppliesTo: []events.EntityRef{{Name: "Healthcare", Type: "Industry"}, {Name: "Berlin", Type: "Location"}}})},
		{"preference_superseded", mk(events.PreferenceSuperseded{OldID: events.NewID(), NewID: events.NewID()})},
		{"tool_call_recorded", mk(events.ToolCallRecorded{TraceID: events.NewID(), StepID: events.NewID(), ToolCallID: events.NewID(),
			ToolName: "search_consultants", Arguments: map[string]any{"industry": "healthcare", "seniority": "senior"},
			Result: map[string]any{"count": 12}, Status: "success", DurationMS: &dur})},
		{"trace_completed", mk(events.TraceCompleted{TraceID: events.NewID(), Outcome: "found 12 consultants", Success: &ok})},
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, c := range benchEvents() {
		name, ev := c.name, c.ev
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				m, err := events.Encode(ev)
				if err != nil {
					b.Fatal(err)
				}
				size = len(m.Data) + headerBytes(m.Header)
			}
			b.ReportMetric(float64(size), "msg-bytes")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range benchEvents() {
		name, ev := c.name, c.ev
		m, err := events.Encode(ev)
		if err != nil {
			b.Fatal(err)
		}
		subject := m.Subject + ".3" // as stored: the stream appends the partition
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(m.Data)))
			for b.Loop() {
				if _, err := events.Decode(subject, m.Header, m.Data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidateData(b *testing.B) {
	for _, c := range benchEvents() {
		name, ev := c.name, c.ev
		data, err := json.Marshal(ev.Data)
		if err != nil {
			b.Fatal(err)
		}
		kind, _ := events.KindOf(ev.Data)
		if err := events.ValidateData(kind, data); err != nil { // compiles the schemas once
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := events.ValidateData(kind, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var tokenCases = []struct{ name, id string }{
	{"plain", "sara-omg-com"},
	{"email", "sara@omg.com"},
	{"escaped", "Liam_O'Brien <liam@omg.com> zoë"},
}

func BenchmarkEncodeToken(b *testing.B) {
	for _, c := range tokenCases {
		name, id := c.name, c.id
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := events.EncodeToken(id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeToken(b *testing.B) {
	for _, c := range tokenCases {
		name, id := c.name, c.id
		tok, err := events.EncodeToken(id)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := events.DecodeToken(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPartition(b *testing.B) {
	tok, _ := events.EncodeToken(benchUser)
	b.ReportAllocs()
	for b.Loop() {
		_ = events.Partition(tok, 8)
	}
}

func BenchmarkDerivedIDs(b *testing.B) {
	b.Run("UserID", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = events.UserID(benchUser)
		}
	})
	b.Run("EntityID", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = events.EntityID(benchUser, "Healthcare", "Industry")
		}
	})
	b.Run("NewID", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = events.NewID()
		}
	})
}

func headerBytes(h map[string][]string) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
