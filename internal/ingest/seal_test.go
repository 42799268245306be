package ingest_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// newSealingHarness is an ingestor handler that seals with the data keys of its JetStream,
// as the ingestor's module builds it.
func newSealingHarness(t testing.TB) *harness {
	t.Helper()
	_, _, js := testenv.NATS(t)
	pub := stream.NewPublisher(js, 5*time.Second)
	ring, err := ingest.NewRing(keys.NewKV(js), pub.Erasure)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ingest.NewHandler(pub, testConfig(t, true), ingest.WithKeys(ring))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, js: js, h: h}
}

// tenantMsgs returns every stored message of user's subjects.
func tenantMsgs(t testing.TB, js jetstream.JetStream, user string) []*jetstream.RawStreamMsg {
	t.Helper()
	filter, err := events.TenantSubjects(user)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	err = stream.Each(t.Context(), js, stream.MemoryStream, filter, false, func(m jetstream.Msg) error {
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		out = append(out, &jetstream.RawStreamMsg{Subject: m.Subject(), Sequence: md.Sequence.Stream, Header: m.Headers(), Data: m.Data()})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIngestorSealsAndErasureShreds: concurrent first writes of a new user are all sealed
// with one key, created once; neither the data nor a header but the subject's tenant token
// carries the user; the erasure destroys the key, so a copy of the events taken before it
// (a backup) no longer opens, and no key of the user stays in the bucket; a write after the
// erasure is 410 and makes no key; a re-creation starts a new life with new keys.
func TestIngestorSealsAndErasureShreds(t *testing.T) {
	t.Parallel()
	h := newSealingHarness(t)
	ctx := t.Context()
	user := testenv.User(t, "sealed")
	const writers = 8
	var wg sync.WaitGroup
	codes := make([]int, writers)
	for i := range writers {
		wg.Go(func() {
			r := h.do(http.MethodPost, "/v1/messages", msgBody(t, user, fmt.Sprintf("secret %d", i)),
				"X-Correlation-ID", "corr-"+user)
			codes[i] = r.code
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusAccepted {
			t.Fatalf("writer %d: %d", i, c)
		}
	}
	h.do(http.MethodPut, userPath(user), mustJSON(t, map[string]any{"attributes": map[string]any{"email": user}})).accepted(t)
	backup := tenantMsgs(t, h.js, user)
	if len(backup) != writers+1 {
		t.Fatalf("%d events stored, want %d", len(backup), writers+1)
	}
	ref := backup[0].Header.Get(events.HeaderKey)
	userID := events.UserID(user)
	for _, m := range backup {
		if got := m.Header.Get(events.HeaderKey); got == "" || got != ref {
			t.Fatalf("event %d sealed with %q, the first with %q", m.Sequence, got, ref)
		}
		for k, vs := range m.Header {
			for _, v := range vs {
				if strings.Contains(v, user) || strings.Contains(v, userID) {
					t.Errorf("event %d: header %s carries the user: %q", m.Sequence, k, v)
				}
			}
		}
		if bytes.Contains(m.Data, []byte("secret")) || bytes.Contains(m.Data, []byte(user)) || bytes.Contains(m.Data, []byte(userID)) {
			t.Errorf("event %d: data in clear", m.Sequence)
		}
	}
	ring, err := keys.NewRing(keys.NewKV(h.js))
	if err != nil {
		t.Fatal(err)
	}
	codec := events.Codec{Keys: ring}
	for _, m := range backup {
		ev, err := codec.Decode(ctx, m.Subject, m.Header, m.Data)
		if err != nil {
			t.Fatalf("open event %d: %v", m.Sequence, err)
		}
		if ev.User != user || ev.Kind == events.KindMessageAdded && ev.CorrelationID != "corr-"+user {
			t.Fatalf("event %d opened as user %q correlation %q", m.Sequence, ev.User, ev.CorrelationID)
		}
	}

	h.do(http.MethodDelete, userPath(user), "").accepted(t)
	if _, err := keys.NewKV(h.js).Get(ctx, user); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("the user's keys after the erasure: %v, want ErrNotFound", err)
	}
	if n := kvMsgs(t, h.js, user); n != 0 {
		t.Fatalf("%d messages of the user's key left in the bucket", n)
	}
	ring.Forget(user) // a reader that has not decoded the tombstone yet, past the cache's lifetime
	for _, m := range backup {
		if _, err := codec.Decode(ctx, m.Subject, m.Header, m.Data); !errors.Is(err, events.ErrShredded) {
			t.Fatalf("the backup's event %d after the erasure: %v, want ErrShredded", m.Sequence, err)
		}
	}
	if r := h.do(http.MethodPost, "/v1/messages", msgBody(t, user, "after")); r.code != http.StatusGone {
		t.Fatalf("write after the erasure: %d %s", r.code, r.body)
	}
	if n := kvMsgs(t, h.js, user); n != 0 {
		t.Fatalf("a write after the erasure made a key (%d messages)", n)
	}

	h.do(http.MethodPost, userPath(user)+"/recreate", "").accepted(t)
	a := h.do(http.MethodPost, "/v1/messages", msgBody(t, user, "new life")).accepted(t)
	m := stored(t, h.js, a.Sequence)
	if got := m.Header.Get(events.HeaderKey); got == "" || got == ref {
		t.Fatalf("the new life's write sealed with %q, the erased life's was %q", got, ref)
	}
	if _, err := codec.Decode(ctx, m.Subject, m.Header, m.Data); err != nil {
		t.Fatalf("the new life's write does not open: %v", err)
	}
}

// TestBatchSealsAndRecreates: a batch that re-creates an erased user and writes for them seals
// those writes with the new life's key; so does one that erases, re-creates and writes, whose
// erasure must not destroy the new life's key after the batch is stored.
func TestBatchSealsAndRecreates(t *testing.T) {
	t.Parallel()
	h := newSealingHarness(t)
	write := map[string]any{"op": "add_message", "session_id": "s", "role": "user", "content": "back"}
	for _, c := range []struct {
		name  string
		erase bool // erased by an earlier request, or inside the batch
	}{{"after an erasure", true}, {"erase, re-create and write in one batch", false}} {
		user := testenv.User(t, "batch")
		h.do(http.MethodPost, "/v1/messages", msgBody(t, user, "first")).accepted(t)
		cmds := []any{map[string]any{"op": "recreate_user", "identifier": user}, withUser(write, user)}
		if c.erase {
			h.do(http.MethodDelete, userPath(user), "").accepted(t)
		} else {
			cmds = append([]any{map[string]any{"op": "erase_user", "identifier": user}}, cmds...)
		}
		r := h.do(http.MethodPost, "/v1/batch", mustJSON(t, map[string]any{"commands": cmds}))
		if r.code != http.StatusAccepted {
			t.Fatalf("%s: batch: %d %s", c.name, r.code, r.body)
		}
		msgs := tenantMsgs(t, h.js, user)
		last := msgs[len(msgs)-1]
		if last.Header.Get(events.HeaderKey) == "" {
			t.Fatalf("%s: the batch's write is not sealed", c.name)
		}
		if ev, err := (events.Codec{Keys: keys.Default(h.js)}).Decode(t.Context(), last.Subject, last.Header, last.Data); err != nil || ev.Kind != events.KindMessageAdded {
			t.Fatalf("%s: the batch's write: %v, %v", c.name, ev, err)
		}
	}
}

func withUser(cmd map[string]any, user string) map[string]any {
	out := map[string]any{"user_identifier": user}
	for k, v := range cmd {
		out[k] = v
	}
	return out
}

func kvMsgs(t testing.TB, js jetstream.JetStream, user string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), "KV_"+keys.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("$KV."+keys.Bucket+"."+events.UserID(user)))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// openStored is m opened with the data keys of js (as every reader opens it).
func openStored(t testing.TB, js jetstream.JetStream, m *jetstream.RawStreamMsg) *jetstream.RawStreamMsg {
	t.Helper()
	ring, err := keys.NewRing(keys.NewKV(js))
	if err != nil {
		t.Fatal(err)
	}
	h, d, err := events.Codec{Keys: ring}.Open(t.Context(), m.Subject, m.Header, m.Data)
	if err != nil {
		t.Fatalf("open stored event %d: %v", m.Sequence, err)
	}
	out := *m
	out.Header, out.Data = h, d
	return &out
}

// BenchmarkHandlerSealing is BenchmarkHandler's add_message with encryption off and on, on
// one embedded JetStream each, the on handler's key cached after the first request: what
// sealing adds to a request (the same-run ratio of docs/BENCHMARKS.md):
// go test -run '^$' -bench BenchmarkHandlerSealing -benchmem -count 4 ./internal/ingest/
func BenchmarkHandlerSealing(b *testing.B) {
	for _, v := range []struct {
		name string
		h    *harness
	}{{"off", newHarness(b, true)}, {"on", newSealingHarness(b)}} {
		user := testenv.User(b, "bench-seal")
		body := msgBody(b, user, "Find me a senior consultant team for a healthcare project in Berlin.")
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := v.h.do(http.MethodPost, "/v1/messages", body); r.code != http.StatusAccepted {
					b.Fatalf("%d %s", r.code, r.body)
				}
			}
		})
	}
}
