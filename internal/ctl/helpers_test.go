package ctl

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/stream"
)

// startProjector runs a projector of a group of its own (name-<random>) on js and d, and
// returns it with its group; it is stopped, and its checkpoints deleted, when the test ends.
func startProjector(t *testing.T, js jetstream.JetStream, d neo4j.DriverWithContext, name string) (*projection.Projector, string) {
	t.Helper()
	group := name + "-" + events.NewID()[24:]
	t.Cleanup(func() {
		_, _ = neo4j.ExecuteQuery(context.Background(), d, "MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH $g DELETE c",
			map[string]any{"g": group + "-"}, neo4j.EagerResultTransformer)
	})
	cfg := projection.DefaultConfig(app.Common{Service: "projector", MultiTenant: true, PublishTimeout: 5 * time.Second})
	cfg.Group, cfg.BatchWait = group, 5*time.Millisecond
	cfg.Keys = keys.Default(js) // memctl import seals, as the ingestor does
	p, err := projection.New(cfg, d, js, projection.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p, group
}

// commandPublisher returns a function that builds a command as the ingestor does and stores
// its event straight in the stream (no ingestor: its checks, e.g. an erased user's 410, are
// not in the way), answering the stream sequence.
func commandPublisher(t *testing.T, js jetstream.JetStream) func(ingest.Command) uint64 {
	pub := stream.NewPublisher(js, 5*time.Second)
	return func(c ingest.Command) uint64 {
		t.Helper()
		ev, _, err := ingest.Build(c, ingest.Settings{MultiTenant: true})
		if err != nil {
			t.Fatal(err)
		}
		st, err := pub.Publish(t.Context(), ev)
		if err != nil {
			t.Fatal(err)
		}
		return st.Sequence
	}
}
