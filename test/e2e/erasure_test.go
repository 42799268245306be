package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestErasure: a user erased through the client leaves no node and no event but the
// tombstone; another user is untouched; a second erasure is a no-op.
func TestErasure(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	d := testenv.Neo4j(t)
	gone, kept := testenv.User(t, "gone"), testenv.User(t, "kept")
	t.Cleanup(func() { testenv.Cleanup(t, d, gone, kept) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tool := "erasure-tool-" + events.NewID()[24:]
	t.Cleanup(func() {
		_, _ = neo4j.ExecuteQuery(context.Background(), d, "MATCH (t:Tool {name: $n}) DETACH DELETE t", map[string]any{"n": tool}, neo4j.EagerResultTransformer)
	})
	for _, u := range []string{gone, kept} {
		if _, err := c.Users.UpsertUser(ctx, u, client.WithAttributes(map[string]any{"email": u})); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ShortTerm.AddMessage(ctx, "s1", "user", "secret of "+u, client.ForUser(u)); err != nil {
			t.Fatal(err)
		}
		old, err := c.LongTerm.AddPreference(ctx, "c", "old", client.ForUser(u), client.AppliesTo(client.EntityRef{Name: "Healthcare", Type: "Industry"}))
		if err != nil {
			t.Fatal(err)
		}
		repl, err := c.LongTerm.AddPreference(ctx, "c", "new", client.ForUser(u))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.LongTerm.SupersedePreference(ctx, old.ID, repl.ID); err != nil {
			t.Fatal(err)
		}
		tr, err := c.Reasoning.StartTrace(ctx, "s1", "task", client.ForUser(u))
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.Reasoning.AddStep(ctx, tr.ID, client.Thought("t"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Reasoning.RecordToolCall(ctx, tr.ID, st.ID, tool); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.LongTerm.GetPreferencesFor(ctx, kept); err != nil { // wait until projected
		t.Fatal(err)
	}
	keptTok, _ := events.TenantToken(kept)
	goneTok, _ := events.TenantToken(gone)
	// The Tool aggregates are global (shared by every caller): erasing a caller lowers them.
	keptScope := fingerprint.Scope{Owners: []string{keptTok},
		IgnoreProperties: []string{"total_calls", "successful_calls", "failed_calls", "total_duration_ms", "last_used_at"}}
	before, err := fingerprint.Of(ctx, d, "", keptScope)
	if err != nil {
		t.Fatal(err)
	}

	r, err := c.Users.EraseUser(ctx, gone, client.WithReason("asked to be forgotten"))
	if err != nil {
		t.Fatal(err)
	}
	// The graph: nothing of gone's once the projector applied the tombstone.
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := fingerprint.Of(ctx, d, "", fingerprint.Scope{Owners: []string{goneTok}})
		if err != nil {
			t.Fatal(err)
		}
		if f.Nodes == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("erased user still owns %s", f)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Users.GetUser(ctx, gone, client.AtLeast(r.Sequence)); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("erased user readable: %v", err)
	}
	res, err := neo4j.ExecuteQuery(ctx, d, `MATCH (t:Tool {name: $n}) RETURN t.total_calls AS calls`, map[string]any{"n": tool}, neo4j.EagerResultTransformer)
	if err != nil || len(res.Records) != 1 {
		t.Fatalf("tool: %v %v", res, err)
	}
	if calls, _ := res.Records[0].Get("calls"); calls != int64(1) {
		t.Errorf("tool total_calls %v after erasing one of two callers, want 1", calls)
	}
	// The log: only the tombstone remains on gone's subjects.
	nc, err := nats.Connect(stack.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	filter, _ := events.TenantSubjects(gone)
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for subj, n := range info.State.Subjects {
		total += n
		if _, kind, _ := events.ParseSubject(subj); kind != events.KindUserErased {
			t.Errorf("after erasure %d events remain on %s", n, subj)
		}
	}
	if total != 1 {
		t.Errorf("%d messages on the erased user's subjects, want the tombstone only", total)
	}
	// Everyone else untouched.
	after, err := fingerprint.Of(ctx, d, "", keptScope)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Equal(before) {
		t.Fatalf("erasure touched another user:\n%s", fingerprint.Diff(before, after, 10))
	}
	// A second erasure is a no-op (and leaves one tombstone).
	if _, err := c.Users.EraseUser(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if ps, err := c.LongTerm.GetPreferencesFor(ctx, kept, client.ActiveOnly(false)); err != nil || len(ps) != 2 {
		t.Fatalf("kept user's preferences after a second erasure: %d, %v", len(ps), err)
	}
}
