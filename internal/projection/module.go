package projection

import (
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/keys"
)

// Module provides the *Projector of c on app.Neo4jModule's driver and app.Module's JetStream,
// registry and logger, and runs it: it starts after NATS and the driver, and stops before them
// (fx stops in reverse order), so the consumers drain before the NATS connection and the last
// transaction ends before the driver closes. Start does not wait for Neo4j: the projector waits
// for the schema, warms up, and only then pulls. Its readiness shows on /readyz as "projector".
func Module(c Config) fx.Option {
	return fx.Module("projection",
		fx.Provide(func(n *app.Neo4j, d neo4j.DriverWithContext, js jetstream.JetStream, reg *prometheus.Registry, l *slog.Logger) (*Projector, error) {
			if c.Keys == nil {
				c.Keys = keys.Default(js)
			}
			return New(c, d, js, WithLogger(l), WithRegisterer(reg), WithGraphReady(n.Connected()))
		}),
		fx.Invoke(func(lc fx.Lifecycle, p *Projector, h *app.Health) {
			lc.Append(fx.Hook{OnStart: p.Start, OnStop: p.Stop})
			h.Add("projector", p.Ready)
		}),
	)
}
