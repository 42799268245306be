package stream

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/keys"
)

// Names of the streams deploy/nats defines.
const (
	MemoryStream     = "MEM"
	DeadLetterStream = "MEM_DLQ"
)

// Connect opens a NATS connection that keeps reconnecting forever, so a service outlives a
// NATS restart; callers see ErrUnavailable while it is down.
func Connect(url, name string, logger *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		// No reconnect buffer: a publish while disconnected fails at once (ErrUnavailable)
		// instead of being sent after the caller was told it failed.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats at %s: %w", RedactURL(url), err)
	}
	return nc, nil
}

// RedactURL hides the credentials of NATS server URLs (comma-separated, as nats.Connect
// takes them) so they can be logged: nats://user:pw@host becomes nats://REDACTED@host.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			scheme := ""
			if j := strings.Index(p, "://"); j >= 0 && j < at {
				scheme = p[:j+3]
			}
			parts[i] = scheme + "REDACTED" + p[at:]
		}
	}
	return strings.Join(parts, ",")
}

// Ensure creates or updates the memory stream and the dead-letter stream (idempotent), with
// the replicas of their files (one: a single server).
func Ensure(ctx context.Context, js jetstream.JetStream, duplicates time.Duration) error {
	return EnsureReplicas(ctx, js, duplicates, 0)
}

// EnsureReplicas is Ensure with both streams at replicas copies (num_replicas; 0: the files'
// value). A clustered deployment gives every service the same count (NATS_STREAM_REPLICAS,
// 3 in deploy/production/engram.env): an update with fewer replicas than the stream has
// scales it down.
func EnsureReplicas(ctx context.Context, js jetstream.JetStream, duplicates time.Duration, replicas int) error {
	mem, err := natsdeploy.MemoryStream(duplicates)
	if err != nil {
		return err
	}
	if replicas > 0 {
		mem.Replicas = replicas
	}
	if _, err := js.CreateOrUpdateStream(ctx, mem); err != nil {
		return fmt.Errorf("apply stream %s: %w", mem.Name, err)
	}
	dlq, err := natsdeploy.DeadLetterStream()
	if err != nil {
		return err
	}
	if replicas > 0 {
		dlq.Replicas = replicas
	}
	if _, err := js.CreateOrUpdateStream(ctx, dlq); err != nil {
		return fmt.Errorf("apply stream %s: %w", dlq.Name, err)
	}
	// The users' data keys (crypto-shredding), replicated as the memory stream.
	return keys.Ensure(ctx, js, mem.Replicas)
}

// EnsureProjectorConsumers creates or updates the durable consumer of every partition.
func EnsureProjectorConsumers(ctx context.Context, js jetstream.JetStream) ([]jetstream.Consumer, error) {
	out := make([]jetstream.Consumer, 0, natsdeploy.Partitions)
	for p := range natsdeploy.Partitions {
		cfg, err := natsdeploy.ProjectorConsumer(p)
		if err != nil {
			return nil, err
		}
		c, err := js.CreateOrUpdateConsumer(ctx, MemoryStream, cfg)
		if err != nil {
			return nil, fmt.Errorf("apply consumer %s: %w", cfg.Durable, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// Ping reports whether JetStream answers (readiness).
func Ping(ctx context.Context, js jetstream.JetStream) error {
	if _, err := js.AccountInfo(ctx); err != nil {
		return classify(err)
	}
	return nil
}
