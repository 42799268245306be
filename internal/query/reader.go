package query

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
)

// DefaultCheckpointGroup is the name prefix of the projector's checkpoints: partition p's
// checkpoint is "projector-p<p>", like its durable consumer.
const DefaultCheckpointGroup = "projector"

var groupPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Reader runs Engram's reads against the projected graph. Every read is scoped to one user:
// it starts at (:User {identifier}) (a unique-constraint seek) and only follows edges from
// there (or seeks the owner index with the user's own owner, or, to search, calls a full-text
// index with the user's owner in its query: search.go), also checking each node's owner, so
// no parameter can reach another user's data. The exceptions, GlobalToolStats and
// ListUsers, read across tenants and are served to admins only (admin.go).
type Reader struct {
	driver     neo4j.DriverWithContext
	database   string
	group      string
	partitions int
	maxLimit   int
	log        PartitionLog
	progress   *Progress
	events     EventLog
}

// Option configures a Reader.
type Option func(*Reader) error

// WithCheckpointGroup sets the projector's checkpoint group (default "projector").
func WithCheckpointGroup(group string) Option {
	return func(r *Reader) error {
		if !groupPattern.MatchString(group) {
			return fmt.Errorf("checkpoint group %q: want 1-64 letters, digits, '-' or '_'", group)
		}
		r.group = group
		return nil
	}
}

// WithMaxLimit sets the largest page a list read returns (default DefaultMaxLimit).
func WithMaxLimit(n int) Option {
	return func(r *Reader) error {
		if n < 1 {
			return fmt.Errorf("max limit %d: must be at least 1", n)
		}
		r.maxLimit = n
		return nil
	}
}

// WithPartitionLog lets WaitFor finish early for a token of another partition's write: when the
// user's partition holds no unapplied event at or below the token, the read is covered even
// though that partition's checkpoint is below it (see PartitionLog).
func WithPartitionLog(l PartitionLog) Option {
	return func(r *Reader) error {
		if l == nil {
			return errors.New("partition log is nil")
		}
		r.log = l
		return nil
	}
}

// WithProgress wakes WaitFor at the projector's progress notifications of the reader's
// checkpoint group instead of only at its polls (see Progress).
func WithProgress(p *Progress) Option {
	return func(r *Reader) error {
		if p == nil {
			return errors.New("progress is nil")
		}
		r.progress = p
		return nil
	}
}

// NewReader returns a Reader over driver that reads database ("" is the server's default).
func NewReader(driver neo4j.DriverWithContext, database string, opts ...Option) (*Reader, error) {
	if driver == nil {
		return nil, errors.New("query: neo4j driver is nil")
	}
	r := &Reader{driver: driver, database: database, group: DefaultCheckpointGroup, partitions: natsdeploy.Partitions, maxLimit: DefaultMaxLimit}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
	}
	return r, nil
}

// tenant validates an identifier and returns its tenant token, the owner of its nodes; ""
// is the shared tenant (shared.go).
func tenant(identifier string) (string, error) {
	if identifier == "" {
		return events.SharedTenantToken, nil
	}
	if err := events.ValidateIdentifier(identifier); err != nil {
		return "", &ArgumentError{Field: "identifier", Reason: err.Error()}
	}
	tok, err := events.TenantToken(identifier)
	if err != nil {
		return "", &ArgumentError{Field: "identifier", Reason: err.Error()}
	}
	return tok, nil
}

// readOptions keeps a read's first plan however the graph's statistics move (as the
// projection's statements, internal/projection planOnce): every read starts at the user's
// unique identifier (a USING INDEX SEEK hint) and expands from there, comparing what it reaches
// with u.owner, so its plan does not depend on the statistics, and a replan (Neo4j's default
// once the statistics it planned with diverge, at most every 10 s) would only make the
// reads that wait for it slow. TestReadsAreIndexBacked checks the plans.
const readOptions = "CYPHER replan=skip\n"

// read runs one read query and returns the values of its single column, one per record.
//
// The query runs in an auto-commit transaction: RUN and PULL sent at once, one round trip,
// where a managed transaction (neo4j.ExecuteQuery) adds a COMMIT's. Read-your-writes holds
// as for any transaction begun after the projector's commit returned; the full-text searches
// first wait for the eventually consistent indexes (graph.AwaitFullText). (An earlier try of
// auto-commit reads, with the indexes still synchronous, saw test/e2e's searches miss
// just-projected nodes; with every search waiting for the indexes it does not.) Failures are
// not retried here: a waiting read polls again, a plain read answers 503.
func (r *Reader) read(ctx context.Context, op, cypher string, params map[string]any) ([]map[string]any, error) {
	recs, err := r.run(ctx, readOptions+cypher, params)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			// The caller's time ran out in the middle of the exchange, which the driver words
			// as a connectivity error ("Timeout while reading from connection"): not Neo4j
			// being down. The callers decide what it means (WaitFor: 504 once the checkpoint
			// was read; the handler: 503 when its read timeout ended it).
			return nil, fmt.Errorf("query %s: %w: %w", op, cerr, err)
		}
		if graph.IsUnavailable(err) {
			return nil, fmt.Errorf("query %s: %w: %w", op, ErrUnavailable, err)
		}
		return nil, fmt.Errorf("query %s: %w", op, err)
	}
	out := make([]map[string]any, 0, len(recs))
	for _, rec := range recs {
		if len(rec.Values) == 0 {
			continue
		}
		m, ok := rec.Values[0].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("query %s: record is %T, want a map", op, rec.Values[0])
		}
		out = append(out, m)
	}
	return out, nil
}

// run runs cypher in an auto-commit read transaction and returns its records.
func (r *Reader) run(ctx context.Context, cypher string, params map[string]any) ([]*neo4j.Record, error) {
	sess := r.driver.NewSession(ctx, neo4j.SessionConfig{DatabaseName: r.database, AccessMode: neo4j.AccessModeRead})
	defer func() { _ = sess.Close(context.WithoutCancel(ctx)) }()
	res, err := sess.Run(ctx, cypher, params)
	if err != nil {
		return nil, err
	}
	return res.Collect(ctx)
}
