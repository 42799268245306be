package ingest

import (
	"errors"
	"flag"
	"fmt"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/stream"
)

// Defaults of the ingestor's own settings.
const (
	DefaultHTTPAddr     = "127.0.0.1:8080"
	DefaultMaxBatch     = stream.MaxAtomicBatch
	DefaultMaxBodyBytes = 1 << 20
)

// Config is the ingestor's configuration: the shared settings and the write path's limits.
type Config struct {
	Common app.Common
	// MaxBatch bounds the commands of one POST /v1/batch; at most stream.MaxAtomicBatch, the
	// server's own atomic batch limit.
	MaxBatch int
	// MaxBodyBytes bounds every request body (413 above it).
	MaxBodyBytes int64
	// Source is the CloudEvents source of the events the ingestor writes.
	Source string
	// Auth configures authentication (AUTH_*, docs/security.md); off in the dev stack.
	Auth auth.Config
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	return errors.Join(c.Common.Validate(), c.validateLimits(), c.Auth.Validate())
}

// validateLimits checks the ingestor's own settings.
func (c Config) validateLimits() error {
	var errs []error
	if c.MaxBatch < 1 || c.MaxBatch > stream.MaxAtomicBatch {
		errs = append(errs, fmt.Errorf("INGEST_MAX_BATCH %d: want 1 to %d (the server's atomic batch limit)", c.MaxBatch, stream.MaxAtomicBatch))
	}
	if c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 8<<20 {
		errs = append(errs, fmt.Errorf("INGEST_MAX_BODY_BYTES %d: want 1024 to %d", c.MaxBodyBytes, 8<<20))
	}
	if c.Source == "" {
		errs = append(errs, errors.New("INGEST_EVENT_SOURCE is required"))
	}
	return errors.Join(errs...)
}

// LoadConfig reads the configuration from command-line args and the environment (getenv),
// each setting as -flag or ENV, and validates it.
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("ingestor", flag.ContinueOnError)
	f := app.NewFlags(fs, getenv)
	app.BindCommon(f, &c.Common, "ingestor", DefaultHTTPAddr)
	auth.Bind(f, &c.Auth)
	f.Int(&c.MaxBatch, "max-batch", "INGEST_MAX_BATCH", DefaultMaxBatch, "most commands in one POST /v1/batch")
	var body int
	f.Int(&body, "max-body-bytes", "INGEST_MAX_BODY_BYTES", DefaultMaxBodyBytes, "largest request body in bytes")
	f.String(&c.Source, "event-source", "INGEST_EVENT_SOURCE", DefaultSource, "CloudEvents source of the events written")
	if err := f.Parse(args); err != nil {
		return c, err
	}
	c.MaxBodyBytes = int64(body)
	return c, c.Validate()
}
