package ingest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func keyedHarness(t *testing.T) *harness {
	t.Helper()
	_, _, js := testenv.NATS(t)
	h, err := ingest.NewHandler(stream.NewPublisher(js, 5*time.Second, stream.WithKeys(stream.RandomKeys())), testConfig(t, true))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, js: js, h: h}
}

// TestDedupeIsPerTenant covers issue 12 finding 9: deduplication was stream-wide, so an
// event_id another tenant had used made a write answer 202 duplicate:true with the other
// tenant's sequence, and nothing was stored. Now both tenants' writes are stored and answer
// non-duplicate, one command at a time and in batches; a repeat of the same tenant's write
// still is a duplicate.
func TestDedupeIsPerTenant(t *testing.T) {
	t.Parallel()
	h := keyedHarness(t)
	sara, liam, noah := testenv.User(t, "sara"), testenv.User(t, "liam"), testenv.User(t, "noah")
	id := events.NewID()
	msg := func(user string) string {
		return mustJSON(t, map[string]any{"event_id": id, "user_identifier": user, "session_id": "s1", "role": "user", "content": "hi " + user})
	}
	first := h.do(http.MethodPost, "/v1/messages", msg(sara)).accepted(t)
	other := h.do(http.MethodPost, "/v1/messages", msg(liam)).accepted(t)
	if other.Duplicate || other.Sequence == first.Sequence {
		t.Fatalf("liam's write of sara's event_id: %+v, want stored apart from sequence %d", other, first.Sequence)
	}
	checkEnvelopeKeyed(t, stored(t, h.js, other.Sequence), id, liam)
	again := h.do(http.MethodPost, "/v1/messages", msg(sara)).accepted(t)
	if !again.Duplicate || again.Sequence != first.Sequence {
		t.Errorf("sara's retry: %+v, want a duplicate of sequence %d", again, first.Sequence)
	}
	// A batch of a third tenant with the same event id is stored; a batch repeating one of
	// sara's events is refused whole (409), as before.
	batch := func(user string) string {
		return mustJSON(t, map[string]any{"commands": []any{
			map[string]any{"op": "add_message", "event_id": id, "user_identifier": user, "session_id": "s1", "role": "user", "content": "hi"},
		}})
	}
	if r := h.do(http.MethodPost, "/v1/batch", batch(noah)); r.code != http.StatusAccepted {
		t.Errorf("noah's batch with sara's event_id: %d %s", r.code, r.body)
	}
	if r := h.do(http.MethodPost, "/v1/batch", batch(sara)); r.code != http.StatusConflict {
		t.Errorf("sara's batch repeating her event: %d %s, want 409", r.code, r.body)
	}
	if n := count(t, h.js); n != 3 {
		t.Errorf("stream holds %d events, want 3 (sara's, liam's, noah's)", n)
	}
}

// checkEnvelopeKeyed checks what a keyed ingestor stores: a tenant-scoped, keyed Nats-Msg-Id
// (not the bare event id, not events.MsgID) and a vouch.
func checkEnvelopeKeyed(t *testing.T, m *jetstream.RawStreamMsg, id, user string) {
	t.Helper()
	tok, _ := events.TenantToken(user)
	got := m.Header.Get(nats.MsgIdHdr)
	if got == id || got == events.MsgID(tok, id) || !strings.HasPrefix(got, tok+":k") {
		t.Errorf("Nats-Msg-Id %q: want the keyed id of tenant %s", got, tok)
	}
	if m.Header.Get(stream.VouchHeader) == "" {
		t.Errorf("no %s header", stream.VouchHeader)
	}
}

// TestAgentCannotSuppressAnotherTenantsWrite: under the production NATS permissions, an
// agent of one tenant publishes over NATS on its own subjects with every Nats-Msg-Id it could
// guess for another tenant's next event (the bare event id, events.MsgID of the victim's
// tenant); the victim's write through the ingestor is stored all the same, and the agent's
// own repeat is still deduplicated.
func TestAgentCannotSuppressAnotherTenantsWrite(t *testing.T) {
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	sn := testenv.StartProductionNATS(t, sara)
	sn.OpenDoor(t) // agents' events reach the stream through an ingestor's door
	_, ijs := sn.Connect(t, "ingestor")
	h, err := ingest.NewHandler(stream.NewPublisher(ijs, 5*time.Second, stream.WithKeys(stream.RandomKeys())), testConfig(t, true))
	if err != nil {
		t.Fatal(err)
	}
	_, ajs := sn.ConnectAgent(t, sara)
	id := events.NewID()
	liamTok, _ := events.TenantToken(liam)
	var agentSeq uint64
	for i, forged := range []string{id, events.MsgID(liamTok, id)} {
		m, err := events.Encode(&events.Event{ID: events.NewID(), Source: "/agent", User: sara, Time: time.Now(),
			Data: events.UserUpserted{UserID: events.UserID(sara), Identifier: sara}})
		if err != nil {
			t.Fatal(err)
		}
		m.Header.Set(nats.MsgIdHdr, forged)
		ack, err := ajs.PublishMsg(t.Context(), m)
		if err != nil || ack.Duplicate {
			t.Fatalf("agent's publish %d: %+v, %v", i, ack, err)
		}
		if i == 0 {
			agentSeq = ack.Sequence
		}
		// The agent's own repeat is its own duplicate.
		again, err := ajs.PublishMsg(t.Context(), m)
		if err != nil || !again.Duplicate || again.Sequence != ack.Sequence {
			t.Fatalf("agent's repeat %d: %+v, %v, want a duplicate of %d", i, again, err, ack.Sequence)
		}
	}
	_, admin := sn.Connect(t, "admin")
	hh := &harness{t: t, js: admin, h: h}
	body := mustJSON(t, map[string]any{"event_id": id, "user_identifier": liam, "session_id": "s1", "role": "user", "content": "mine"})
	a := hh.do(http.MethodPost, "/v1/messages", body).accepted(t)
	if a.Duplicate || a.Sequence <= agentSeq {
		t.Fatalf("liam's write after sara's agent forged its ids: %+v, want stored", a)
	}
	if m := stored(t, admin, a.Sequence); m.Header.Get("ce-subject") != liam || m.Header.Get("ce-id") != id {
		t.Fatalf("sequence %d holds %v, not liam's event", a.Sequence, m.Header)
	}
	if again := hh.do(http.MethodPost, "/v1/messages", body).accepted(t); !again.Duplicate || again.Sequence != a.Sequence {
		t.Errorf("liam's retry: %+v, want a duplicate of %d", again, a.Sequence)
	}
	if v := sn.Violations(); len(v) != 0 {
		t.Errorf("permission violations: %v", v)
	}
}
