package e2e

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/audit"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestAuditAgreesWithHistory: the preference history read from the log (memctl audit) and the
// query service's history view tell the same story: every version, when it was valid, what
// superseded it, and when Engram learned each of these.
func TestAuditAgreesWithHistory(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	user := testenv.User(t, "audited")
	t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), user) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	from := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	v1, err := c.LongTerm.AddPreference(ctx, "consultants", "Junior", client.ForUser(user), client.ValidFrom(from))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := c.LongTerm.AddPreference(ctx, "consultants", "Senior", client.ForUser(user))
	if err != nil {
		t.Fatal(err)
	}
	until := from.Add(48 * time.Hour)
	if _, err := c.LongTerm.SupersedePreference(ctx, v1.ID, v2.ID, client.ValidUntil(until)); err != nil {
		t.Fatal(err)
	}
	v3, err := c.LongTerm.AddPreference(ctx, "consultants", "Principal", client.ForUser(user))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LongTerm.SupersedePreference(ctx, v2.ID, v3.ID); err != nil {
		t.Fatal(err)
	}
	history, err := c.LongTerm.PreferenceHistory(ctx, user)
	if err != nil {
		t.Fatal(err)
	}

	nc, err := nats.Connect(stack.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	log, err := audit.Read(ctx, js, user, audit.PreferenceKinds...)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 5 || len(history) != 3 {
		t.Fatalf("log has %d entries (want 5), history %d versions (want 3)", len(log), len(history))
	}
	byID := map[string]client.Preference{}
	for _, p := range history {
		byID[p.ID] = p
	}
	for _, e := range log {
		switch d := e.Data.(type) {
		case events.PreferenceAdded:
			p, ok := byID[d.PreferenceID]
			if !ok {
				t.Fatalf("log adds %s, history lacks it", d.PreferenceID)
			}
			wantFrom := e.Time
			if d.ValidFrom != nil {
				wantFrom = *d.ValidFrom
			}
			if p.Preference != d.Preference || p.ValidFrom == nil || !p.ValidFrom.Equal(wantFrom) ||
				p.RecordedAt == nil || !p.RecordedAt.Equal(e.Recorded) {
				t.Errorf("version %s: history %+v, log %+v at %s", d.PreferenceID, p, d, e.Recorded)
			}
		case events.PreferenceSuperseded:
			p := byID[d.OldID]
			wantUntil := e.Time
			if d.ValidUntil != nil {
				wantUntil = *d.ValidUntil
			}
			if p.SupersededBy == nil || *p.SupersededBy != d.NewID || p.ValidUntil == nil || !p.ValidUntil.Equal(wantUntil) ||
				p.SupersededRecordedAt == nil || !p.SupersededRecordedAt.Equal(e.Recorded) {
				t.Errorf("supersede of %s: history %+v, log %+v at %s", d.OldID, p, d, e.Recorded)
			}
		}
		if e.Actor != "anonymous" || e.Source != "/engram/ingestor" {
			t.Errorf("log entry without actor/source: %+v", e)
		}
	}
}
