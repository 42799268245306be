package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/stream"
)

// Module provides what every service needs from its Common configuration: the logger, the
// Neo4j driver (schema applied at start), the NATS connection and JetStream (streams applied
// at start), a Prometheus registry, and an HTTP server with /healthz, /readyz and /metrics on
// a mux other modules add routes to.
//
// Start order is Neo4j, NATS, then the HTTP server, so fx stops them in reverse: the HTTP
// server shuts down first, consumers that other modules start after NATS drain before the NATS
// connection drains, and the Neo4j driver closes last.
func Module(c Common) fx.Option {
	return fx.Module("app",
		fx.Supply(c),
		fx.Provide(
			func() *slog.Logger { return NewLogger(os.Stderr, c) },
			NewDriver,
			NewNATS,
			NewJetStream,
			NewRegistry,
			NewHealth,
			http.NewServeMux,
		),
		fx.Invoke(RegisterHTTP),
	)
}

// WithLogger makes fx log its own events through slog at debug level.
func WithLogger() fx.Option {
	return fx.WithLogger(func(l *slog.Logger) fxevent.Logger {
		sl := &fxevent.SlogLogger{Logger: l}
		sl.UseLogLevel(slog.LevelDebug)
		return sl
	})
}

// NewDriver creates the Neo4j driver; on start it checks connectivity and applies the schema.
func NewDriver(lc fx.Lifecycle, c Common, logger *slog.Logger) (neo4j.DriverWithContext, error) {
	d, err := neo4j.NewDriverWithContext(c.Neo4j.URI, neo4j.BasicAuth(c.Neo4j.User, c.Neo4j.Password, ""))
	if err != nil {
		return nil, fmt.Errorf("neo4j driver for %s: %w", c.Neo4j.URI, err)
	}
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if err := d.VerifyConnectivity(ctx); err != nil {
				return fmt.Errorf("neo4j at %s is not reachable (start it with `make neo4j-start` or set NEO4J_URI): %w", c.Neo4j.URI, err)
			}
			if err := graph.ApplySchema(ctx, d, c.Neo4j.Database); err != nil {
				return err
			}
			logger.Info("neo4j ready", "uri", c.Neo4j.URI)
			return nil
		},
		OnStop: func(ctx context.Context) error { return d.Close(ctx) },
	})
	return d, nil
}

// InboxPrefix is the reply-subject prefix of a service's NATS connection: _INBOX_<service>.
// deploy/nats/accounts.conf lets each service subscribe to its own prefix only, so no service
// sees another's replies (the projector's fetched events arrive on its inbox).
func InboxPrefix(service string) string { return "_INBOX_" + service }

// NewNATS connects to NATS. It takes the driver only to be started after it and so stopped
// before it: the connection drains before the driver closes.
func NewNATS(lc fx.Lifecycle, c Common, logger *slog.Logger, _ neo4j.DriverWithContext) (*nats.Conn, error) {
	nc, err := stream.Connect(c.NATSURL, "engram-"+c.Service, logger, nats.CustomInboxPrefix(InboxPrefix(c.Service)))
	if err != nil {
		return nil, fmt.Errorf("%w (start the dev stack with `make run` or set NATS_URL)", err)
	}
	lc.Append(fx.Hook{
		OnStop: func(ctx context.Context) error {
			closed := make(chan struct{})
			nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
			if err := nc.Drain(); err != nil {
				nc.Close()
				return nil
			}
			select {
			case <-closed:
			case <-ctx.Done():
				nc.Close()
			}
			return nil
		},
	})
	return nc, nil
}

// NewJetStream returns the JetStream handle; on start it applies the stream definitions.
func NewJetStream(lc fx.Lifecycle, c Common, nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStart: func(ctx context.Context) error {
		return stream.Ensure(ctx, js, c.Duplicates)
	}})
	return js, nil
}

// NewRegistry returns the service's Prometheus registry with Go and process collectors.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Health answers /healthz (the process serves) and /readyz (every dependency answers).
type Health struct {
	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

// NewHealth returns a Health checking NATS and Neo4j.
func NewHealth(nc *nats.Conn, js jetstream.JetStream, d neo4j.DriverWithContext) *Health {
	h := &Health{checks: map[string]func(context.Context) error{}}
	h.Add("nats", func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return stream.Ping(ctx, js)
	})
	h.Add("neo4j", d.VerifyConnectivity)
	return h
}

// Add registers a readiness check.
func (h *Health) Add(name string, check func(context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = check
}

// Ready runs every check and returns the failures by name.
func (h *Health) Ready(ctx context.Context) map[string]string {
	h.mu.Lock()
	checks := make(map[string]func(context.Context) error, len(h.checks))
	for k, v := range h.checks {
		checks[k] = v
	}
	h.mu.Unlock()
	failed := map[string]string{}
	for name, check := range checks {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := check(cctx); err != nil {
			failed[name] = err.Error()
		}
		cancel()
	}
	return failed
}

// RegisterHTTP mounts the health and metrics endpoints and runs the HTTP server: it binds on
// start (a taken port fails start-up) and shuts down gracefully on stop.
func RegisterHTTP(lc fx.Lifecycle, c Common, mux *http.ServeMux, h *Health, reg *prometheus.Registry, logger *slog.Logger) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if failed := h.Ready(r.Context()); len(failed) > 0 {
			WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failed": failed})
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", c.HTTPAddr)
			if err != nil {
				return fmt.Errorf("listen on %s (port in use? set HTTP_ADDR): %w", c.HTTPAddr, err)
			}
			logger.Info("http listening", "addr", "http://"+ln.Addr().String())
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					logger.Error("http server stopped", "err", err)
				}
			}()
			return nil
		},
		OnStop: srv.Shutdown,
	})
}
