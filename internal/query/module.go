package query

import (
	"log/slog"
	"net/http"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/auth"
)

// Module serves the reads on the app's HTTP mux. It needs app.Module (driver, JetStream,
// registry, logger, mux).
func Module(c Config) fx.Option {
	return fx.Module("query",
		fx.Supply(c),
		auth.Module(c.Auth),
		fx.Provide(
			func(d neo4j.DriverWithContext, js jetstream.JetStream, c Config) (*Reader, error) {
				return NewReader(d, c.Common.Neo4j.Database,
					WithCheckpointGroup(c.CheckpointGroup),
					WithMaxLimit(c.MaxLimit),
					WithPartitionLog(NewStreamLog(js)))
			},
			func(reg *prometheus.Registry) (*Metrics, error) { return NewMetrics(reg) },
			func(r *Reader, c Config, logger *slog.Logger, m *Metrics, a *auth.Authenticator) *Handler {
				return NewHandler(r, c.ConsistencyWait, c.MaxLimit, logger, m, WithAuthenticator(a))
			},
		),
		fx.Invoke(func(h *Handler, mux *http.ServeMux) { h.Register(mux) }),
	)
}
