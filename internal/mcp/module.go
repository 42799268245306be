package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/app"
)

// Module runs the MCP server on the configured transport: over stdio until the host closes
// the server's standard input (then the process stops), or over Streamable HTTP on
// HTTPAddr until it is stopped. It needs no NATS and no Neo4j: it is a client of the
// ingestor and the query service.
func Module(c Config) fx.Option {
	return fx.Module("mcp",
		fx.Supply(c),
		fx.Provide(
			func() *slog.Logger { return app.NewLogger(os.Stderr, c.common()) },
			app.NewRegistry,
			func(reg *prometheus.Registry) (*Metrics, error) { return NewMetrics(reg) },
			func(logger *slog.Logger) *Memory { return NewMemory(c, logger.With("component", "mcp")) },
			func(m *Memory, metrics *Metrics, logger *slog.Logger) *sdk.Server {
				return NewServer(m, c.Erasure, metrics, logger.With("component", "mcp"))
			},
		),
		fx.Invoke(func(lc fx.Lifecycle, sd fx.Shutdowner, s *sdk.Server, reg *prometheus.Registry, logger *slog.Logger) {
			if c.Transport == TransportStdio {
				runStdio(lc, sd, c, s, logger)
				return
			}
			serveHTTP(lc, c, s, reg, logger)
		}),
	)
}

// Timeouts bounds start-up and shutdown.
func Timeouts(c Config) fx.Option {
	return fx.Options(fx.StartTimeout(30*time.Second), fx.StopTimeout(c.ShutdownTimeout))
}

// runStdio serves one session on standard input and output. When the host closes the
// connection the process shuts down.
func runStdio(lc fx.Lifecycle, sd fx.Shutdowner, c Config, s *sdk.Server, logger *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			logger.Info("mcp serving on stdio", "ingestor", c.IngestorURL, "query", c.QueryURL, "user_configured", c.User != "")
			go probe(ctx, c, logger)
			go func() {
				defer close(done)
				err := s.Run(ctx, &sdk.StdioTransport{})
				if ctx.Err() != nil {
					return // stopping
				}
				if err != nil {
					logger.Error("stdio session ended", "err", err)
				} else {
					logger.Info("stdio session closed by the host")
				}
				_ = sd.Shutdown()
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

// serveHTTP serves Streamable HTTP at Path, statelessly: every request stands alone and
// carries its own bearer token, which is what Engram authorizes; any instance can answer
// any request, so instances scale like the other services. GET (the optional standalone
// stream) is answered 405, which the protocol allows.
func serveHTTP(lc fx.Lifecycle, c Config, s *sdk.Server, reg *prometheus.Registry, logger *slog.Logger) {
	srv := app.NewHTTPServer(c.HTTP, NewHTTPHandler(c, s, reg, logger))
	ctx, cancel := context.WithCancel(context.Background())
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			ln, err := net.Listen("tcp", c.HTTPAddr)
			if err != nil {
				return fmt.Errorf("listen on %s (port in use? set HTTP_ADDR): %w", c.HTTPAddr, err)
			}
			logger.Info("http listening", "addr", "http://"+ln.Addr().String(), "mcp", "http://"+ln.Addr().String()+Path,
				"ingestor", c.IngestorURL, "query", c.QueryURL)
			go probe(ctx, c, logger)
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
					logger.Error("http server stopped", "err", err)
				}
			}()
			return nil
		},
		OnStop: func(stop context.Context) error {
			cancel()
			return srv.Shutdown(stop)
		},
	})
}

// NewHTTPHandler is the HTTP server's handler: the MCP endpoint at Path (with cross-origin
// protection, and MCP_HTTP_REQUIRE_TOKEN's 401), /healthz, /readyz (Engram's two APIs
// answer their /readyz) and /metrics.
func NewHTTPHandler(c Config, s *sdk.Server, reg *prometheus.Registry, logger *slog.Logger) http.Handler {
	var h http.Handler = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s },
		&sdk.StreamableHTTPOptions{Stateless: true, Logger: logger})
	if c.RequireToken {
		h = requireToken(h)
	}
	h = http.NewCrossOriginProtection().Handler(h)
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_ = app.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	checks := []string{"ingestor", "query"}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		failed := map[string]string{}
		for name, u := range map[string]string{"ingestor": c.IngestorURL, "query": c.QueryURL} {
			if err := ready(r.Context(), u); err != nil {
				failed[name] = err.Error()
			}
		}
		if len(failed) > 0 {
			_ = app.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "checks": checks, "failed": failed})
			return
		}
		_ = app.WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": checks})
	})
	if reg != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	}
	return mux
}

// requireToken answers 401 to a request without an Authorization header, as Engram's APIs
// do, so that a host asks for a credential before the first tool call.
func requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="engram"`)
			app.WriteError(w, http.StatusUnauthorized, "", "unauthenticated: missing Authorization header (Bearer <an Engram token>)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ready asks a service's /readyz.
func ready(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz answered %d", resp.StatusCode)
	}
	return nil
}

// probe logs once at start whether Engram's APIs answer: the server starts either way (a
// host may start it before Engram), and its tools answer "unavailable" meanwhile.
func probe(ctx context.Context, c Config, logger *slog.Logger) {
	for name, u := range map[string]string{"ingestor": c.IngestorURL, "query": c.QueryURL} {
		if err := ready(ctx, u); err != nil && ctx.Err() == nil {
			logger.Warn("engram service not ready: tool calls fail until it is", "api", name, "url", u, "err", err)
		}
	}
}
