package audit_test

import (
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/audit"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func TestReadReturnsOnlyTheUsersEventsInOrder(t *testing.T) {
	t.Parallel()
	_, nc, js := testenv.NATS(t)
	pub := stream.NewPublisher(js, 5*time.Second)
	sara, liam := "sara@omg.com", "liam@omg.com"
	old, repl := events.NewID(), events.NewID()
	var want []string
	for _, e := range []*events.Event{
		{User: sara, Data: events.UserUpserted{UserID: events.UserID(sara), Identifier: sara}},
		{User: sara, Data: events.PreferenceAdded{PreferenceID: old, Category: "consultants", Preference: "Junior"}},
		{User: liam, Data: events.PreferenceAdded{PreferenceID: events.NewID(), Category: "consultants", Preference: "Fintech"}},
		{User: sara, Data: events.PreferenceAdded{PreferenceID: repl, Category: "consultants", Preference: "Senior"}},
		{User: sara, Data: events.PreferenceSuperseded{OldID: old, NewID: repl}},
	} {
		e.ID, e.Source, e.Time, e.Actor = events.NewID(), "/t", time.Now().UTC(), "agent-7"
		if _, err := pub.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		if e.User == sara && e.Data != nil {
			if _, ok := e.Data.(events.UserUpserted); !ok {
				want = append(want, e.ID)
			}
		}
	}
	// An undecodable message on Sara's subjects is shown, not hidden.
	if _, err := nc.Request("mem.sara_40omg_2Ecom.preference_added", []byte("junk"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	got, err := audit.Read(t.Context(), js, sara, audit.PreferenceKinds...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want)+1 {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want)+1, got)
	}
	for i, id := range want {
		if got[i].ID != id || got[i].Actor != "agent-7" || got[i].Recorded.IsZero() {
			t.Errorf("entry %d = %+v, want event %s by agent-7", i, got[i], id)
		}
		if i > 0 && got[i].Sequence <= got[i-1].Sequence {
			t.Errorf("entries out of stream order: %d after %d", got[i].Sequence, got[i-1].Sequence)
		}
	}
	if got[len(got)-1].Error == "" {
		t.Errorf("undecodable message not reported: %+v", got[len(got)-1])
	}
	none, err := audit.Read(t.Context(), js, "nobody@omg.com")
	if err != nil || len(none) != 0 {
		t.Fatalf("unknown user: %v, %v", none, err)
	}
}
