// Package graph owns Engram's Neo4j connection and schema: the driver's lifecycle, the
// constraints and indexes of the seed library plus Engram's own, applied at start-up.
package graph

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/config"
)

// Config says where Neo4j is.
type Config struct {
	URI      string
	User     string
	Password string
	Database string // "" is the server's default database
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.URI == "" {
		errs = append(errs, errors.New("NEO4J_URI is required"))
	}
	if c.User == "" {
		errs = append(errs, errors.New("NEO4J_USER is required"))
	}
	return errors.Join(errs...)
}

// Open creates a driver and checks that Neo4j answers within ctx.
func Open(ctx context.Context, c Config) (neo4j.DriverWithContext, error) {
	d, err := neo4j.NewDriverWithContext(c.URI, neo4j.BasicAuth(c.User, c.Password, ""), func(cfg *config.Config) {
		cfg.MaxConnectionPoolSize = 64
		cfg.ConnectionAcquisitionTimeout = 30 * time.Second
	})
	if err != nil {
		return nil, fmt.Errorf("neo4j driver for %s: %w", c.URI, err)
	}
	if err := d.VerifyConnectivity(ctx); err != nil {
		_ = d.Close(context.Background())
		return nil, fmt.Errorf("neo4j at %s is not reachable: %w", c.URI, err)
	}
	return d, nil
}

// OwnedLabels are the labels whose nodes carry an owner (docs/graph.md): every node a user
// owns has one of them, Tool is the one global label.
var OwnedLabels = []string{
	"User", "Conversation", "Message", "Preference", "Entity", "ReasoningTrace", "ReasoningStep", "ToolCall",
}

// Schema is every constraint and index Engram needs, all IF NOT EXISTS so applying them is
// idempotent. The first block is the seed library's (GRAPH-SCHEMA.md); the second is Engram's:
// ownership (owner on every owned node, for isolation and erasure), validity bounds for as_of
// reads, transaction time, and the projector's checkpoints.
var Schema = []string{
	// The library's.
	"CREATE CONSTRAINT user_identifier IF NOT EXISTS FOR (n:User) REQUIRE n.identifier IS UNIQUE",
	"CREATE CONSTRAINT conversation_id IF NOT EXISTS FOR (n:Conversation) REQUIRE n.id IS UNIQUE",
	"CREATE CONSTRAINT message_id IF NOT EXISTS FOR (n:Message) REQUIRE n.id IS UNIQUE",
	"CREATE CONSTRAINT entity_id IF NOT EXISTS FOR (n:Entity) REQUIRE n.id IS UNIQUE",
	"CREATE CONSTRAINT preference_id IF NOT EXISTS FOR (n:Preference) REQUIRE n.id IS UNIQUE",
	"CREATE CONSTRAINT reasoning_trace_id IF NOT EXISTS FOR (n:ReasoningTrace) REQUIRE n.id IS UNIQUE",
	"CREATE CONSTRAINT reasoning_step_id IF NOT EXISTS FOR (n:ReasoningStep) REQUIRE n.id IS UNIQUE",
	"CREATE CONSTRAINT tool_call_id IF NOT EXISTS FOR (n:ToolCall) REQUIRE n.id IS UNIQUE",
	"CREATE CONSTRAINT tool_name IF NOT EXISTS FOR (n:Tool) REQUIRE n.name IS UNIQUE",
	"CREATE INDEX conversation_session_id IF NOT EXISTS FOR (n:Conversation) ON (n.session_id)",
	"CREATE INDEX message_timestamp IF NOT EXISTS FOR (n:Message) ON (n.timestamp)",
	"CREATE INDEX entity_name IF NOT EXISTS FOR (n:Entity) ON (n.name)",
	"CREATE INDEX entity_type IF NOT EXISTS FOR (n:Entity) ON (n.type)",
	"CREATE INDEX preference_category IF NOT EXISTS FOR (n:Preference) ON (n.category)",
	"CREATE INDEX reasoning_trace_session_id IF NOT EXISTS FOR (n:ReasoningTrace) ON (n.session_id)",
	// Engram's.
	"CREATE CONSTRAINT user_id IF NOT EXISTS FOR (n:User) REQUIRE n.id IS UNIQUE",
	"CREATE INDEX user_owner IF NOT EXISTS FOR (n:User) ON (n.owner)",
	"CREATE INDEX conversation_owner IF NOT EXISTS FOR (n:Conversation) ON (n.owner)",
	"CREATE INDEX message_owner IF NOT EXISTS FOR (n:Message) ON (n.owner)",
	"CREATE INDEX preference_owner IF NOT EXISTS FOR (n:Preference) ON (n.owner)",
	"CREATE INDEX entity_owner IF NOT EXISTS FOR (n:Entity) ON (n.owner)",
	"CREATE INDEX reasoning_trace_owner IF NOT EXISTS FOR (n:ReasoningTrace) ON (n.owner)",
	"CREATE INDEX reasoning_step_owner IF NOT EXISTS FOR (n:ReasoningStep) ON (n.owner)",
	"CREATE INDEX tool_call_owner IF NOT EXISTS FOR (n:ToolCall) ON (n.owner)",
	"CREATE INDEX conversation_user_identifier IF NOT EXISTS FOR (n:Conversation) ON (n.user_identifier)",
	"CREATE INDEX reasoning_trace_user_identifier IF NOT EXISTS FOR (n:ReasoningTrace) ON (n.user_identifier)",
	"CREATE INDEX preference_valid_from IF NOT EXISTS FOR (n:Preference) ON (n.valid_from)",
	"CREATE INDEX preference_valid_until IF NOT EXISTS FOR (n:Preference) ON (n.valid_until)",
	"CREATE INDEX preference_recorded_at IF NOT EXISTS FOR (n:Preference) ON (n.recorded_at)",
	"CREATE CONSTRAINT checkpoint_name IF NOT EXISTS FOR (n:EngramCheckpoint) REQUIRE n.name IS UNIQUE",
}

// ApplySchema creates every constraint and index in Schema and waits until the indexes are
// online, so the first reads are index-backed.
func ApplySchema(ctx context.Context, d neo4j.DriverWithContext, database string) error {
	for _, stmt := range Schema {
		if _, err := neo4j.ExecuteQuery(ctx, d, stmt, nil, neo4j.EagerResultTransformer,
			neo4j.ExecuteQueryWithDatabase(database)); err != nil {
			return fmt.Errorf("apply schema %q: %w", stmt, err)
		}
	}
	if _, err := neo4j.ExecuteQuery(ctx, d, "CALL db.awaitIndexes(300)", nil, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(database)); err != nil {
		return fmt.Errorf("await indexes: %w", err)
	}
	return nil
}
