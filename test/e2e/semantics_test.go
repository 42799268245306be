package e2e

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestLibraryWriteSemantics runs, through the stack, the writes where Engram follows the
// library's semantics (docs/compatibility.md): upsert_user(attributes={}) keeps the stored
// attributes, an explicit clear empties them, and a message with no text is stored and read
// back.
func TestLibraryWriteSemantics(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	user := testenv.User(t, "semantics")
	t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), user) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	attrs := func(step string) map[string]any {
		t.Helper()
		u, err := c.Users.GetUser(ctx, user)
		if err != nil {
			t.Fatalf("%s: get user: %v", step, err)
		}
		var m map[string]any
		if err := json.Unmarshal(u.Attributes, &m); err != nil {
			t.Fatalf("%s: attributes %s: %v", step, u.Attributes, err)
		}
		return m
	}
	upsert := func(opts ...client.WriteOption) {
		t.Helper()
		if _, err := c.Users.UpsertUser(ctx, user, opts...); err != nil {
			t.Fatal(err)
		}
	}

	upsert(client.WithAttributes(map[string]any{"role": "manager"}))
	if got, want := attrs("set"), map[string]any{"role": "manager"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after setting: attributes %v, want %v", got, want)
	}
	upsert(client.WithAttributes(map[string]any{}))
	if got, want := attrs("empty"), map[string]any{"role": "manager"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after attributes={}: %v, want the stored %v (the library keeps them)", got, want)
	}
	upsert()
	if got, want := attrs("none"), map[string]any{"role": "manager"}; !reflect.DeepEqual(got, want) {
		t.Errorf("after an upsert without attributes: %v, want %v", got, want)
	}
	upsert(client.WithClearedAttributes())
	if got := attrs("cleared"); len(got) != 0 {
		t.Errorf("after clearing: attributes %v, want none", got)
	}

	// An assistant turn that is only a tool call: no text.
	if _, err := c.ShortTerm.AddMessage(ctx, "s1", "user", "Run the report", client.ForUser(user)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShortTerm.AddMessage(ctx, "s1", "assistant", "", client.ForUser(user)); err != nil {
		t.Fatalf("empty content: %v", err)
	}
	page, err := c.ShortTerm.GetMessages(ctx, user, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 2 || page.Messages[1].Role != "assistant" || page.Messages[1].Content != "" ||
		page.Messages[0].Content != "Run the report" {
		t.Errorf("messages %+v, want the user's then the empty assistant turn", page.Messages)
	}
}
