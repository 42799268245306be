package ingest_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// tenantKinds counts the stored messages of user by subject kind.
func tenantKinds(t testing.TB, js jetstream.JetStream, user string) map[events.Kind]uint64 {
	t.Helper()
	filter, err := events.TenantSubjects(user)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	out := map[events.Kind]uint64{}
	for subj, n := range info.State.Subjects {
		_, k, err := events.ParseSubject(subj)
		if err != nil {
			t.Fatal(err)
		}
		out[k] += n
	}
	return out
}

func msgBody(t testing.TB, user, content string) string {
	t.Helper()
	return mustJSON(t, map[string]any{"user_identifier": user, "session_id": "s", "role": "user", "content": content})
}

// TestWritesAfterErasureAreGone: after the erasure's 202 every write naming the user is 410,
// with when and how to re-create, and stores nothing; the erase itself may be repeated; a
// re-creation lets writes through again, and asked again answers its receipt.
func TestWritesAfterErasureAreGone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	user, other := testenv.User(t, "gone"), testenv.User(t, "other")
	h.do(http.MethodPut, userPath(user), "").accepted(t)
	h.do(http.MethodPost, "/v1/messages", msgBody(t, user, "before")).accepted(t)
	erased := h.do(http.MethodDelete, userPath(user), `{"reason":"asked"}`).accepted(t)
	tombAt := stored(t, h.js, erased.Sequence).Header.Get("ce-time")

	trace := events.NewID()
	writes := []struct{ method, path, body string }{
		{http.MethodPut, userPath(user), ""},
		{http.MethodPost, "/v1/users", mustJSON(t, map[string]any{"identifier": user})},
		{http.MethodPost, "/v1/messages", msgBody(t, user, "after")},
		{http.MethodPost, "/v1/preferences", mustJSON(t, map[string]any{"user_identifier": user, "category": "c", "preference": "p"})},
		{http.MethodPost, "/v1/preferences/" + events.NewID() + "/supersede", mustJSON(t, map[string]any{"user_identifier": user, "new_id": events.NewID()})},
		{http.MethodPost, "/v1/traces", mustJSON(t, map[string]any{"user_identifier": user, "session_id": "s", "task": "t"})},
		{http.MethodPost, "/v1/traces/" + trace + "/steps", mustJSON(t, map[string]any{"user_identifier": user, "thought": "t"})},
		{http.MethodPost, "/v1/traces/" + trace + "/tool-calls", mustJSON(t, map[string]any{"user_identifier": user, "step_id": events.NewID(), "tool_name": "x"})},
		{http.MethodPost, "/v1/traces/" + trace + "/complete", mustJSON(t, map[string]any{"user_identifier": user})},
	}
	before := count(t, h.js)
	for _, w := range writes {
		r := h.do(w.method, w.path, w.body)
		if r.code != http.StatusGone {
			t.Errorf("%s %s after the erasure: %d %s, want 410", w.method, w.path, r.code, r.body)
			continue
		}
		p := r.problem(t)
		erasedAt, _ := time.Parse(time.RFC3339Nano, tombAt)
		for _, want := range []string{user, "was erased at " + erasedAt.UTC().Format(time.RFC3339), "POST /v1/users/{identifier}/recreate"} {
			if !strings.Contains(p.Error, want) {
				t.Errorf("%s %s: 410 %q does not say %q", w.method, w.path, p.Error, want)
			}
		}
	}
	// A batch is refused whole when any command names the erased user, the command named.
	r := h.do(http.MethodPost, "/v1/batch", `{"commands":[`+
		`{"op":"add_message","user_identifier":"`+other+`","session_id":"s","role":"user","content":"x"},`+
		`{"op":"add_message","user_identifier":"`+user+`","session_id":"s","role":"user","content":"y"}]}`)
	if p := r.problem(t); r.code != http.StatusGone || p.Field != "commands[1]" || !strings.HasPrefix(p.Error, "commands[1]: ") {
		t.Errorf("batch naming the erased user: %d %+v, want 410 on commands[1]", r.code, p)
	}
	if got := count(t, h.js); got != before {
		t.Fatalf("%d events stored by refused writes", got-before)
	}
	// Erasing again is allowed (it is idempotent), and a user never erased is not gone.
	h.do(http.MethodDelete, userPath(user), "").accepted(t)
	h.do(http.MethodPost, "/v1/messages", msgBody(t, other, "fine")).accepted(t)

	// Re-creation: writes are accepted again; a second re-creation answers the first's receipt.
	again := h.do(http.MethodPost, userPath(user)+"/recreate", `{"reason":"came back"}`).accepted(t)
	if again.UserID != events.UserID(user) || again.Duplicate {
		t.Errorf("re-creation answered %+v", again)
	}
	checkEnvelope(t, stored(t, h.js, again.Sequence), again.EventID, user, events.KindUserRecreated)
	h.do(http.MethodPost, "/v1/messages", msgBody(t, user, "welcome back")).accepted(t)
	retry := h.do(http.MethodPost, userPath(user)+"/recreate", "").accepted(t)
	if !retry.Duplicate || retry.Sequence != again.Sequence || retry.EventID != again.EventID {
		t.Errorf("re-creation asked again: %+v, want the receipt of %+v as a duplicate", retry, again)
	}
	// Nothing to re-create for a user never erased.
	r = h.do(http.MethodPost, userPath(other)+"/recreate", "")
	if p := r.problem(t); r.code != http.StatusConflict || p.Field != "identifier" || !strings.Contains(p.Error, "never erased") {
		t.Errorf("re-creating a user never erased: %d %+v, want 409 on identifier", r.code, p)
	}
}

// TestBatchFollowsItsOwnErasures: inside a batch, commands see the erasures and re-creations
// before them in the batch.
func TestBatchFollowsItsOwnErasures(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	user := testenv.User(t, "inbatch")
	msg := func(content string) string {
		return `{"op":"add_message","user_identifier":"` + user + `","session_id":"s","role":"user","content":"` + content + `"}`
	}
	r := h.do(http.MethodPost, "/v1/batch", `{"commands":[`+msg("a")+`,{"op":"erase_user","identifier":"`+user+`"},`+msg("b")+`]}`)
	if p := r.problem(t); r.code != http.StatusGone || p.Field != "commands[2]" || !strings.Contains(p.Error, "by an earlier command of this batch") {
		t.Errorf("a write after an erasure in its batch: %d %+v, want 410 on commands[2]", r.code, p)
	}
	r = h.do(http.MethodPost, "/v1/batch", `{"commands":[{"op":"recreate_user","identifier":"`+user+`"}]}`)
	if p := r.problem(t); r.code != http.StatusConflict || p.Field != "commands[0].identifier" {
		t.Errorf("re-creating a user never erased in a batch: %d %+v, want 409 on commands[0].identifier", r.code, p)
	}
	if got := tenantKinds(t, h.js, user); len(got) != 0 {
		t.Fatalf("refused batches stored %v", got)
	}
	r = h.do(http.MethodPost, "/v1/batch", `{"commands":[`+msg("a")+`,{"op":"erase_user","identifier":"`+user+`"},`+
		`{"op":"recreate_user","identifier":"`+user+`"},`+msg("b")+`]}`)
	if r.code != http.StatusAccepted {
		t.Fatalf("erase, re-create and write in one batch: %d %s", r.code, r.body)
	}
	// The erasure purged what came before it; the re-creation's purge had nothing between.
	want := map[events.Kind]uint64{events.KindUserErased: 1, events.KindUserRecreated: 1, events.KindMessageAdded: 1}
	if got := tenantKinds(t, h.js, user); !equalCounts(got, want) {
		t.Errorf("after the batch the tenant holds %v, want %v", got, want)
	}
}

func equalCounts(a, b map[events.Kind]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, n := range a {
		if b[k] != n {
			return false
		}
	}
	return true
}

// TestRecreationPurgesRefusedWrites: what an agent stored over NATS after the erasure (the
// projector drops it) is purged by the re-creation; the tombstone stays.
func TestRecreationPurgesRefusedWrites(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	user := testenv.User(t, "purged")
	h.do(http.MethodPost, "/v1/messages", msgBody(t, user, "before")).accepted(t)
	h.do(http.MethodDelete, userPath(user), "").accepted(t)
	pub := stream.NewPublisher(h.js, 5*time.Second)
	for _, d := range []any{
		events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(user, "s"), SessionID: "s", Role: "user", Content: "refused"},
		events.UserUpserted{UserID: events.UserID(user), Identifier: user},
	} {
		if _, err := pub.Publish(t.Context(), &events.Event{ID: events.NewID(), Source: "/engram/agent", User: user, Time: time.Now(), Data: d}); err != nil {
			t.Fatal(err)
		}
	}
	h.do(http.MethodPost, userPath(user)+"/recreate", "").accepted(t)
	want := map[events.Kind]uint64{events.KindUserErased: 1, events.KindUserRecreated: 1}
	if got := tenantKinds(t, h.js, user); !equalCounts(got, want) {
		t.Errorf("after the re-creation the tenant holds %v, want %v", got, want)
	}
}

// TestConcurrentRecreationsStoreOne: admins re-creating at once store one re-creation; the
// others answer its receipt.
func TestConcurrentRecreationsStoreOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	user := testenv.User(t, "twice")
	h.do(http.MethodDelete, userPath(user), "").accepted(t)
	const n = 4
	answers := make([]reply, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { answers[i] = h.do(http.MethodPost, userPath(user)+"/recreate", "") })
	}
	wg.Wait()
	seqs := map[uint64]bool{}
	for i, r := range answers {
		if r.code != http.StatusAccepted && r.code != http.StatusConflict {
			t.Errorf("re-creation %d: %d %s", i, r.code, r.body)
			continue
		}
		if r.code == http.StatusAccepted {
			seqs[r.accepted(t).Sequence] = true
		}
	}
	if got := tenantKinds(t, h.js, user)[events.KindUserRecreated]; got != 1 || len(seqs) != 1 {
		t.Errorf("%d re-creations stored, answers name %d sequences; want 1 and 1", got, len(seqs))
	}
}

// BenchmarkErasureCheck measures what the look-up of the user's erasures adds to a single
// write on an embedded JetStream: none (every user taken as never erased), the log read at
// every write (two direct gets, as before the cache), and the ingestor's own (remembered, the
// write conditional on the user's erasure subject). Compare the sub-benchmarks' ns/op.
func BenchmarkErasureCheck(b *testing.B) {
	for _, tc := range []struct {
		name  string
		setup func(*ingest.Handler)
	}{{"without_lookup", ingest.WithoutErasureCheck}, {"log_every_write", ingest.WithoutErasureCache}, {"remembered", func(*ingest.Handler) {}}} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHarness(b, true)
			tc.setup(h.h)
			body := msgBody(b, testenv.User(b, "bench"), "hello")
			b.ResetTimer()
			for b.Loop() {
				if r := h.do(http.MethodPost, "/v1/messages", body); r.code != http.StatusAccepted {
					b.Fatalf("%d %s", r.code, r.body)
				}
			}
		})
	}
}

// TestRecreateNeedsAdmin: re-creating is the admin's, like erasing, on its route and as a
// batch command; a writer for the user gets 403 and nothing is stored.
func TestRecreateNeedsAdmin(t *testing.T) {
	t.Parallel()
	secret := []byte(strings.Repeat("recreate-secret-", 3))
	file := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Enabled: true, HS256SecretFile: file})
	if err != nil {
		t.Fatal(err)
	}
	_, _, js := testenv.NATS(t)
	h, err := ingest.NewHandler(stream.NewPublisher(js, 5*time.Second), testConfig(t, true), ingest.WithAuthenticator(a))
	if err != nil {
		t.Fatal(err)
	}
	hr := &harness{t: t, js: js, h: h}
	user := testenv.User(t, "admin-only")
	token := func(scopes ...auth.Scope) string {
		tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: "p", Users: []string{user}, Scopes: scopes, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	writer, admin := token(auth.ScopeWrite), token(auth.ScopeAdmin)
	hr.do(http.MethodDelete, userPath(user), "", "Authorization", admin).accepted(t)
	for _, r := range []reply{
		hr.do(http.MethodPost, userPath(user)+"/recreate", "", "Authorization", writer),
		hr.do(http.MethodPost, "/v1/batch", `{"commands":[{"op":"recreate_user","identifier":"`+user+`"}]}`, "Authorization", writer),
	} {
		if r.code != http.StatusForbidden {
			t.Errorf("re-creation by a writer: %d %s, want 403", r.code, r.body)
		}
	}
	if got := tenantKinds(t, js, user)[events.KindUserRecreated]; got != 0 {
		t.Fatalf("%d re-creations stored by refused requests", got)
	}
	hr.do(http.MethodPost, userPath(user)+"/recreate", "", "Authorization", admin).accepted(t)
}
