package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/engram-memory/engram/internal/stream"
)

// Module provides what every service needs from its Common configuration: the logger, the
// NATS connection and JetStream (streams applied at start), a Prometheus registry, and an
// HTTP server with /healthz, /readyz and /metrics on a mux other modules add routes to. It
// has no Neo4j: writes need the log only (the ingestor runs on this module alone), and the
// services that read or project the graph add Neo4jModule.
//
// Start-up waits for NATS (logging what it waits for, up to StartTimeout), then the HTTP
// server binds. fx stops in reverse: the HTTP server shuts down first, consumers that other
// modules start after NATS drain before the NATS connection drains, and the Neo4j driver (of
// Neo4jModule, built before the connection) closes last.
func Module(c Common) fx.Option {
	return fx.Module("app",
		fx.Supply(c),
		fx.Provide(
			func() *slog.Logger { return NewLogger(os.Stderr, c) },
			func(p natsParams) (*nats.Conn, error) { return NewNATS(p.Lifecycle, p.Common, p.Logger) },
			NewJetStream,
			NewRegistry,
			NewHealth,
			http.NewServeMux,
		),
		fx.Invoke(func(lc fx.Lifecycle, logger *slog.Logger) { profileCPU(lc, c, logger) }),
		fx.Invoke(RegisterHTTP),
	)
}

// profileCPU writes a CPU profile of the whole run into Common.CPUProfileDir, when set. Its
// hooks are appended first among the service's, so the profile starts before the rest starts
// and ends after the rest stopped.
func profileCPU(lc fx.Lifecycle, c Common, logger *slog.Logger) {
	if c.CPUProfileDir == "" {
		return
	}
	var f *os.File
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			if err := os.MkdirAll(c.CPUProfileDir, 0o755); err != nil {
				return fmt.Errorf("CPU_PROFILE_DIR: %w", err)
			}
			var err error
			name := filepath.Join(c.CPUProfileDir, fmt.Sprintf("%s-%d.pprof", c.Service, os.Getpid()))
			if f, err = os.Create(name); err != nil {
				return fmt.Errorf("CPU_PROFILE_DIR: %w", err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				_ = f.Close()
				return fmt.Errorf("CPU_PROFILE_DIR: %w", err)
			}
			logger.Info("writing a CPU profile until stop", "file", name)
			return nil
		},
		OnStop: func(context.Context) error {
			pprof.StopCPUProfile()
			return f.Close()
		},
	})
}

// Timeouts bounds start-up (Common.StartTimeout, instead of fx's 15 s) and shutdown.
func Timeouts(c Common) fx.Option {
	return fx.Options(fx.StartTimeout(c.StartTimeout), fx.StopTimeout(c.ShutdownTimeout))
}

// natsParams are NewNATS's dependencies in fx. The service's Neo4j, when it has one, is
// built first only so that its lifecycle hook runs before the connection's and therefore
// stops after it: the connection drains before the driver closes.
type natsParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Common    Common
	Logger    *slog.Logger
	Neo4j     *Neo4j `optional:"true"`
}

// WithLogger makes fx log its own events through slog at debug level.
func WithLogger() fx.Option {
	return fx.WithLogger(func(l *slog.Logger) fxevent.Logger {
		sl := &fxevent.SlogLogger{Logger: l}
		sl.UseLogLevel(slog.LevelDebug)
		return sl
	})
}

// InboxPrefix is the reply-subject prefix of a service's NATS connection: _INBOX_<service>.
// deploy/nats/accounts.conf lets each service subscribe to its own prefix only, so no service
// sees another's replies (the projector's fetched events arrive on its inbox).
func InboxPrefix(service string) string { return "_INBOX_" + service }

// NewNATS returns the NATS connection. It does not fail when NATS is down: the connection
// keeps trying in the background (stream.Connect reconnects forever), and start waits until
// it is connected, logging "waiting for nats" with the last error, or fails after the start
// timeout saying what it waited for.
func NewNATS(lc fx.Lifecycle, c Common, logger *slog.Logger) (*nats.Conn, error) {
	url := stream.RedactURL(c.NATSURL)
	nc, err := stream.Connect(c.NATSURL, "engram-"+c.Service, logger,
		nats.CustomInboxPrefix(InboxPrefix(c.Service)),
		// Over stream.Connect's default: a server that is not up yet is retried like a lost
		// one, so start order does not matter.
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) { logger.Info("nats connected", "url", url) }))
	if err != nil {
		return nil, fmt.Errorf("%w (start the dev stack with `make run` or set NATS_URL)", err)
	}
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			err := Retry(ctx, logger, "waiting for nats", []any{"url", url}, func(context.Context) error {
				if nc.IsConnected() {
					return nil
				}
				if err := nc.LastError(); err != nil {
					return err
				}
				return errors.New("not connected yet")
			})
			if err != nil {
				nc.Close()
				return fmt.Errorf("nats at %s did not answer (start it, or set NATS_URL; START_TIMEOUT is %s): %w", url, c.StartTimeout, err)
			}
			return nil
		},
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

// NewJetStream returns the JetStream handle; on start it applies the stream definitions,
// retrying while JetStream does not answer yet.
func NewJetStream(lc fx.Lifecycle, c Common, nc *nats.Conn, logger *slog.Logger) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStart: func(ctx context.Context) error {
		return Retry(ctx, logger, "waiting for jetstream", []any{"url", stream.RedactURL(c.NATSURL)}, func(ctx context.Context) error {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return stream.EnsureReplicas(actx, js, c.Duplicates, c.StreamReplicas)
		})
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

// NewHealth returns a Health checking NATS (the connection and JetStream). Neo4jModule adds
// "neo4j"; the ingestor has no other check, so its readiness never depends on Neo4j.
func NewHealth(nc *nats.Conn, js jetstream.JetStream) *Health {
	h := &Health{checks: map[string]func(context.Context) error{}}
	h.Add("nats", func(ctx context.Context) error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return stream.Ping(ctx, js)
	})
	return h
}

// Add registers a readiness check.
func (h *Health) Add(name string, check func(context.Context) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = check
}

// Checks returns the names of the readiness checks, sorted.
func (h *Health) Checks() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.checks))
	for k := range h.checks {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
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
		_ = WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// /readyz names what it checks, so that "ready" says what it covers (the ingestor's: NATS).
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if failed := h.Ready(r.Context()); len(failed) > 0 {
			_ = WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": h.Checks(), "failed": failed})
			return
		}
		_ = WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": h.Checks()})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := NewHTTPServer(c.HTTP, mux)
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
