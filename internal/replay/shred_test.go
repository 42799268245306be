package replay_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/replay"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestShreddedEventsAreSkipped: events sealed as the ingestor seals them; a user erased
// whose events were never purged (an erasure whose purge failed, or a restored backup of the
// stream): the erasure destroyed the key, so the projector and a replay meet the user's
// events, cannot open them and skip them — no dead letter, nothing applied, counted as
// shredded — while another user's sealed events project, dead-letter (sealed) and replay
// to the same graph. After it, neither graph, stream (but the tombstone), dead letters nor
// key bucket holds the victim's identifier, token or user id.
func TestShreddedEventsAreSkipped(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, js := testenv.NATS(t)
	d := testenv.Neo4j(t)
	kept, victim := testenv.User(t, "kept"), testenv.User(t, "victim")
	t.Cleanup(func() { testenv.Cleanup(t, d, kept, victim) })
	tool := "shred-tool-" + events.NewID()[24:]

	pub := stream.NewPublisher(js, 10*time.Second)
	ring, err := ingest.NewRing(keys.NewKV(js), pub.Erasure)
	if err != nil {
		t.Fatal(err)
	}
	codec := events.Codec{Keys: ring}
	s := ingest.Settings{MultiTenant: true, Source: "/engram/test", CorrelationID: "corr"}
	var last uint64
	sealed := map[string]int{}
	send := func(cmd ingest.Command) ingest.Minted {
		t.Helper()
		ev, m, err := ingest.Build(cmd, s)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := events.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := codec.Seal(ctx, ev.User, msg); err != nil {
			t.Fatal(err)
		}
		if msg.Header.Get(events.HeaderKey) != "" {
			sealed[ev.User]++
		}
		st, err := pub.PublishMsg(ctx, ev.ID, msg)
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, st.Sequence)
		return m
	}
	for _, u := range []string{kept, victim} {
		send(&ingest.UpsertUser{Identifier: u, Attributes: map[string]any{"email": u}})
		send(&ingest.AddMessage{UserIdentifier: u, SessionID: "s", Role: "user", Content: "secret of " + u})
		old := send(&ingest.AddPreference{UserIdentifier: u, Category: "c", Preference: "likes " + u})
		repl := send(&ingest.AddPreference{UserIdentifier: u, Category: "c", Preference: "now " + u})
		send(&ingest.SupersedePreference{UserIdentifier: u, OldID: old.PreferenceID, NewID: repl.PreferenceID})
		tr := send(&ingest.StartTrace{UserIdentifier: u, SessionID: "s", Task: "task of " + u})
		st := send(&ingest.AddTraceStep{UserIdentifier: u, TraceID: tr.TraceID, Thought: "thinks of " + u})
		send(&ingest.RecordToolCall{UserIdentifier: u, TraceID: tr.TraceID, StepID: st.StepID, ToolName: tool})
		// Poison: a supersede of preferences that do not exist (missing_reference).
		send(&ingest.SupersedePreference{UserIdentifier: u, OldID: events.NewID(), NewID: events.NewID()})
	}
	// The erasure, with the key destroyed and the tombstone stored, but no purge.
	if err := ring.Destroy(ctx, victim); err != nil {
		t.Fatal(err)
	}
	tomb, _, err := ingest.Build(&ingest.EraseUser{Identifier: victim}, s)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pub.Publish(ctx, tomb)
	if err != nil {
		t.Fatal(err)
	}
	last = st.Sequence

	group := "shred-" + events.NewID()[24:]
	project(ctx, t, d, js, last, group)
	keptTok, victimTok := mustToken(t, kept), mustToken(t, victim)
	scope := fingerprint.Scope{Owners: []string{keptTok}, Tools: []string{tool}}
	live, err := fingerprint.Of(ctx, d, "", scope)
	if err != nil {
		t.Fatal(err)
	}
	if live.Nodes < 8 || !strings.Contains(strings.Join(live.Lines, "\n"), "secret of "+kept) {
		t.Fatalf("the kept user's sealed events did not project: %s", live)
	}
	// Dead letters: the kept user's poison (its copy sealed), nothing of the victim's.
	var keptLetters int
	dlq, err := js.Stream(ctx, stream.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(ctx, jetstream.WithSubjectFilter("dlq.mem."+keptTok+".>"))
	if err != nil {
		t.Fatal(err)
	}
	keptLetters = int(info.State.Msgs)
	if keptLetters != 1 {
		t.Fatalf("the kept user has %d dead letters, want 1 (the poison)", keptLetters)
	}
	isTombstone := func(m jetstream.RawStreamMsg) bool {
		return strings.HasPrefix(m.Subject, "mem."+victimTok+"."+string(events.KindUserErased)+".")
	}
	needles := testenv.Needles(t, victim)
	if got := testenv.StreamTraces(ctx, t, js, stream.DeadLetterStream, nil, needles...); len(got) != 0 {
		t.Fatalf("dead letters name the victim: %v", got)
	}
	if got := testenv.StreamTraces(ctx, t, js, stream.DeadLetterStream, nil, "secret of", "likes ", kept); len(got) != 0 {
		t.Fatalf("a dead letter holds plaintext: %v", got)
	}
	// The victim's events are still in the stream (never purged), but sealed: the subject's
	// tenant token is the one trace, and the tombstone.
	if got := testenv.StreamTraces(ctx, t, js, stream.MemoryStream, isTombstone, victim, events.UserID(victim), "of "+victim); len(got) != 0 {
		t.Fatalf("the stream holds the victim's identifier or data in clear: %v", got)
	}
	if got := testenv.StreamTraces(ctx, t, js, "KV_"+keys.Bucket, nil, needles...); len(got) != 0 {
		t.Fatalf("the key bucket names the victim: %v", got)
	}
	if got := testenv.GraphTraces(ctx, t, d, needles...); len(got) != 0 {
		t.Fatalf("the graph names the victim: %v", got)
	}

	// Replays: the kept user's gives the live graph; the victim's applies only the tombstone.
	rs, err := replay.Run(ctx, d, js, replay.Options{User: kept, MultiTenant: true, Group: group})
	if err != nil {
		t.Fatal(err)
	}
	if rs.Shredded != 0 {
		t.Errorf("kept user's replay counted %d shredded", rs.Shredded)
	}
	if again, err := fingerprint.Of(ctx, d, "", scope); err != nil || !again.Equal(live) {
		t.Fatalf("replay of sealed events differs from the live graph: %v\n%s", err, fingerprint.Diff(live, again, 10))
	}
	vs, err := replay.Run(ctx, d, js, replay.Options{User: victim, MultiTenant: true, Group: group})
	if err != nil {
		t.Fatal(err)
	}
	if vs.Shredded != sealed[victim] || vs.Applied != 1 {
		t.Fatalf("victim's replay: applied %d, shredded %d; want the tombstone and %d shredded", vs.Applied, vs.Shredded, sealed[victim])
	}
	if got := testenv.GraphTraces(ctx, t, d, needles...); len(got) != 0 {
		t.Fatalf("the replay brought back the victim: %v", got)
	}
	if f, err := fingerprint.Of(ctx, d, "", fingerprint.Scope{Owners: []string{victimTok}}); err != nil || f.Nodes != 0 {
		t.Fatalf("victim's graph after replay: %s, %v", f, err)
	}
}
