package ingest

import (
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/auth"
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
				return stream.NewPublisher(js, cfg.Common.PublishTimeout, stream.WithKeys(keys)), nil
			},
			func(reg *prometheus.Registry) (*Metrics, error) { return NewMetrics(reg) },
			func(pub *stream.Publisher, m *Metrics, a *auth.Authenticator, logger *slog.Logger) (*Handler, error) {
				return NewHandler(pub, cfg, WithLogger(logger.With("component", "ingest")), WithMetrics(m), WithAuthenticator(a))
			},
		),
		fx.Invoke(func(h *Handler, mux *http.ServeMux) { h.Register(mux) }),
	)
}
