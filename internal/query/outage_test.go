package query

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestNeo4jDown kills a private Neo4j under the query service: every read answers 503 with
// Retry-After — a plain read once its read timeout passes, a read with a consistency token as
// well (not 504: the checkpoint could not be read, so there is no position to report) — and
// once Neo4j is back, reads answer 200 again.
func TestNeo4jDown(t *testing.T) {
	t.Parallel()
	neo := testenv.StartNeo4jProcess(t)
	// The services' driver settings, not the test helper's.
	d, err := graph.NewDriver(graph.Config{URI: neo.URI, User: neo.User, Password: neo.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	if err := graph.ApplySchema(t.Context(), d, ""); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, d, "outage")
	f.user(map[string]any{"k": "v"}, time.Now())
	group := testGroup(t, d)
	r, err := NewReader(d, "", WithCheckpointGroup(group))
	if err != nil {
		t.Fatal(err)
	}
	name, err := r.CheckpointName(f.id)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := events.TenantToken(f.id)
	setCheckpoint(t, d, name, events.Partition(tok, natsdeploy.Partitions), 10)
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	NewHandler(r, 2*time.Second, 50, slog.New(slog.DiscardHandler), m, WithReadTimeout(2*time.Second)).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// The driver alone retries a refused connection for 30 s (then the answer was a 500): a
	// client that gives up well before that only gets an answer if the handler bounds the read.
	client := &http.Client{Timeout: 20 * time.Second}
	reads := []string{
		userURL(srv.URL, f.id),
		userURL(srv.URL, f.id) + "/preferences",
		userURL(srv.URL, f.id) + "/conversations",
		userURL(srv.URL, f.id) + "?consistency=5",  // covered by the checkpoint
		userURL(srv.URL, f.id) + "?consistency=50", // not covered: the wait polls the checkpoint
	}
	status := func(target string) (int, http.Header, string) {
		t.Helper()
		resp, err := client.Get(target)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}
	// On a loaded machine a fresh Neo4j may plan a read for longer than the read timeout (the
	// service warms its reads up before it is ready): poll.
	answers := func(when string) {
		t.Helper()
		for _, target := range reads[:4] {
			for deadline := time.Now().Add(2 * time.Minute); ; {
				code, _, body := status(target)
				if code == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET %s %s: still %d %s", target, when, code, body)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	if err := r.Warm(t.Context()); err != nil {
		t.Fatal(err)
	}
	answers("with Neo4j up")

	neo.Kill()
	for _, target := range reads {
		code, header, body := status(target)
		if code != http.StatusServiceUnavailable || header.Get("Retry-After") == "" ||
			!strings.Contains(body, "the graph database is unavailable") {
			t.Errorf("GET %s with Neo4j down: %d (Retry-After %q) %s, want 503 with Retry-After", target, code, header.Get("Retry-After"), body)
		}
	}

	neo.Start()
	answers("after Neo4j is back")
}
