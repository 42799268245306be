package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestAuthEnforcedByTheServer: with authentication on, the ingestor and the query service
// refuse missing or bad credentials (401), and users or scopes outside the principal's reach
// (403), publishing and reading nothing; within reach everything works and the events carry
// the principal as actor.
func TestAuthEnforcedByTheServer(t *testing.T) {
	t.Parallel()
	secret := bytes.Repeat([]byte("s3cret-"), 8)
	secretFile := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	stack := testenv.StartStack(t, "AUTH_ENABLED=true", "AUTH_HS256_SECRET_FILE="+secretFile)
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), sara, liam) })
	mint := func(name string, users []string, scopes ...auth.Scope) string {
		tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: name, Users: users, Scopes: scopes, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	saraAgent := mint("sara-agent", []string{sara}, auth.ScopeRead, auth.ScopeWrite)
	readOnly := mint("auditor", []string{"*"}, auth.ScopeRead)
	admin := mint("ops", []string{"*"}, auth.ScopeAdmin, auth.ScopeRead, auth.ScopeWrite)
	newClient := func(token string) *client.Client {
		c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true), client.WithBearerToken(token))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := t.Context()
	nc, err := nats.Connect(stack.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	storedCount := func() uint64 {
		s, err := js.Stream(ctx, stream.MemoryStream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}

	// Within reach: works, and the actor is the principal.
	c := newClient(saraAgent)
	p, err := c.LongTerm.AddPreference(ctx, "consultants", "Senior", client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	if ps, err := c.LongTerm.GetPreferencesFor(ctx, sara); err != nil || len(ps) != 1 {
		t.Fatalf("sara reads her preferences: %v, %v", ps, err)
	}
	s, _ := js.Stream(ctx, stream.MemoryStream)
	m, err := s.GetMsg(ctx, p.Receipt.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("ce-actor"); got != "sara-agent" {
		t.Errorf("actor %q, want sara-agent", got)
	}
	before := storedCount()

	// Outside reach: refused, nothing published or read.
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"write for another user", func() error {
			_, err := c.LongTerm.AddPreference(ctx, "c", "x", client.ForUser(liam))
			return err
		}, client.ErrForbidden},
		{"read another user", func() error { _, err := c.LongTerm.GetPreferencesFor(ctx, liam); return err }, client.ErrForbidden},
		{"erase without admin", func() error { _, err := c.Users.EraseUser(ctx, sara); return err }, client.ErrForbidden},
		{"write with a read-only token", func() error {
			_, err := newClient(readOnly).Users.UpsertUser(ctx, sara)
			return err
		}, client.ErrForbidden},
		{"no token", func() error { _, err := newClient("").Users.UpsertUser(ctx, sara); return err }, client.ErrUnauthenticated},
		{"no token read", func() error { _, err := newClient("").Users.GetUser(ctx, sara); return err }, client.ErrUnauthenticated},
		{"wrong signature", func() error {
			bad, _ := auth.SignHS256(bytes.Repeat([]byte("other-"), 8), auth.TokenSpec{Subject: "x", Users: []string{"*"}, Scopes: auth.AllScopes, TTL: time.Hour})
			_, err := newClient(bad).Users.UpsertUser(ctx, sara)
			return err
		}, client.ErrUnauthenticated},
		{"garbage token", func() error { _, err := newClient("not.a.jwt").Users.GetUser(ctx, sara); return err }, client.ErrUnauthenticated},
	}
	for _, tc := range cases {
		if err := tc.call(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A batch with one foreign command publishes nothing.
	body, _ := json.Marshal(map[string]any{"commands": []any{
		map[string]any{"op": "add_message", "user_identifier": sara, "session_id": "s", "role": "user", "content": "hi"},
		map[string]any{"op": "add_message", "user_identifier": liam, "session_id": "s", "role": "user", "content": "hi"},
	}})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, stack.IngestorURL+"/v1/batch", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+saraAgent)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var problem struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&problem)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(problem.Error, liam) {
		t.Errorf("batch with a foreign command: %d %q", resp.StatusCode, problem.Error)
	}
	if after := storedCount(); after != before {
		t.Fatalf("refused requests stored %d events", after-before)
	}
	// Public endpoints stay open; the admin may erase.
	for _, u := range []string{stack.IngestorURL + "/healthz", stack.QueryURL + "/v1/openapi-query.yaml", stack.IngestorURL + "/v1/openapi.yaml"} {
		r, err := http.Get(u)
		if err != nil || r.StatusCode != http.StatusOK {
			t.Errorf("%s: %v %v", u, r, err)
		}
		if r != nil {
			r.Body.Close()
		}
	}
	if _, err := newClient(admin).Users.EraseUser(context.Background(), sara); err != nil {
		t.Fatalf("admin erase: %v", err)
	}
}
