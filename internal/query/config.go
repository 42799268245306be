package query

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/embed"
)

// DefaultConsistencyWait is how long a read waits for its consistency token by default.
const DefaultConsistencyWait = 5 * time.Second

// DefaultReadTimeout is how long a read waits for Neo4j by default before it answers 503.
const DefaultReadTimeout = 5 * time.Second

// maxReadTimeout bounds the configurable read timeout, for the same reason as the wait.
const maxReadTimeout = time.Minute

// maxConsistencyWait bounds the configurable wait: a read holding a connection longer than
// this is better answered 504 and retried.
const maxConsistencyWait = time.Minute

// Config is the query service's configuration.
type Config struct {
	Common app.Common
	// ConsistencyWait is the longest a read waits for its consistency token before it answers
	// 504 (CONSISTENCY_WAIT, default 5s).
	ConsistencyWait time.Duration
	// ReadTimeout is the longest a read waits for Neo4j (after any consistency wait) before
	// it answers 503 with Retry-After (READ_TIMEOUT, default 5s). A read therefore answers
	// within ConsistencyWait + ReadTimeout, Neo4j down or not.
	ReadTimeout time.Duration
	// CheckpointGroup is the projector's checkpoint name prefix: partition p's checkpoint is
	// "<group>-p<p>" (PROJECTOR_GROUP, the projector's own setting; default "projector").
	CheckpointGroup string
	// MaxLimit is the largest page a list read returns (MAX_LIMIT, default 1000).
	MaxLimit int
	// Embedder is EMBEDDER (embed.Parse): the embedder of a search's q with mode=vector and of
	// the trace search; it must be the ingestors' (their vectors are what it is compared to).
	Embedder string
	// Auth configures authentication (AUTH_*, docs/security.md); off in the dev stack.
	Auth auth.Config
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate(), c.Auth.Validate()}
	if _, err := embed.Parse(c.Embedder); err != nil {
		errs = append(errs, err)
	}
	if c.ConsistencyWait <= 0 || c.ConsistencyWait > maxConsistencyWait {
		errs = append(errs, fmt.Errorf("CONSISTENCY_WAIT %s: want more than 0 and at most %s", c.ConsistencyWait, maxConsistencyWait))
	}
	if c.ReadTimeout <= 0 || c.ReadTimeout > maxReadTimeout {
		errs = append(errs, fmt.Errorf("READ_TIMEOUT %s: want more than 0 and at most %s", c.ReadTimeout, maxReadTimeout))
	}
	if w := c.Common.HTTP.WriteTimeout; w > 0 && w <= c.ConsistencyWait+c.ReadTimeout {
		errs = append(errs, fmt.Errorf("HTTP_WRITE_TIMEOUT %s: must exceed CONSISTENCY_WAIT + READ_TIMEOUT (%s), the longest read", w, c.ConsistencyWait+c.ReadTimeout))
	}
	if !groupPattern.MatchString(c.CheckpointGroup) {
		errs = append(errs, fmt.Errorf("PROJECTOR_GROUP %q: want 1-64 letters, digits, '-' or '_'", c.CheckpointGroup))
	}
	if c.MaxLimit < 1 || c.MaxLimit > 10000 {
		errs = append(errs, fmt.Errorf("MAX_LIMIT %d: want 1 to 10000", c.MaxLimit))
	}
	return errors.Join(errs...)
}

// LoadConfig reads the configuration from args and the environment (getenv) and validates it.
// -h returns flag.ErrHelp after printing the settings.
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("query", flag.ContinueOnError)
	f := app.NewFlags(fs, getenv)
	app.BindCommon(f, &c.Common, "query", "127.0.0.1:8081")
	auth.Bind(f, &c.Auth)
	f.Duration(&c.ConsistencyWait, "consistency-wait", "CONSISTENCY_WAIT", DefaultConsistencyWait,
		"longest wait of a read for its consistency token before it answers 504")
	f.Duration(&c.ReadTimeout, "read-timeout", "READ_TIMEOUT", DefaultReadTimeout,
		"longest a read waits for Neo4j before it answers 503")
	f.String(&c.CheckpointGroup, "projector-group", "PROJECTOR_GROUP", DefaultCheckpointGroup,
		"the projector's checkpoint name prefix (<group>-p<partition>)")
	f.Int(&c.MaxLimit, "max-limit", "MAX_LIMIT", DefaultMaxLimit, "largest page a list read returns")
	f.String(&c.Embedder, "embedder", "EMBEDDER", "none", "embedder of vector searches by text: none, hash or hash:<dimensions> (the ingestors' own)")
	if err := f.Parse(args); err != nil {
		return c, err
	}
	return c, c.Validate()
}
