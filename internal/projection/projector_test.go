package projection

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestProjectorDeadLetters publishes good events around one poison event of every reason:
// the projector dead-letters each with its reason and headers, applies everything else, and
// keeps going.
func TestProjectorDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, js := testenv.NATS(t)
	d := testNeo4j(t)
	a, b := newTenant(t, "dlq-a"), newTenant(t, "dlq-b")
	var sc scope
	sc.add(a, b)
	cleanupScope(t, d, &sc)
	group := testGroup(t, "dlq")
	cleanupCheckpoints(t, d, group)
	_, reg, _ := startProjector(t, testConfig(group), d, js)

	pub := newPublished()
	ev := func(user string, data any) *events.Event {
		return &events.Event{ID: events.NewID(), Source: "/engram/test", User: user, Time: time.Now().UTC(), Data: data}
	}
	msg := func(u tenant, content string) (*events.Event, string) {
		id := events.NewID()
		return ev(u.user, events.MessageAdded{MessageID: id, ConversationID: events.ConversationID(u.user, "s"), SessionID: "s", Role: "user", Content: content}), id
	}
	var chain []string
	add := func(e *events.Event, id string) *events.Event { chain = append(chain, id); return e }
	p1, p2, bp := events.NewID(), events.NewID(), events.NewID()
	m1, id1 := msg(a, "1")
	m2, id2 := msg(a, "2")
	good := publishEvents(ctx, t, js, pub,
		ev(a.user, events.UserUpserted{UserID: events.UserID(a.user), Identifier: a.user}),
		add(m1, id1), add(m2, id2),
		ev(a.user, events.PreferenceAdded{PreferenceID: p1, Category: "c", Preference: "1"}),
		ev(a.user, events.PreferenceAdded{PreferenceID: p2, Category: "c", Preference: "2"}),
		ev(b.user, events.PreferenceAdded{PreferenceID: bp, Category: "c", Preference: "b"}),
	)
	// The preferences exist before the supersedes below name them: a and b are on different
	// partitions, and an id of another tenant's partition that is not applied yet reads as
	// missing rather than foreign.
	waitCaughtUp(ctx, t, d, group, pub, 30*time.Second)

	// One poison event of every reason.
	wantReason := map[uint64]Reason{}
	wantReason[publishRaw(ctx, t, js, pub, a.owner, "message_added", nil, []byte("not a cloud event"))] = ReasonUndecodable
	m3, _ := msg(a, "3")
	raw, err := events.Encode(m3)
	if err != nil {
		t.Fatal(err)
	}
	wantReason[publishRaw(ctx, t, js, pub, a.owner, "message_added", raw.Header, []byte(`{"message_id":"not-a-uuid"}`))] = ReasonSchemaInvalid
	up, err := events.Encode(ev(a.user, events.UserUpserted{UserID: events.UserID(a.user), Identifier: a.user}))
	if err != nil {
		t.Fatal(err)
	}
	up.Header.Set("ce-type", "dev.engram.memory.bogus.v1")
	up.Header.Del(nats.MsgIdHdr)
	wantReason[publishRaw(ctx, t, js, pub, a.owner, "user_upserted", up.Header, up.Data)] = ReasonUnknownType
	shared, _ := msg(tenant{}, "nobody")
	shared.Data = events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID("", "s"), SessionID: "s", Role: "user", Content: "x"}
	foreign := ev(b.user, events.PreferenceSuperseded{OldID: p1, NewID: bp})
	missing := ev(a.user, events.PreferenceSuperseded{OldID: events.NewID(), NewID: p2})
	seqs := publishEvents(ctx, t, js, pub, shared, foreign, missing)
	wantReason[seqs[0]], wantReason[seqs[1]], wantReason[seqs[2]] = ReasonNoUser, ReasonForeignReference, ReasonMissingReference

	// The tenant's later events go on.
	m4, id4 := msg(a, "4")
	good = append(good, publishEvents(ctx, t, js, pub, add(m4, id4), ev(a.user, events.PreferenceSuperseded{OldID: p1, NewID: p2}))...)
	waitCaughtUp(ctx, t, d, group, pub, 30*time.Second)

	letters := deadLetters(ctx, t, js)
	if len(letters) != len(wantReason) {
		t.Fatalf("%d dead letters, want %d", len(letters), len(wantReason))
	}
	for _, m := range letters {
		h := m.Headers()
		seq, err := strconv.ParseUint(h.Get(HeaderDlqSeq), 10, 64)
		if err != nil {
			t.Fatalf("dead letter without %s: %v", HeaderDlqSeq, h)
		}
		want, ok := wantReason[seq]
		if !ok {
			t.Fatalf("dead letter of sequence %d, which is not poison", seq)
		}
		if got := Reason(h.Get(HeaderDlqReason)); got != want {
			t.Errorf("sequence %d: reason %q, want %q (error %q)", seq, got, want, h.Get(HeaderDlqError))
		}
		if h.Get(HeaderDlqError) == "" || h.Get(HeaderDlqGroup) != group || h.Get(HeaderDlqStream) != "MEM" {
			t.Errorf("sequence %d: headers %v", seq, h)
		}
		if !strings.HasPrefix(m.Subject(), DeadLetterSubjectPrefix+"mem.") || h.Get(HeaderDlqSubject) != strings.TrimPrefix(m.Subject(), DeadLetterSubjectPrefix) {
			t.Errorf("sequence %d: dead letter on %s, subject header %s", seq, m.Subject(), h.Get(HeaderDlqSubject))
		}
		if h.Get("Nats-Expected-Stream") == "MEM" || h.Get("Nats-Pin-Id") != "" {
			t.Errorf("sequence %d: JetStream headers copied: %v", seq, h)
		}
		if want == ReasonForeignReference {
			if tok, _ := events.TenantToken(b.user); h.Get("ce-id") != foreign.ID || h.Get(HeaderDlqMsgID) != events.MsgID(tok, foreign.ID) {
				t.Errorf("foreign reference: ce-id %q, original msg id %q, want %s", h.Get("ce-id"), h.Get(HeaderDlqMsgID), foreign.ID)
			}
		}
		if want == ReasonUndecodable && string(m.Data()) != "not a cloud event" {
			t.Errorf("undecodable: data %q", m.Data())
		}
		delete(wantReason, seq)
	}

	// Everything good was applied; nothing of the poison.
	ids := value[[]any](ctx, t, d, `MATCH (c:Conversation {id: $conv})-[:FIRST_MESSAGE]->(f)
		MATCH p = (f)-[:NEXT_MESSAGE*0..]->(m) WHERE NOT (m)-[:NEXT_MESSAGE]->()
		RETURN [n IN nodes(p) | n.id] AS v`, map[string]any{"conv": events.ConversationID(a.user, "s")})
	if fmt.Sprint(ids) != fmt.Sprint(chain) {
		t.Errorf("chain %v, want %v", ids, chain)
	}
	if n := value[int64](ctx, t, d, `MATCH (:Preference {id: $p1})-[s:SUPERSEDED_BY]->(n) RETURN count(s) AS v`, map[string]any{"p1": p1}); n != 1 {
		t.Errorf("p1 superseded %d times, want once (by p2)", n)
	}
	if n := value[int64](ctx, t, d, `MATCH (m:Message {owner: "_shared"}) WHERE m.content = "x" RETURN count(m) AS v`, nil); n != 0 {
		t.Errorf("the event without a user was applied")
	}
	for _, r := range Reasons[:6] {
		if got := counter(t, reg, "engram_projector_dead_lettered_total", map[string]string{"reason": string(r)}); got != 1 {
			t.Errorf("dead_lettered_total{reason=%s} = %v, want 1", r, got)
		}
	}
	if got := counter(t, reg, "engram_projector_events_applied_total", nil); got != float64(len(good)) {
		t.Errorf("events_applied_total = %v, want %d", got, len(good))
	}
	// Every first delivery, applied or dead-lettered, is timed once when received and once
	// when its step committed.
	received := counter(t, reg, "engram_projector_event_delay_seconds", map[string]string{"until": "received"})
	committed := counter(t, reg, "engram_projector_event_delay_seconds", map[string]string{"until": "committed"})
	if received != committed || committed < float64(len(good)) {
		t.Errorf("event delays observed: %v received, %v committed, want the same, at least the %d good events", received, committed, len(good))
	}
}

// TestProjectorStopAndTakeOver runs two projectors of one group; the one holding partitions
// stops gracefully in the middle of a load, the other takes over, and the graph equals a
// clean projection of the same events by a third group.
func TestProjectorStopAndTakeOver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, js := testenv.NATS(t)
	d := testNeo4j(t)
	var sc scope
	var tenants []tenant
	for i := range 12 {
		tenants = append(tenants, newTenant(t, fmt.Sprintf("take-%d", i)))
	}
	sc.add(tenants...)
	sc.tools = []string{"take-tool-" + events.NewID(), "take-tool2-" + events.NewID()}
	cleanupScope(t, d, &sc)
	group := testGroup(t, "take")
	cleanupCheckpoints(t, d, group)

	cfg := testConfig(group)
	cfg.BatchSize = 50
	_, firstReg, stopFirst := startProjector(t, cfg, d, js)
	_, secondReg, _ := startProjector(t, cfg, d, js)

	pub := newPublished()
	evs := genLoad(tenants, sc.tools, 1500, 7, loadOptions{erase: true})
	publishEvents(ctx, t, js, pub, evs[:750]...)
	applied := func() float64 {
		return counter(t, firstReg, "engram_projector_events_applied_total", nil) +
			counter(t, secondReg, "engram_projector_events_applied_total", nil)
	}
	for deadline := time.Now().Add(30 * time.Second); applied() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("nothing applied within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopFirst()
	publishEvents(ctx, t, js, pub, evs[750:]...)
	waitCaughtUp(ctx, t, d, group, pub, time.Minute)
	if counter(t, secondReg, "engram_projector_events_applied_total", nil) == 0 {
		t.Error("the second projector applied nothing")
	}
	t.Logf("applied: first %v, second %v; gap-filled: first %v, second %v",
		counter(t, firstReg, "engram_projector_events_applied_total", nil), counter(t, secondReg, "engram_projector_events_applied_total", nil),
		counter(t, firstReg, "engram_projector_gap_filled_total", nil), counter(t, secondReg, "engram_projector_gap_filled_total", nil))
	got := fingerprintOf(ctx, t, d, sc)
	want := cleanProjection(t, sc, d, js, pub)
	if err := fingerprint.Compare(want, got, 20); err != nil {
		t.Fatal(err)
	}
}

// cleanProjection deletes what sc owns and projects the whole stream again with a new group,
// in-process and undisturbed, and returns the fingerprint of the result.
func cleanProjection(t *testing.T, sc scope, d neo4j.DriverWithContext, js jetstream.JetStream, pub *published) fingerprint.Fingerprint {
	t.Helper()
	ctx := t.Context()
	purge(ctx, t, d, sc)
	group := testGroup(t, "clean")
	cleanupCheckpoints(t, d, group)
	_, _, stop := startProjector(t, testConfig(group), d, js)
	waitCaughtUp(ctx, t, d, group, pub, 4*time.Minute)
	stop()
	return fingerprintOf(ctx, t, d, sc)
}
