package ingest_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/natsdev"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNATSDown: with NATS stopped the ingestor answers 503 with Retry-After and stores
// nothing, not even later: after NATS comes back on the same port and store, the client
// reconnects and the store holds only what was acknowledged before.
func TestNATSDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv, err := natsdev.Start(natsdev.Options{Port: -1, StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	port := srv.Addr().(*net.TCPAddr).Port
	// The ingestor's own connection settings (stream.Connect): reconnect forever, no buffer.
	nc, err := stream.Connect(srv.ClientURL(), "ingest-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Ensure(t.Context(), js, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	h := newHarnessOn(t, js, testConfig(t, true))
	user := testenv.User(t, "down")
	msg := mustJSON(t, map[string]any{"user_identifier": user, "session_id": "s", "role": "user", "content": "hi"})
	h.do(http.MethodPost, "/v1/messages", msg).accepted(t)

	srv.Shutdown()
	srv.WaitForShutdown()
	eventually(t, "the client notices NATS is gone", func() bool { return !nc.IsConnected() })

	trace := events.NewID()
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/messages", msg},
		{http.MethodPut, userPath(user), `{"attributes":{"a":1}}`},
		{http.MethodPost, "/v1/traces/" + trace + "/complete", `{"user_identifier":"` + user + `"}`},
		{http.MethodPost, "/v1/batch", `{"commands":[` +
			`{"op":"add_message","user_identifier":"` + user + `","session_id":"s","role":"user","content":"a"},` +
			`{"op":"add_message","user_identifier":"` + user + `","session_id":"s","role":"user","content":"b"}]}`},
	} {
		r := h.do(c.method, c.path, c.body)
		if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s with NATS down: %d (Retry-After %q) %s, want 503 with Retry-After",
				c.method, c.path, r.code, r.header.Get("Retry-After"), r.body)
			continue
		}
		if p := r.problem(t); len(p.EventIDs) == 0 {
			t.Errorf("%s %s: 503 names no event ids: %s", c.method, c.path, r.body)
		}
	}

	srv2, err := natsdev.Start(natsdev.Options{Port: port, StoreDir: dir})
	if err != nil {
		t.Fatalf("restart nats on port %d: %v", port, err)
	}
	t.Cleanup(srv2.Shutdown)
	eventually(t, "the client reconnects", nc.IsConnected)
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if n := count(t, js); n != 1 {
		t.Fatalf("store holds %d events after the outage, want only the 1 acknowledged before", n)
	}
	// And the ingestor works again.
	h.do(http.MethodPost, "/v1/messages", msg).accepted(t)
	if n := count(t, js); n != 2 {
		t.Fatalf("store holds %d events, want 2", n)
	}
}

// TestNoStream: NATS up but no stream listening on the subjects: 503 too.
func TestNoStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.js.DeleteStream(ctx, stream.MemoryStream); err != nil {
		t.Fatal(err)
	}
	r := h.do(http.MethodPost, "/v1/messages", `{"user_identifier":"a@x","session_id":"s","role":"user","content":"hi"}`)
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("no stream: %d %s, want 503 with Retry-After", r.code, r.body)
	}
	r = h.do(http.MethodPost, "/v1/batch", `{"commands":[{"op":"add_message","user_identifier":"a@x","session_id":"s","role":"user","content":"hi"}]}`)
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Errorf("no stream, batch: %d %s, want 503 with Retry-After", r.code, r.body)
	}
}
