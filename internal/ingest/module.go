package ingest

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/stream"
)

// Module adds the write path to an app built with app.Module(cfg.Common): a publisher on the
// app's JetStream and the /v1 routes on the app's HTTP mux.
func Module(cfg Config) fx.Option {
	return fx.Module("ingest",
		auth.Module(cfg.Auth),
		fx.Provide(
			func(js jetstream.JetStream, logger *slog.Logger) (*stream.Publisher, error) {
				keys, random, err := cfg.Keys()
				if err != nil {
					return nil, err
				}
				if random {
					logger.Warn("signing key not configured: this process vouches for its events with a random key, which no audit can verify, and a retry reaching another ingestor is stored again; set INGEST_SIGNING_KEY_FILE",
						"component", "ingest")
				}
				return stream.NewPublisher(js, cfg.Common.PublishTimeout, stream.WithKeys(keys),
					stream.WithLeaderWait(cfg.Common.PublishLeaderWait)), nil
			},
			func(reg *prometheus.Registry) (*Metrics, error) { return NewMetrics(reg) },
			func(pub *stream.Publisher, js jetstream.JetStream, m *Metrics, a *auth.Authenticator, logger *slog.Logger) (*Handler, error) {
				// The ring also with encryption off: an erasure destroys the keys of what was
				// sealed before.
				ring, err := NewRing(keys.NewKV(js), pub.Erasure)
				if err != nil {
					return nil, err
				}
				opts := []Option{WithLogger(logger.With("component", "ingest")), WithMetrics(m), WithAuthenticator(a), WithKeys(ring)}
				if !cfg.Sealing() {
					logger.Warn("encryption off: users' events are stored in plaintext, and an erasure cannot reach their copies in stream blocks, replicas and backups; set INGEST_ENCRYPTION=on",
						"component", "ingest")
				}
				return NewHandler(pub, cfg, opts...)
			},
		),
		fx.Invoke(func(h *Handler, mux *http.ServeMux) { h.Register(mux) }),
		// The agents' door (stream.Door): with the production accounts, agents' events over
		// NATS reach the memory stream only through an ingestor. It needs NATS only, like
		// every write; opened at start (the connection retries in the background, and
		// nats.go keeps the subscription across reconnects), closed first at stop.
		fx.Invoke(func(lc fx.Lifecycle, nc *nats.Conn, m *Metrics, logger *slog.Logger) {
			var door *stream.Door
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					var err error
					door, err = stream.OpenDoor(nc, logger.With("component", "door"), m.doorEvent)
					return err
				},
				OnStop: func(context.Context) error { return door.Close() },
			})
		}),
	)
}
