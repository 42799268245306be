package query

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestLogEventSealed: the log read opens a sealed event (its data, user and correlation id as
// written) with the query service's key ring; once the user's key is destroyed the same read
// answers the envelope without data, with the reason.
func TestLogEventSealed(t *testing.T) {
	t.Parallel()
	e := newLogEnv(t)
	ctx := t.Context()
	sara := testenv.User(t, "sealed")
	ring := keys.Default(e.js) // the ingestor's
	ev := &events.Event{ID: events.NewID(), Source: "/engram/ingestor", User: sara, Time: time.Now().UTC().Truncate(time.Millisecond),
		Actor: "agent-7", CorrelationID: "corr-sealed", Data: events.PreferenceAdded{PreferenceID: events.NewID(), Category: "c", Preference: "secret"}}
	msg, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := (events.Codec{Keys: ring}).Seal(ctx, sara, msg); err != nil {
		t.Fatal(err)
	}
	st, err := e.pub.PublishMsg(ctx, ev.ID, msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.r.LogEvent(ctx, sara, st.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	var data events.PreferenceAdded
	if got.Error != nil || json.Unmarshal(got.Data, &data) != nil || data.Preference != "secret" ||
		got.CorrelationID == nil || *got.CorrelationID != "corr-sealed" || got.EventID != ev.ID {
		t.Fatalf("sealed event read: %+v (error %v)", got, deref(got.Error))
	}
	if err := ring.Destroy(ctx, sara); err != nil {
		t.Fatal(err)
	}
	// A query service that did not see the erasure keeps the key in its cache for at most
	// keys.CacheTTL; a fresh one reads the store.
	d := testenv.Neo4j(t)
	log := NewStreamLog(e.js)
	fresh, err := NewReader(d, "", WithCheckpointGroup(testGroup(t, d)), WithEventLog(log), WithPartitionLog(log))
	if err != nil {
		t.Fatal(err)
	}
	got, err = fresh.LogEvent(ctx, sara, st.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if got.Error == nil || !strings.Contains(*got.Error, "crypto-shredded") || string(got.Data) != "null" || got.EventID != ev.ID {
		t.Fatalf("shredded event read: %+v (error %v)", got, deref(got.Error))
	}
}
