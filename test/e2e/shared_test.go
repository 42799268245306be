package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestSharedTenantReadable: with multi-tenant mode off, writes without a user — through the
// ingestor, and straight on the stream — belong to the shared tenant, are projected, and read
// back under /v1/shared (the client's identifier ""): preferences, history, conversations,
// messages, traces, a trace, and the fate of a write. A user's reads (even of a user named
// "_shared") never see them, nor the shared reads the user's.
//
// The shared tenant is one for the whole Neo4j, so the test looks for its own nodes (unique
// session, category, tool) and deletes only those at the end.
func TestSharedTenantReadable(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t, "MULTI_TENANT=false")
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tag := events.NewID()[24:]
	session, category, tool := "shared-"+tag, "shared-"+tag, "shared-tool-"+tag
	named := "_shared" // a real user of that name is not the shared tenant
	d := testenv.Neo4j(t)
	var ids []string
	t.Cleanup(func() { deleteShared(t, d, ids, tool) })
	t.Cleanup(func() { testenv.Cleanup(t, d, named) })

	m1, err := c.ShortTerm.AddMessage(ctx, session, "user", "first in the shared tenant")
	if err != nil {
		t.Fatalf("message without a user: %v", err)
	}
	m2, err := c.ShortTerm.AddMessage(ctx, session, "assistant", "second")
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.LongTerm.AddPreference(ctx, category, "senior consultants")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := c.Reasoning.StartTrace(ctx, session, "find a consultant")
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Reasoning.AddStep(ctx, tr.ID, client.Thought("search"))
	if err != nil {
		t.Fatal(err)
	}
	tc, err := c.Reasoning.RecordToolCall(ctx, tr.ID, st.ID, tool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reasoning.CompleteTrace(ctx, tr.ID, client.WithSuccess(true)); err != nil {
		t.Fatal(err)
	}
	if m1.Receipt.User != "" {
		t.Fatalf("receipt of a shared write names user %q", m1.Receipt.User)
	}
	// And an agent's event without a user, straight on the stream.
	nc, err := nats.Connect(stack.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	direct := events.NewID()
	ack, err := stream.NewPublisher(js, 5*time.Second).Publish(ctx, &events.Event{ID: events.NewID(), Source: "/test/agent",
		Time: time.Now().UTC(), Data: events.PreferenceAdded{PreferenceID: direct, Category: category, Preference: "published on the stream"}})
	if err != nil {
		t.Fatalf("publish without a user: %v", err)
	}
	ids = append(ids, m1.ID, m2.ID, m1.ConversationID, p.ID, direct, tr.ID, st.ID, tc.ID)

	// Read back: the client waits for its own writes (tokens of the shared tenant), and for
	// the stream's with AtLeast.
	prefs, err := c.LongTerm.GetPreferencesFor(ctx, "", client.AtLeast(ack.Sequence))
	if err != nil {
		t.Fatalf("shared preferences: %v", err)
	}
	if got := prefIDs(prefs, category); !slices.Equal(got, []string{p.ID, direct}) {
		t.Fatalf("shared preferences of %s: %v, want %s and %s", category, got, p.ID, direct)
	}
	hist, err := c.LongTerm.PreferenceHistory(ctx, "")
	if err != nil || !slices.Equal(prefIDs(hist, category), []string{p.ID, direct}) {
		t.Fatalf("shared preference history: %v, %v", prefIDs(hist, category), err)
	}
	convs, err := c.ShortTerm.GetConversations(ctx, "", client.Limit(1000))
	if err != nil || !slices.ContainsFunc(convs, func(cv client.Conversation) bool { return cv.SessionID == session }) {
		t.Fatalf("shared conversations: %v, %v", convs, err)
	}
	page, err := c.ShortTerm.GetMessages(ctx, "", session)
	if err != nil || len(page.Messages) != 2 || page.Messages[0].ID != m1.ID || page.Messages[1].ID != m2.ID {
		t.Fatalf("shared messages: %+v, %v", page, err)
	}
	traces, err := c.Reasoning.ListTraces(ctx, "", client.InSession(session))
	if err != nil || len(traces) != 1 || traces[0].ID != tr.ID || traces[0].StepCount != 1 {
		t.Fatalf("shared traces: %+v, %v", traces, err)
	}
	got, err := c.Reasoning.GetTrace(ctx, "", tr.ID)
	if err != nil || len(got.Steps) != 1 || len(got.Steps[0].ToolCalls) != 1 || got.Steps[0].ToolCalls[0].ID != tc.ID ||
		got.Success == nil || !*got.Success {
		t.Fatalf("shared trace: %+v, %v", got, err)
	}
	if f, err := c.WaitApplied(ctx, p.Receipt); err != nil || f.Status != client.FateApplied || f.Sequence != p.Receipt.Sequence {
		t.Fatalf("fate of a shared write: %+v, %v", f, err)
	}
	if f, err := c.Fate(ctx, client.Receipt{EventID: p.Receipt.EventID}); err != nil || f.Sequence != p.Receipt.Sequence {
		t.Fatalf("fate of a shared write found by its id: %+v, %v", f, err)
	}

	// Isolation both ways: the user "_shared" sees none of it, the shared reads none of theirs.
	up, err := c.LongTerm.AddPreference(ctx, category, "the user _shared's own", client.ForUser(named))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := c.LongTerm.GetPreferencesFor(ctx, named)
	if err != nil || !slices.Equal(prefIDs(theirs, category), []string{up.ID}) {
		t.Fatalf("preferences of the user %q: %v, %v", named, prefIDs(theirs, category), err)
	}
	if _, err := c.Reasoning.GetTrace(ctx, named, tr.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the shared trace read as the user %q's: %v", named, err)
	}
	if _, err := c.Fate(ctx, client.Receipt{EventID: p.Receipt.EventID, User: named, Sequence: p.Receipt.Sequence}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("fate of a shared write asked as the user %q's: %v", named, err)
	}
	prefs, err = c.LongTerm.GetPreferencesFor(ctx, "", client.AtLeast(up.Receipt.Sequence))
	if err != nil || !slices.Equal(prefIDs(prefs, category), []string{p.ID, direct}) {
		t.Fatalf("shared preferences after the user's write: %v, %v", prefIDs(prefs, category), err)
	}
	resp, err := http.Get(stack.QueryURL + "/v1/shared/traces/" + events.NewID())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "of the shared tenant not found") {
		t.Fatalf("unknown shared trace: %d %s", resp.StatusCode, body)
	}
}

// prefIDs lists the ids of the preferences of category, in the order read.
func prefIDs(ps []client.Preference, category string) []string {
	var out []string
	for _, p := range ps {
		if p.Category == category {
			out = append(out, p.ID)
		}
	}
	return out
}

// deleteShared deletes the shared tenant's nodes the test wrote (and its own Tool node),
// never another test's.
func deleteShared(t *testing.T, d neo4j.DriverWithContext, ids []string, tool string) {
	t.Helper()
	for _, label := range graph.OwnedLabels {
		if _, err := neo4j.ExecuteQuery(context.Background(), d,
			"UNWIND $ids AS id MATCH (n:"+label+" {id: id}) WHERE n.owner = $owner DETACH DELETE n",
			map[string]any{"owner": events.SharedTenantToken, "ids": ids}, neo4j.EagerResultTransformer); err != nil {
			t.Errorf("delete the shared tenant's test nodes: %v", err)
		}
	}
	if _, err := neo4j.ExecuteQuery(context.Background(), d, "MATCH (tl:Tool {name: $tool}) DETACH DELETE tl",
		map[string]any{"tool": tool}, neo4j.EagerResultTransformer); err != nil {
		t.Errorf("delete the test's tool: %v", err)
	}
}
