package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestToolStatsAndListUsers drives get_tool_stats and list_users through the real stack with
// authentication on: two users call a tool of the same name, and each one's statistics count
// only their own calls; the global counters count both, and they and the list of users are
// the admin's (for every user) only.
func TestToolStatsAndListUsers(t *testing.T) {
	t.Parallel()
	secret := bytes.Repeat([]byte("tools-"), 8)
	secretFile := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	stack := testenv.StartStack(t, "AUTH_ENABLED=true", "AUTH_HS256_SECRET_FILE="+secretFile)
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	shared, own := "search-"+events.NewID()[24:], "rank-"+events.NewID()[24:]
	d := testenv.Neo4j(t)
	t.Cleanup(func() {
		testenv.Cleanup(t, d, sara, liam)
		if _, err := neo4j.ExecuteQuery(context.Background(), d, "UNWIND $names AS name MATCH (t:Tool {name: name}) DETACH DELETE t",
			map[string]any{"names": []string{shared, own}}, neo4j.EagerResultTransformer); err != nil {
			t.Errorf("cleanup tools: %v", err)
		}
	})
	newClient := func(name string, users []string, scopes ...auth.Scope) *client.Client {
		tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: name, Users: users, Scopes: scopes, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true), client.WithBearerToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	agent := newClient("agent", []string{sara, liam}, auth.ScopeRead, auth.ScopeWrite)
	auditor := newClient("auditor", []string{"*"}, auth.ScopeRead)
	tenantAdmin := newClient("tenant-ops", []string{"*@test.engram"}, auth.ScopeAdmin, auth.ScopeRead)
	admin := newClient("ops", []string{"*"}, auth.ScopeAdmin)
	ctx := t.Context()

	type use struct {
		tool, status string
		ms           time.Duration
	}
	var last client.Receipt
	record := func(user string, calls ...use) {
		t.Helper()
		if _, err := agent.Users.UpsertUser(ctx, user); err != nil {
			t.Fatal(err)
		}
		tr, err := agent.Reasoning.StartTrace(ctx, "s", "find consultants", client.ForUser(user))
		if err != nil {
			t.Fatal(err)
		}
		st, err := agent.Reasoning.AddStep(ctx, tr.ID, client.Thought("search"))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range calls {
			tc, err := agent.Reasoning.RecordToolCall(ctx, tr.ID, st.ID, c.tool, client.WithStatus(c.status), client.WithDuration(c.ms))
			if err != nil {
				t.Fatal(err)
			}
			last = tc.Receipt
		}
	}
	record(sara, use{shared, "success", 10 * time.Millisecond}, use{shared, "error", 30 * time.Millisecond}, use{own, "success", 4 * time.Millisecond})
	record(liam, use{shared, "success", 100 * time.Millisecond})

	// Each user's statistics (read-your-writes: the client passes the user's token).
	got, err := agent.Reasoning.GetToolStats(ctx, sara)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != shared || got[0].TotalCalls != 2 || got[0].SuccessfulCalls != 1 || got[0].FailedCalls != 1 ||
		got[0].SuccessRate != 0.5 || got[0].AvgDurationMS == nil || *got[0].AvgDurationMS != 20 || got[0].LastUsedAt == nil ||
		got[1].Name != own || got[1].TotalCalls != 1 {
		t.Errorf("sara's tool stats: %+v", got)
	}
	got, err = agent.Reasoning.GetToolStats(ctx, liam, client.ForTool(shared))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].TotalCalls != 1 || got[0].SuccessRate != 1 || *got[0].AvgDurationMS != 100 {
		t.Errorf("liam's stats of %s (sara's calls must not count): %+v", shared, got)
	}
	if got, err := agent.Reasoning.GetToolStats(ctx, liam, client.ForTool(own)); err != nil || len(got) != 0 {
		t.Errorf("liam's stats of sara's own tool: %+v, %v", got, err)
	}

	// The reads across tenants: the admin for every user only.
	for name, c := range map[string]*client.Client{"the read scope": auditor, "the admin scope for some users": tenantAdmin} {
		if _, err := c.Reasoning.GetGlobalToolStats(ctx); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("global tool stats with %s: %v, want ErrForbidden", name, err)
		}
		if _, err := c.Users.ListUsers(ctx); !errors.Is(err, client.ErrForbidden) {
			t.Errorf("list users with %s: %v, want ErrForbidden", name, err)
		}
	}
	// They take no consistency token. Sara's read above waited for her calls; wait for Liam's
	// last one, then read the counters.
	if _, err := agent.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	global, err := admin.Reasoning.GetGlobalToolStats(ctx, client.ForTool(shared))
	if err != nil {
		t.Fatal(err)
	}
	if len(global) != 1 || global[0].TotalCalls != 3 || global[0].SuccessfulCalls != 2 || global[0].FailedCalls != 1 ||
		global[0].AvgDurationMS == nil || *global[0].AvgDurationMS != 140.0/3 {
		t.Errorf("global stats of %s: %+v", shared, global)
	}

	// Both users are listed, newest created first, each once across the pages.
	var seen []string
	for pages, cursor := 0, ""; len(seen) < 2; pages++ {
		if pages == 200 {
			t.Fatalf("users not listed within %d pages: %v", pages, seen)
		}
		page, err := admin.Users.ListUsers(ctx, client.Limit(50), client.After(cursor))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page.Users {
			if u.Identifier == sara || u.Identifier == liam {
				seen = append(seen, u.Identifier)
				if u.ID != events.UserID(u.Identifier) || u.CreatedAt == nil {
					t.Errorf("listed %+v", u)
				}
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if !slices.Equal(seen, []string{liam, sara}) {
		t.Errorf("listed %v, want liam (created last) then sara", seen)
	}
}
