package e2e

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestClientOverNATS writes through the client's direct, asynchronous NATS transport and
// reads the result back through the query service.
func TestClientOverNATS(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	user := testenv.User(t, "agent")
	t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), user) })
	nc, err := nats.Connect(stack.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := client.New(client.WithHTTP("", stack.QueryURL), client.WithNATS(nc, 64), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.Users.UpsertUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		if _, err := c.ShortTerm.AddMessage(ctx, "s1", "user", "message", client.ForUser(user),
			client.WithTimestamp(time.Date(2026, 5, 1, 9, 0, i, 0, time.UTC))); err != nil {
			t.Fatal(err)
		}
	}
	p, err := c.LongTerm.AddPreference(ctx, "food", "vegetarian", client.ForUser(user))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("async writes failed: %v", err)
	}
	if _, err := c.LongTerm.AddPreference(ctx, "food", "vegan"); err == nil {
		t.Fatal("write without user accepted in multi-tenant mode")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		prefs, err := c.LongTerm.GetPreferencesFor(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		page, err := c.ShortTerm.GetMessages(ctx, user, "s1", client.Limit(1000))
		if err != nil {
			t.Fatal(err)
		}
		if len(prefs) == 1 && prefs[0].ID == p.ID && len(page.Messages) == n {
			for i := 1; i < n; i++ {
				if !page.Messages[i].Timestamp.After(*page.Messages[i-1].Timestamp) {
					t.Fatalf("messages out of order at %d", i)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not projected within 30s: %d preferences, %d messages", len(prefs), len(page.Messages))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
