// Package testenv gives integration tests the real servers: an embedded JetStream per test
// and the shared local Neo4j that `make test` starts (NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD).
// A missing server fails the test with the fix; it never skips.
package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/natsdev"
	"github.com/engram-memory/engram/internal/stream"
)

// NATS starts an embedded JetStream server for the test, with the memory and dead-letter
// streams applied, and returns it with a connection and a JetStream handle.
func NATS(t testing.TB) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s, err := natsdev.Start(natsdev.Options{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stream.Ensure(ctx, js, 2*time.Minute); err != nil {
		t.Fatalf("apply streams: %v", err)
	}
	return s, nc, js
}

// Neo4jConfig is where the tests' Neo4j listens.
type Neo4jConfig struct{ URI, User, Password string }

// Neo4jSettings reads NEO4J_URI, NEO4J_USER and NEO4J_PASSWORD with the dev stack's defaults.
func Neo4jSettings() Neo4jConfig {
	c := Neo4jConfig{URI: "bolt://127.0.0.1:7687", User: "neo4j", Password: "engram-dev-password"}
	if v := os.Getenv("NEO4J_URI"); v != "" {
		c.URI = v
	}
	if v := os.Getenv("NEO4J_USER"); v != "" {
		c.User = v
	}
	if v := os.Getenv("NEO4J_PASSWORD"); v != "" {
		c.Password = v
	}
	return c
}

// Neo4j returns a driver for the local Neo4j, failing the test with the fix when it does not
// answer.
func Neo4j(t testing.TB) neo4j.DriverWithContext {
	t.Helper()
	c := Neo4jSettings()
	d, err := neo4j.NewDriverWithContext(c.URI, neo4j.BasicAuth(c.User, c.Password, ""))
	if err != nil {
		t.Fatalf("neo4j driver for %s: %v", c.URI, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := d.VerifyConnectivity(ctx); err != nil {
		t.Fatalf("neo4j at %s is not answering (%v): run the tests with `make test`, which starts it, or `make neo4j-start`", c.URI, err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

// User returns an identifier unique to this test run, so parallel tests never share a tenant.
func User(t testing.TB, name string) string {
	t.Helper()
	return name + "+" + events.NewID()[24:] + "@test.engram"
}
