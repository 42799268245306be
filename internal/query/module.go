package query

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/embed"
)

// Module serves the reads on the app's HTTP mux. It needs app.Module (JetStream, registry,
// logger, mux, health) and app.Neo4jModule (the driver).
func Module(c Config) fx.Option {
	return fx.Module("query",
		fx.Supply(c),
		auth.Module(c.Auth),
		fx.Provide(
			func(lc fx.Lifecycle, nc *nats.Conn, c Config) *Progress {
				p := NewProgress(c.CheckpointGroup)
				lc.Append(fx.Hook{
					OnStart: func(context.Context) error { return p.Subscribe(nc) },
					OnStop:  func(context.Context) error { return p.Close() },
				})
				return p
			},
			func(d neo4j.DriverWithContext, js jetstream.JetStream, p *Progress, c Config) (*Reader, error) {
				log := NewStreamLog(js)
				return NewReader(d, c.Common.Neo4j.Database,
					WithCheckpointGroup(c.CheckpointGroup),
					WithMaxLimit(c.MaxLimit),
					WithPartitionLog(log),
					WithEventLog(log),
					WithProgress(p))
			},
			func(reg *prometheus.Registry) (*Metrics, error) { return NewMetrics(reg) },
			func(r *Reader, c Config, logger *slog.Logger, m *Metrics, a *auth.Authenticator) (*Handler, error) {
				emb, err := embed.Parse(c.Embedder)
				if err != nil {
					return nil, err
				}
				return NewHandler(r, c.ConsistencyWait, c.MaxLimit, logger, m,
					WithAuthenticator(a), WithReadTimeout(c.ReadTimeout), WithSharedTenant(!c.Common.MultiTenant),
					WithEmbedder(emb)), nil
			},
		),
		fx.Invoke(func(h *Handler, mux *http.ServeMux) { h.Register(mux) }),
		fx.Invoke(warmUp),
	)
}

// errWarming is the "reads" readiness until Warm has run.
var errWarming = errors.New("warming up the reads")

// warmUp runs Reader.Warm in the background once Neo4j is connected, retrying until it
// succeeds, and reports "reads" unready until then: a query service that says it is ready
// answers its first reads without planning them. Start-up does not wait for it.
func warmUp(lc fx.Lifecycle, n *app.Neo4j, r *Reader, h *app.Health, logger *slog.Logger) {
	var warmed atomic.Bool
	h.Add("reads", func(context.Context) error {
		if !warmed.Load() {
			return errWarming
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				select {
				case <-n.Connected():
				case <-ctx.Done():
					return
				}
				logger = logger.With("component", "query")
				if app.Retry(ctx, logger, "waiting for the read warm-up", nil, r.Warm) == nil {
					warmed.Store(true)
					logger.Info("reads warmed up")
				}
			}()
			return nil
		},
		OnStop: func(stop context.Context) error {
			cancel()
			select {
			case <-done:
			case <-stop.Done():
			}
			return nil
		},
	})
}
