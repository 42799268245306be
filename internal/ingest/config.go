package ingest

import (
	"errors"
	"flag"
	"fmt"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/stream"
)

// Defaults of the ingestor's own settings.
const (
	DefaultHTTPAddr     = "127.0.0.1:8080"
	DefaultMaxBatch     = stream.MaxAtomicBatch
	DefaultMaxBodyBytes = 1 << 20
	// DefaultMaxOpenBatches is how many atomic batches one principal (or, without
	// authentication, one tenant) may have in flight on an ingestor at once: a small share of the stream's
	// stream.MaxOpenAtomicBatches.
	DefaultMaxOpenBatches = 4
)

// Config is the ingestor's configuration: the shared settings and the write path's limits.
type Config struct {
	Common app.Common
	// MaxBatch bounds the commands of one POST /v1/batch; at most stream.MaxAtomicBatch, the
	// server's own atomic batch limit.
	MaxBatch int
	// MaxBodyBytes bounds every request body (413 above it).
	MaxBodyBytes int64
	// MaxOpenBatches bounds the POST /v1/batch requests of one principal (authentication on)
	// or naming one tenant (authentication off) publishing at once on this ingestor; beyond it the
	// request is answered 429 with Retry-After. It keeps one agent from taking the stream's
	// atomic-batch slots (stream.MaxOpenAtomicBatches, shared by all tenants) from the others,
	// so it must stay below that limit.
	MaxOpenBatches int
	// SigningKeyFile names the ingestors' key file (stream.LoadKeys): the keys of their
	// Nats-Msg-Ids and of the vouch on every event they write. Every ingestor of a deployment
	// needs the same file (and memctl audit reads it to verify vouches); without one each
	// process signs with a random key of its own (a WARN at start-up).
	SigningKeyFile string
	// Source is the CloudEvents source of the events the ingestor writes.
	Source string
	// Encryption is INGEST_ENCRYPTION, "on" (the default) or "off": whether the ingestor seals
	// each user's events with their data key (crypto-shredding, docs/security.md). Readers
	// open sealed events whatever it says.
	Encryption string
	// Embedder is EMBEDDER (embed.Parse): "none" (the default), or an embedder whose vector
	// the ingestor puts into each message, preference, entity and trace start written without
	// one (docs/query.md, "Vector search"). The query service must have the same.
	Embedder string
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
	if c.MaxOpenBatches < 1 || c.MaxOpenBatches >= stream.MaxOpenAtomicBatches {
		errs = append(errs, fmt.Errorf("INGEST_MAX_OPEN_BATCHES %d: want 1 to %d (below the stream's %d open atomic batches)", c.MaxOpenBatches, stream.MaxOpenAtomicBatches-1, stream.MaxOpenAtomicBatches))
	}
	if c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 8<<20 {
		errs = append(errs, fmt.Errorf("INGEST_MAX_BODY_BYTES %d: want 1024 to %d", c.MaxBodyBytes, 8<<20))
	}
	if c.Source == "" {
		errs = append(errs, errors.New("INGEST_EVENT_SOURCE is required"))
	}
	if _, err := embed.Parse(c.Embedder); err != nil {
		errs = append(errs, err)
	}
	if c.Encryption != "on" && c.Encryption != "off" && c.Encryption != "" {
		errs = append(errs, fmt.Errorf("INGEST_ENCRYPTION %q: want on or off", c.Encryption))
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
	f.Int(&c.MaxOpenBatches, "max-open-batches", "INGEST_MAX_OPEN_BATCHES", DefaultMaxOpenBatches, "most batches of one principal (or, without authentication, naming one tenant) publishing at once (429 beyond)")
	f.String(&c.SigningKeyFile, "signing-key-file", "INGEST_SIGNING_KEY_FILE", "", "key file of the ingestors' Nats-Msg-Ids and vouches (one key of 32 bytes or more per line; the first signs)")
	var body int
	f.Int(&body, "max-body-bytes", "INGEST_MAX_BODY_BYTES", DefaultMaxBodyBytes, "largest request body in bytes")
	f.String(&c.Source, "event-source", "INGEST_EVENT_SOURCE", DefaultSource, "CloudEvents source of the events written")
	f.String(&c.Encryption, "encryption", "INGEST_ENCRYPTION", "on", "seal each user's events with their data key (on or off)")
	f.String(&c.Embedder, "embedder", "EMBEDDER", "none", "embedder of writes that carry no embedding: none, hash or hash:<dimensions> (the query service needs the same)")
	if err := f.Parse(args); err != nil {
		return c, err
	}
	c.MaxBodyBytes = int64(body)
	return c, c.Validate()
}

// Keys returns the signing keys: SigningKeyFile's, or one random key when none is configured
// (random is true then).
func (c Config) Keys() (ks stream.Keys, random bool, err error) {
	if c.SigningKeyFile == "" {
		return stream.RandomKeys(), true, nil
	}
	ks, err = stream.LoadKeys(c.SigningKeyFile)
	if err != nil {
		return nil, false, fmt.Errorf("INGEST_SIGNING_KEY_FILE: %w", err)
	}
	return ks, false, nil
}

// Sealing reports whether the ingestor seals events (Encryption is not "off").
func (c Config) Sealing() bool { return c.Encryption != "off" }
