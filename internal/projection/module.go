package projection

import (
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/app"
)

// Module provides the *Projector of c on app.Module's driver, JetStream, registry and logger,
// and runs it: it starts after NATS and Neo4j, and stops before them (fx stops in reverse
// order), so the consumers drain before the NATS connection and the last transaction ends
// before the driver closes. Its readiness shows on /readyz as "projector".
func Module(c Config) fx.Option {
	return fx.Module("projection",
		fx.Provide(func(d neo4j.DriverWithContext, js jetstream.JetStream, reg *prometheus.Registry, l *slog.Logger) (*Projector, error) {
			return New(c, d, js, WithLogger(l), WithRegisterer(reg))
		}),
		fx.Invoke(func(lc fx.Lifecycle, p *Projector, h *app.Health) {
			lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
			h.Add("projector", p.Ready)
		}),
	)
}
