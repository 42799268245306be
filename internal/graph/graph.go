// Package graph owns Engram's Neo4j connection and schema: the driver's lifecycle, the
// constraints and indexes of the seed library plus Engram's own, applied at start-up.
package graph

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
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

// Driver timeouts. A call's context deadline wins over both when it is earlier (the
// driver takes the earliest), so a service bounds every call with its own timeout; these only
// bound callers that pass no deadline.
const (
	// connectTimeout bounds one TCP connect: a blackholed host fails in seconds, not minutes.
	connectTimeout = 5 * time.Second
	// acquireTimeout bounds the wait for a pooled connection.
	acquireTimeout = 30 * time.Second
)

// NewDriver creates a driver for c without connecting: the driver connects on first use, so
// a service can hold one while Neo4j is still down and report that instead of failing.
func NewDriver(c Config) (neo4j.DriverWithContext, error) {
	d, err := neo4j.NewDriverWithContext(c.URI, neo4j.BasicAuth(c.User, c.Password, ""), func(cfg *config.Config) {
		cfg.MaxConnectionPoolSize = 64
		cfg.ConnectionAcquisitionTimeout = acquireTimeout
		cfg.SocketConnectTimeout = connectTimeout
	})
	if err != nil {
		return nil, fmt.Errorf("neo4j driver for %s: %w", c.URI, err)
	}
	return d, nil
}

// Open creates a driver and checks that Neo4j answers within ctx.
func Open(ctx context.Context, c Config) (neo4j.DriverWithContext, error) {
	d, err := NewDriver(c)
	if err != nil {
		return nil, err
	}
	if err := d.VerifyConnectivity(ctx); err != nil {
		_ = d.Close(context.Background())
		return nil, fmt.Errorf("neo4j at %s is not reachable: %w", c.URI, err)
	}
	return d, nil
}

// IsUnavailable reports whether err means that Neo4j did not answer: no connection could be
// made or kept (the driver's ConnectivityError, also inside the TransactionExecutionLimit its
// retries end with), or the database refused service for now. The driver's own
// IsConnectivityError looks neither through wrapping nor into that limit error; this does.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var conn *neo4j.ConnectivityError
	if errors.As(err, &conn) {
		// The driver reports a deadline that ended while it waited for a connection as a
		// ConnectivityError too (without Unwrap): that is the caller's time running out on a
		// busy server, not Neo4j being down.
		inner := conn.Inner
		return inner == nil || (!errors.Is(inner, context.DeadlineExceeded) && !errors.Is(inner, context.Canceled))
	}
	var limit *neo4j.TransactionExecutionLimit
	if errors.As(err, &limit) {
		for _, e := range limit.Errors {
			if IsUnavailable(e) {
				return true
			}
		}
		return false
	}
	var dbErr *neo4j.Neo4jError
	if errors.As(err, &dbErr) {
		return dbErr.Code == "Neo.TransientError.General.DatabaseUnavailable" ||
			dbErr.Code == "Neo.ClientError.Database.DatabaseUnavailable"
	}
	// Not net.Error: context.DeadlineExceeded is one, and a deadline alone says nothing about
	// Neo4j.
	var opErr *net.OpError
	return errors.As(err, &opErr)
}

// OwnedLabels are the labels whose nodes carry an owner (docs/graph.md): every node a user
// owns has one of them, Tool is the one global label.
var OwnedLabels = []string{
	"User", "Conversation", "Message", "Preference", "Entity", "Fact", "ReasoningTrace", "ReasoningStep", "ToolCall",
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
	// Facts (not the library's: it keeps them global, without an owner or a constraint).
	"CREATE CONSTRAINT fact_id IF NOT EXISTS FOR (n:Fact) REQUIRE n.id IS UNIQUE",
	"CREATE INDEX fact_owner IF NOT EXISTS FOR (n:Fact) ON (n.owner)",
	"CREATE CONSTRAINT checkpoint_name IF NOT EXISTS FOR (n:EngramCheckpoint) REQUIRE n.name IS UNIQUE",
	// The admin's reads across tenants (internal/query admin.go): users newest created first,
	// tools most called first, each read in index order and stopped at its page.
	"CREATE INDEX user_created_at IF NOT EXISTS FOR (n:User) ON (n.created_at)",
	"CREATE INDEX tool_total_calls IF NOT EXISTS FOR (n:Tool) ON (n.total_calls)",
	// Full-text search per user (internal/query search.go). Each index is global, so each
	// also holds owner: a search puts the user's owner in its Lucene query and reads only
	// that owner's matches, instead of every tenant's matches filtered afterwards. They are
	// eventually consistent (fullTextOptions).
	"CREATE FULLTEXT INDEX message_search IF NOT EXISTS FOR (n:Message) ON EACH [n.content, n.owner]" + fullTextOptions,
	"CREATE FULLTEXT INDEX preference_search IF NOT EXISTS FOR (n:Preference) ON EACH [n.preference, n.context, n.owner]" + fullTextOptions,
	"CREATE FULLTEXT INDEX entity_search IF NOT EXISTS FOR (n:Entity) ON EACH [n.name, n.description, n.owner]" + fullTextOptions,
	"CREATE FULLTEXT INDEX reasoning_step_search IF NOT EXISTS FOR (n:ReasoningStep) ON EACH [n.thought, n.action, n.observation, n.owner]" + fullTextOptions,
}

// fullTextOptions makes a full-text index eventually consistent: a transaction's updates to
// it are applied by a background job after the commit instead of inside it. A synchronous
// full-text index refreshes its Lucene searcher in every commit that touches it, which cost
// the projector's transactions most of their time (issue 11: a commit of a dozen events took
// 10.5 ms at p50 with the four indexes synchronous, 2.3 ms with them eventually consistent,
// on the 2-core machine under the freshness scenario; docs/projector.md). Searches keep
// read-your-writes: each waits for the indexes to catch up with every transaction committed
// before it (AwaitFullText), so a search behind a consistency token sees the write.
const fullTextOptions = " OPTIONS {indexConfig: {`fulltext.eventually_consistent`: true}}"

// AwaitFullText is the clause a search starts with: it waits until the eventually consistent
// full-text indexes hold the updates of every transaction committed before it.
const AwaitFullText = "CALL db.index.fulltext.awaitEventuallyConsistentIndexRefresh()"

// schemaRuleExists are the codes Neo4j answers a CREATE … IF NOT EXISTS with when another
// session created the same rule between this statement's check and its commit: on a fresh
// database every service applies the schema at once, and all but one lose that race.
// The rule exists, which is what the statement asked for; verifySchema checks it by name.
var schemaRuleExists = map[string]bool{
	"Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists": true,
	"Neo.ClientError.Schema.IndexAlreadyExists":                true,
	"Neo.ClientError.Schema.ConstraintAlreadyExists":           true,
	"Neo.ClientError.Schema.IndexWithNameAlreadyExists":        true,
	"Neo.ClientError.Schema.ConstraintWithNameAlreadyExists":   true,
}

// ruleName finds the name of the constraint or index (range or full-text) a Schema
// statement creates.
var ruleName = regexp.MustCompile(`^CREATE (CONSTRAINT|INDEX|FULLTEXT INDEX) (\w+) IF NOT EXISTS `)

// ApplySchema creates every constraint and index in Schema, checks that each exists by name,
// and waits until the indexes are online, so the first reads are index-backed. It is
// idempotent and safe to run from several processes at once: a rule another process created
// concurrently counts as created. Transient errors are retried by the driver; an error
// returned here (Neo4j unreachable, for one) leaves nothing half-done that a later call would
// not finish.
func ApplySchema(ctx context.Context, d neo4j.DriverWithContext, database string) error {
	if err := dropSynchronousFullText(ctx, d, database); err != nil {
		return err
	}
	for _, stmt := range Schema {
		if _, err := neo4j.ExecuteQuery(ctx, d, stmt, nil, neo4j.EagerResultTransformer,
			neo4j.ExecuteQueryWithDatabase(database)); err != nil && !isRuleExists(err) {
			return fmt.Errorf("apply schema %q: %w", stmt, err)
		}
	}
	if err := verifySchema(ctx, d, database); err != nil {
		return err
	}
	if _, err := neo4j.ExecuteQuery(ctx, d, "CALL db.awaitIndexes(300)", nil, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(database)); err != nil {
		return fmt.Errorf("await indexes: %w", err)
	}
	return nil
}

// dropSynchronousFullText drops those of Schema's full-text indexes that a version before
// fullTextOptions created synchronous, for ApplySchema to create them again as they are now
// (CREATE … IF NOT EXISTS keeps an index of the same name whatever its options). Until the
// new index is populated (ApplySchema waits for it), searches find less or fail; it happens
// once per database. Appliers running at once may each drop and create: the last create
// stands, and every one of them creates the index as Schema says.
func dropSynchronousFullText(ctx context.Context, d neo4j.DriverWithContext, database string) error {
	var names []any
	for _, stmt := range Schema {
		if m := ruleName.FindStringSubmatch(stmt); m != nil && m[1] == "FULLTEXT INDEX" {
			names = append(names, m[2])
		}
	}
	res, err := neo4j.ExecuteQuery(ctx, d, `SHOW FULLTEXT INDEXES YIELD name, options
WHERE name IN $names AND coalesce(options.indexConfig['fulltext.eventually_consistent'], false) <> true
RETURN name`, map[string]any{"names": names}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(database))
	if err != nil {
		return fmt.Errorf("check full-text indexes: %w", err)
	}
	for _, rec := range res.Records {
		name, _ := rec.Values[0].(string)
		if _, err := neo4j.ExecuteQuery(ctx, d, "DROP INDEX "+name+" IF EXISTS", nil, neo4j.EagerResultTransformer,
			neo4j.ExecuteQueryWithDatabase(database)); err != nil {
			return fmt.Errorf("drop synchronous full-text index %s: %w", name, err)
		}
	}
	return nil
}

func isRuleExists(err error) bool {
	var dbErr *neo4j.Neo4jError
	return errors.As(err, &dbErr) && schemaRuleExists[dbErr.Code]
}

// verifySchema checks that every constraint and index of Schema exists, so that a create
// answered "already exists" is not taken for success when the rule is in fact missing.
func verifySchema(ctx context.Context, d neo4j.DriverWithContext, database string) error {
	have := map[string]bool{}
	for _, show := range []string{"SHOW CONSTRAINTS YIELD name", "SHOW INDEXES YIELD name"} {
		res, err := neo4j.ExecuteQuery(ctx, d, show, nil, neo4j.EagerResultTransformer,
			neo4j.ExecuteQueryWithDatabase(database))
		if err != nil {
			return fmt.Errorf("check schema: %w", err)
		}
		for _, rec := range res.Records {
			if name, ok := rec.Values[0].(string); ok {
				have[name] = true
			}
		}
	}
	var missing []error
	for _, stmt := range Schema {
		if m := ruleName.FindStringSubmatch(stmt); m != nil && !have[m[2]] {
			missing = append(missing, fmt.Errorf("%s %s is missing after %q", m[1], m[2], stmt))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	return nil
}

// SchemaNames are the names of the constraints and indexes of Schema.
func SchemaNames() []string {
	names := make([]string, 0, len(Schema))
	for _, stmt := range Schema {
		if m := ruleName.FindStringSubmatch(stmt); m != nil {
			names = append(names, m[2])
		}
	}
	return names
}
