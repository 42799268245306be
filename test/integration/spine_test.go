// Package integration holds end-to-end tests that cross several packages against the real
// servers: embedded JetStream and the local Neo4j.
package integration

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestSpine publishes a CloudEvent to JetStream, projects it minimally into Neo4j and reads it
// back: the foundation every other feature stands on.
func TestSpine(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, js := testenv.NATS(t)
	driver := testenv.Neo4j(t)
	if err := graph.ApplySchema(ctx, driver, ""); err != nil {
		t.Fatal(err)
	}

	user := testenv.User(t, "spine")
	ev := &events.Event{
		ID: events.NewID(), Source: "/engram/test", User: user, Time: time.Now().UTC(),
		Data: events.UserUpserted{UserID: events.UserID(user), Identifier: user, Attributes: map[string]any{"role": "manager"}},
	}
	stored, err := stream.NewPublisher(js, 5*time.Second).Publish(ctx, ev)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if stored.Sequence == 0 {
		t.Fatalf("no stream sequence in %+v", stored)
	}

	cons, err := js.OrderedConsumer(ctx, stream.MemoryStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	got, err := events.Decode(msg.Subject(), msg.Headers(), msg.Data())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	data := got.Data.(events.UserUpserted)
	if _, err := neo4j.ExecuteQuery(ctx, driver,
		"MERGE (u:User {identifier: $identifier}) ON CREATE SET u.id = $id, u.created_at = $at, u.owner = $owner",
		map[string]any{"identifier": data.Identifier, "id": data.UserID, "at": got.Time, "owner": mustToken(t, user)},
		neo4j.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = neo4j.ExecuteQuery(context.Background(), driver, "MATCH (u:User {identifier: $id}) DETACH DELETE u",
			map[string]any{"id": user}, neo4j.EagerResultTransformer)
	})

	res, err := neo4j.ExecuteQuery(ctx, driver, "MATCH (u:User {identifier: $id}) RETURN u.id AS id",
		map[string]any{"id": user}, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 {
		t.Fatalf("got %d users, want 1", len(res.Records))
	}
	if id, _ := res.Records[0].Get("id"); id != events.UserID(user) {
		t.Fatalf("user id %v, want %v", id, events.UserID(user))
	}
}

func mustToken(t *testing.T, user string) string {
	t.Helper()
	tok, err := events.TenantToken(user)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
