package ingest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

type holdKey struct{}

// TestBatchFairShare covers issue 12 finding 5: the stream admits a few dozen open atomic
// batches for every tenant together, and one caller held all of them, so every tenant's
// POST /v1/batch answered 503. Now a caller — the principal with authentication on, each
// tenant it names without — has at most MaxOpenBatches publishing at once; beyond, 429 with
// Retry-After, while another caller's batch is stored.
func TestBatchFairShare(t *testing.T) {
	t.Parallel()
	for _, authOn := range []bool{false, true} {
		name := "without authentication"
		if authOn {
			name = "with authentication"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, _, js := testenv.NATS(t)
			cfg := testConfig(t, true)
			cfg.MaxOpenBatches = 2
			var opts []ingest.Option
			var secret []byte
			if authOn {
				secret = []byte(strings.Repeat("s", 40))
				path := filepath.Join(t.TempDir(), "secret")
				if err := os.WriteFile(path, secret, 0o600); err != nil {
					t.Fatal(err)
				}
				a, err := auth.New(auth.Config{Enabled: true, HS256SecretFile: path})
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, ingest.WithAuthenticator(a))
			}
			h, err := ingest.NewHandler(stream.NewPublisher(js, 5*time.Second), cfg, opts...)
			if err != nil {
				t.Fatal(err)
			}
			release := make(chan struct{})
			open := make(chan struct{}, 8)
			ingest.OnBatchOpen(h, func(ctx context.Context) {
				if ctx.Value(holdKey{}) != nil {
					open <- struct{}{}
					<-release
				}
			})
			sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
			// The greedy caller is agent-a writing for sara (and, with authentication, for
			// anyone: its share is its principal's); the other is agent-b writing for liam.
			bearer := func(sub string) string {
				if !authOn {
					return ""
				}
				tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: sub, Users: []string{"*"}, Scopes: auth.AllScopes, TTL: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				return "Bearer " + tok
			}
			post := func(ctx context.Context, who, user string) reply {
				body := mustJSON(t, map[string]any{"commands": []any{
					map[string]any{"op": "add_message", "user_identifier": user, "session_id": "s1", "role": "user", "content": "hi"},
				}})
				req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/batch", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if b := bearer(who); b != "" {
					req.Header.Set("Authorization", b)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return reply{code: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
			}
			hold := context.WithValue(t.Context(), holdKey{}, true)
			var wg sync.WaitGroup
			held := make([]reply, cfg.MaxOpenBatches)
			for i := range held {
				wg.Go(func() { held[i] = post(hold, "agent-a", sara) })
			}
			for range held {
				select {
				case <-open:
				case <-time.After(10 * time.Second):
					t.Fatal("the greedy caller's batches did not open")
				}
			}
			// Its next batch is refused at once, for the same tenant and (with
			// authentication) for another; nothing of it is stored.
			before := count(t, js)
			over := []string{sara}
			if authOn {
				over = append(over, testenv.User(t, "noah"))
			}
			for _, u := range over {
				r := post(t.Context(), "agent-a", u)
				if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
					t.Fatalf("greedy caller's batch beyond its share for %s: %d (Retry-After %q), want 429 with Retry-After: %s", u, r.code, r.header.Get("Retry-After"), r.body)
				}
				if p := r.problem(t); !strings.Contains(p.Error, "at most 2") {
					t.Errorf("429 problem %q does not say the limit", p.Error)
				}
			}
			if n := count(t, js); n != before {
				t.Errorf("refused batches stored %d events", n-before)
			}
			// The other caller's batch goes through while the greedy one's are held.
			if r := post(t.Context(), "agent-b", liam); r.code != http.StatusAccepted {
				t.Fatalf("other caller's batch while the greedy one holds its share: %d %s", r.code, r.body)
			}
			close(release)
			wg.Wait()
			for i, r := range held {
				if r.code != http.StatusAccepted {
					t.Errorf("held batch %d: %d %s", i, r.code, r.body)
				}
			}
			// And the share is given back.
			if r := post(t.Context(), "agent-a", sara); r.code != http.StatusAccepted {
				t.Errorf("greedy caller's batch after its others answered: %d %s", r.code, r.body)
			}
		})
	}
}
