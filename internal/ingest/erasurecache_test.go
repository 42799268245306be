package ingest_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestErasureByAnotherIngestorCounts: two ingestors on one stream. The first remembers that a
// user is not erased (its later writes read nothing from the log); the second erases the user;
// the first's next write, single or in a batch, is 410 all the same and stores nothing, since
// JetStream refuses the write's condition on the user's erasures and the first reads the log
// again. After an erasure and a re-creation by the second, the first's next write is stored
// (once) on its second try.
func TestErasureByAnotherIngestorCounts(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	cfg := testConfig(t, true)
	a, b := newHarnessOn(t, js, cfg), newHarnessOn(t, js, cfg)
	reads := ingest.CountErasureReads(a.h)
	user, other := testenv.User(t, "raced"), testenv.User(t, "bystander")

	a.do(http.MethodPost, "/v1/messages", msgBody(t, user, "one")).accepted(t)
	first := reads.Load()
	for i := range 3 {
		a.do(http.MethodPost, "/v1/messages", msgBody(t, user, fmt.Sprint("again ", i))).accepted(t)
	}
	if got := reads.Load(); got != first {
		t.Fatalf("writes for a remembered user read the log %d times, want 0", got-first)
	}
	last := a.do(http.MethodPost, "/v1/messages", msgBody(t, user, "conditional")).accepted(t)
	h := stored(t, js, last.Sequence).Header
	if h.Get(jetstream.ExpectedLastSubjSeqHeader) != "0" || h.Get(jetstream.ExpectedLastSubjSeqSubjHeader) == "" {
		t.Errorf("a remembered user's write was stored without its condition: %v", h)
	}

	b.do(http.MethodDelete, userPath(user), `{"reason":"asked"}`).accepted(t)
	before := count(t, js)
	if r := a.do(http.MethodPost, "/v1/messages", msgBody(t, user, "after")); r.code != http.StatusGone {
		t.Fatalf("write on the other ingestor after the erasure: %d %s, want 410", r.code, r.body)
	}
	a.do(http.MethodPost, "/v1/messages", msgBody(t, other, "warm")).accepted(t) // remembered
	b.do(http.MethodPut, userPath(other), "").accepted(t)
	b.do(http.MethodDelete, userPath(other), "").accepted(t)
	before = count(t, js)
	r := a.do(http.MethodPost, "/v1/batch", `{"commands":[`+
		`{"op":"add_message","user_identifier":"`+user+`","session_id":"s","role":"user","content":"x"},`+
		`{"op":"add_message","user_identifier":"`+other+`","session_id":"s","role":"user","content":"y"}]}`)
	if p := r.problem(t); r.code != http.StatusGone || p.Field != "commands[0]" {
		t.Fatalf("batch after both erasures: %d %+v, want 410 on commands[0]", r.code, p)
	}
	if got := count(t, js); got != before {
		t.Fatalf("%d events stored by writes after the erasure", got-before)
	}

	// Erased and re-created by b while a remembered the life before: a's write is refused once
	// by JetStream, read again, and stored.
	b.do(http.MethodPost, userPath(user)+"/recreate", "").accepted(t)
	a.do(http.MethodPost, "/v1/messages", msgBody(t, user, "new life")).accepted(t)
	b.do(http.MethodDelete, userPath(user), "").accepted(t)
	b.do(http.MethodPost, userPath(user)+"/recreate", "").accepted(t)
	before = count(t, js)
	ok := a.do(http.MethodPost, "/v1/messages", msgBody(t, user, "third life")).accepted(t)
	if got := count(t, js); got != before+1 {
		t.Fatalf("the write after a re-creation stored %d events, want 1", got-before)
	}
	if got := stored(t, js, ok.Sequence).Header.Get(jetstream.ExpectedLastSubjSeqHeader); got == "0" || got == "" {
		t.Errorf("stored on the condition %q, want the last tombstone's sequence", got)
	}
	if k := tenantKinds(t, js, user); k[events.KindMessageAdded] == 0 {
		t.Errorf("no message of the user's new life stored: %v", k)
	}
}
