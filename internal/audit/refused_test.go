package audit_test

import (
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/audit"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestMarkFatesRefusesWritesAfterErasure: entries before the last tombstone are erased, those
// after it and before the re-creation that follows are refused (user_erased), those after the
// re-creation follow the checkpoint; the tombstone and the re-creation are not refused.
func TestMarkFatesRefusesWritesAfterErasure(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	pub := stream.NewPublisher(js, 5*time.Second)
	user := testenv.User(t, "audit-refused")
	pref := func(p string) events.PreferenceAdded {
		return events.PreferenceAdded{PreferenceID: events.NewID(), Category: "c", Preference: p}
	}
	for _, d := range []any{
		pref("before"), events.UserErased{Identifier: user}, pref("dropped"),
		events.UserRecreated{UserID: events.UserID(user), Identifier: user}, pref("after"),
	} {
		if _, err := pub.Publish(t.Context(), &events.Event{ID: events.NewID(), Source: "/t", User: user, Time: time.Now().UTC(), Data: d}); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := audit.Read(t.Context(), js, user)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Fatalf("%d entries, want 5", len(entries))
	}
	cp := audit.Checkpoint{Sequence: entries[4].Sequence, Known: true}
	if err := audit.MarkFates(t.Context(), js, user, "", cp, entries); err != nil {
		t.Fatal(err)
	}
	want := []string{audit.FateErased, audit.FateApplied, audit.FateRefused + ":" + audit.RefusedErased, audit.FateApplied, audit.FateApplied}
	for i, e := range entries {
		got := e.Fate
		if e.Reason != "" {
			got += ":" + e.Reason
		}
		if got != want[i] {
			t.Errorf("entry %d (%s): %s, want %s", i, e.Kind, got, want[i])
		}
	}
}
