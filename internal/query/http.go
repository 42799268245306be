package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/schemas"
)

// Handler serves the reads over HTTP (schemas/query-openapi.yaml). Every route but the
// OpenAPI document, the shared tenant's (shared.go) and the admin's reads across tenants
// (admin.go) is under /v1/users/{identifier}:
// single resources (the user, a trace, an event's fate) answer 404 when absent, collections
// answer an empty list.
type Handler struct {
	reader      *Reader
	wait        time.Duration
	readTimeout time.Duration
	maxLimit    int
	logger      *slog.Logger
	metrics     *Metrics
	auth        *auth.Authenticator
	shared      bool           // serve the shared tenant's reads (WithSharedTenant)
	embedder    embed.Embedder // embeds q of a search with mode=vector (WithEmbedder); nil: none
}

// RetryAfterSeconds is the Retry-After of a 503: Neo4j did not answer.
const RetryAfterSeconds = 1

// HandlerOption refines a Handler.
type HandlerOption func(*Handler)

// WithAuthenticator makes every read authenticate its caller and require the read scope for
// the user in the path (docs/security.md); the OpenAPI document stays public.
func WithAuthenticator(a *auth.Authenticator) HandlerOption {
	return func(h *Handler) { h.auth = a }
}

// WithEmbedder lets the searches embed their q (mode=vector, and the trace search): the
// ingestors' embedder (EMBEDDER), so that the query's vector is comparable to the writes'.
func WithEmbedder(e embed.Embedder) HandlerOption {
	return func(h *Handler) { h.embedder = e }
}

// WithReadTimeout bounds each read's wait for Neo4j (after any consistency wait; default
// DefaultReadTimeout): when it passes, the answer is 503 with Retry-After.
func WithReadTimeout(d time.Duration) HandlerOption {
	return func(h *Handler) {
		if d > 0 {
			h.readTimeout = d
		}
	}
}

// NewHandler returns a Handler over reader. A read that carries a consistency token waits at
// most wait for it; list reads return at most maxLimit items. metrics may be nil.
func NewHandler(reader *Reader, wait time.Duration, maxLimit int, logger *slog.Logger, metrics *Metrics, opts ...HandlerOption) *Handler {
	if logger == nil {
		logger = slog.Default()
	}
	h := &Handler{reader: reader, wait: wait, readTimeout: DefaultReadTimeout, maxLimit: maxLimit,
		logger: logger.With("component", "query"), metrics: metrics}
	for _, o := range opts {
		o(h)
	}
	return h
}

// guard authenticates a route's caller and authorizes the read of the path's user.
func (h *Handler) guard(next http.Handler) http.Handler {
	if h.auth == nil {
		return next
	}
	authorized := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := auth.Authorize(r.Context(), r.PathValue("identifier"), auth.ScopeRead); err != nil {
			auth.WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
	return auth.Handler(h.auth, h.logger, auth.ScopeRead, authorized)
}

// readFunc runs a read whose parameters are already validated.
type readFunc func(ctx context.Context) (any, error)

// endpoint validates a request's parameters (everything but the identifier, which the route
// checks) and returns the read to run.
type endpoint func(r *http.Request, identifier string) (readFunc, error)

// Register mounts the routes on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/openapi-query.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(schemas.QueryOpenAPI)
	})
	mux.Handle("GET /v1/users/{identifier}", h.guard(h.route("user", h.user)))
	mux.Handle("GET /v1/users/{identifier}/preferences", h.guard(h.route("preferences", h.preferences)))
	mux.Handle("GET /v1/users/{identifier}/preferences/history", h.guard(h.route("preference_history", h.history)))
	mux.Handle("GET /v1/users/{identifier}/conversations", h.guard(h.route("conversations", h.conversations)))
	mux.Handle("GET /v1/users/{identifier}/conversations/{session_id}/messages", h.guard(h.route("messages", h.messages)))
	mux.Handle("GET /v1/users/{identifier}/traces", h.guard(h.route("traces", h.traces)))
	mux.Handle("GET /v1/users/{identifier}/traces/{trace_id}", h.guard(h.route("trace", h.trace)))
	mux.Handle("GET /v1/users/{identifier}/events/{event_id}", h.guard(h.route("fate", h.fate)))
	mux.Handle("GET /v1/users/{identifier}/tools", h.guard(h.route("tools", h.tools)))
	mux.Handle("GET /v1/users/{identifier}/search/messages", h.guard(h.route("search_messages", h.searchMessages)))
	mux.Handle("GET /v1/users/{identifier}/search/preferences", h.guard(h.route("search_preferences", h.searchPreferences)))
	mux.Handle("GET /v1/users/{identifier}/search/entities", h.guard(h.route("search_entities", h.searchEntities)))
	mux.Handle("GET /v1/users/{identifier}/search/steps", h.guard(h.route("search_steps", h.searchSteps)))
	// Vector search (vector.go): POST the query vector; the trace search is by vector only.
	mux.Handle("POST /v1/users/{identifier}/search/messages", h.guard(h.route("search_messages", h.searchMessages)))
	mux.Handle("POST /v1/users/{identifier}/search/preferences", h.guard(h.route("search_preferences", h.searchPreferences)))
	mux.Handle("POST /v1/users/{identifier}/search/entities", h.guard(h.route("search_entities", h.searchEntities)))
	mux.Handle("GET /v1/users/{identifier}/search/traces", h.guard(h.route("search_traces", h.searchTraces)))
	mux.Handle("POST /v1/users/{identifier}/search/traces", h.guard(h.route("search_traces", h.searchTraces)))
	h.registerEntities(mux)
	h.registerShared(mux)
	h.registerAdmin(mux)
	h.registerUI(mux)
}

// route wraps an endpoint: validate the identifier and parameters, wait for the consistency
// token when one is given, read, answer JSON; errors become problems (writeError).
func (h *Handler) route(name string, ep endpoint) http.Handler {
	return h.routeWith(name, ep, h.answer)
}

// answerFunc runs a validated read and writes its answer, returning the status code.
type answerFunc func(w http.ResponseWriter, r *http.Request, read readFunc) int

// routeWith is route with its own way of answering the read (the log reads', uilog.go).
func (h *Handler) routeWith(name string, ep endpoint, answer answerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := h.serve(w, r, ep, answer)
		if h.metrics != nil {
			h.metrics.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
			h.metrics.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		}
	})
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, ep endpoint, answer answerFunc) int {
	identifier := r.PathValue("identifier")
	if _, err := tenant(identifier); err != nil {
		return h.writeError(w, r, err)
	}
	token, err := parseConsistency(r.URL.Query(), r.Header.Get(ConsistencyHeader))
	if err != nil {
		return h.writeError(w, r, err)
	}
	read, err := ep(r, identifier)
	if err != nil {
		return h.writeError(w, r, err)
	}
	if token > 0 {
		start := time.Now()
		if err := h.waitFor(r.Context(), identifier, token); err != nil {
			return h.writeError(w, r, err)
		}
		w.Header().Add("Server-Timing", serverTiming("consistency", time.Since(start)))
	}
	return answer(w, r, read)
}

// serverTiming is one metric of a Server-Timing header (W3C Server Timing): how long the
// read waited for its consistency token ("consistency") and how long the read itself took
// ("read"), in milliseconds. A client, a browser's developer tools or the load driver
// (memctl bench's freshness probes) can tell the projection's lag from the read's cost.
func serverTiming(name string, d time.Duration) string {
	return name + ";dur=" + strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64)
}

// answer runs a validated read within the read timeout and writes its JSON or its problem.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, read readFunc) int {
	// The driver retries a refused connection until its context ends (30 s by default, then a
	// 500): bound the read so that a down Neo4j answers 503 within the read timeout.
	rctx, cancel := context.WithTimeout(r.Context(), h.readTimeout)
	defer cancel()
	start := time.Now()
	body, err := read(rctx)
	w.Header().Add("Server-Timing", serverTiming("read", time.Since(start)))
	if err != nil {
		if rctx.Err() != nil && r.Context().Err() == nil && !errors.Is(err, ErrUnavailable) &&
			!errors.Is(err, ErrLogUnavailable) && !errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%w: no answer within %s: %w", ErrUnavailable, h.readTimeout, err)
		}
		return h.writeError(w, r, err)
	}
	if err := app.WriteJSON(w, http.StatusOK, body); err != nil {
		h.logger.Error("read not encodable", "route", r.Pattern, "err", err)
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

func (h *Handler) waitFor(ctx context.Context, identifier string, token uint64) error {
	start := time.Now()
	err := h.reader.WaitFor(ctx, identifier, token, h.wait)
	if h.metrics != nil {
		outcome := "covered"
		switch {
		case errors.Is(err, ErrNotCaughtUp):
			outcome = "timeout"
		case ctx.Err() != nil:
			outcome = "canceled"
		case errors.Is(err, ErrUnavailable):
			outcome = "unavailable"
		case err != nil:
			outcome = "error"
		}
		h.metrics.waits.WithLabelValues(outcome).Inc()
		h.metrics.waitSeconds.Observe(time.Since(start).Seconds())
	}
	return err
}

// consistencyProblem is the 504 body: the token and the checkpoint watched. How far the
// checkpoint got is a position in the stream that all tenants share, so it goes to the log
// only (docs/query.md).
type consistencyProblem struct {
	app.Problem
	Token      uint64 `json:"token"`
	Checkpoint string `json:"checkpoint"`
}

// writeError answers err as a problem and returns the status code.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	var arg *ArgumentError
	var lag *ConsistencyError
	var missing resourceNotFound
	switch {
	case errors.As(err, &arg):
		app.WriteError(w, http.StatusBadRequest, arg.Field, arg.Error())
		return http.StatusBadRequest
	case errors.As(err, &missing):
		app.WriteError(w, http.StatusNotFound, "", missing.notFoundIn(tenantName(r.PathValue("identifier"))))
		return http.StatusNotFound
	case errors.Is(err, ErrNotFound):
		msg := fmt.Sprintf("user %q not found", r.PathValue("identifier"))
		if id := r.PathValue("trace_id"); id != "" {
			msg = fmt.Sprintf("trace %q of %s not found", id, tenantName(r.PathValue("identifier")))
		}
		app.WriteError(w, http.StatusNotFound, "", msg)
		return http.StatusNotFound
	case errors.As(err, &lag):
		h.logger.Info("consistency token not reached", "route", r.Pattern, "token", lag.Token,
			"checkpoint", lag.Checkpoint, "reached", lag.Reached, "waited", lag.Waited)
		_ = app.WriteJSON(w, http.StatusGatewayTimeout, consistencyProblem{
			Problem: app.Problem{Error: lag.Public(), Field: consistencyParam},
			Token:   lag.Token, Checkpoint: lag.Checkpoint,
		})
		return http.StatusGatewayTimeout
	case r.Context().Err() != nil:
		// The client is gone; nobody reads this answer.
		h.logger.Debug("request canceled", "route", r.Pattern)
		return 499
	case errors.Is(err, ErrLogUnavailable):
		h.logger.Warn("event log unavailable", "route", r.Pattern, "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		app.WriteError(w, http.StatusServiceUnavailable, "", "the event log is unavailable; retry later")
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrUnavailable):
		h.logger.Warn("graph unavailable", "route", r.Pattern, "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		app.WriteError(w, http.StatusServiceUnavailable, "", "the graph database is unavailable; retry later")
		return http.StatusServiceUnavailable
	}
	h.logger.Error("read failed", "route", r.Pattern, "err", err)
	app.WriteError(w, http.StatusInternalServerError, "", "internal error")
	return http.StatusInternalServerError
}

func (h *Handler) user(r *http.Request, identifier string) (readFunc, error) {
	if err := checkParams(r.URL.Query(), nil); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return h.reader.User(ctx, identifier)
	}, nil
}

// Response bodies of the collections.
type (
	preferencesBody struct {
		Preferences []Preference `json:"preferences"`
	}
	conversationsBody struct {
		Conversations []Conversation `json:"conversations"`
	}
	tracesBody struct {
		Traces []TraceSummary `json:"traces"`
	}
)

func (h *Handler) preferences(r *http.Request, identifier string) (readFunc, error) {
	opts, err := parsePreferenceQuery(r.URL.Query())
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		ps, err := h.reader.PreferencesFor(ctx, identifier, opts...)
		return preferencesBody{Preferences: ps}, err
	}, nil
}

func (h *Handler) history(r *http.Request, identifier string) (readFunc, error) {
	opts, err := parseHistoryQuery(r.URL.Query())
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		ps, err := h.reader.PreferenceHistory(ctx, identifier, opts...)
		return preferencesBody{Preferences: ps}, err
	}, nil
}

func (h *Handler) conversations(r *http.Request, identifier string) (readFunc, error) {
	n, err := parseListQuery(r.URL.Query(), h.maxLimit)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		cs, err := h.reader.Conversations(ctx, identifier, n)
		return conversationsBody{Conversations: cs}, err
	}, nil
}

func (h *Handler) messages(r *http.Request, identifier string) (readFunc, error) {
	session := r.PathValue("session_id")
	if err := checkText("session_id", session, maxTextRunes); err != nil {
		return nil, err
	}
	q, err := parseMessageQuery(r.URL.Query(), h.maxLimit)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return h.reader.Messages(ctx, identifier, session, q)
	}, nil
}

func (h *Handler) traces(r *http.Request, identifier string) (readFunc, error) {
	q, err := parseTraceQuery(r.URL.Query(), h.maxLimit)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		ts, err := h.reader.Traces(ctx, identifier, q)
		return tracesBody{Traces: ts}, err
	}, nil
}

func (h *Handler) trace(r *http.Request, identifier string) (readFunc, error) {
	id := r.PathValue("trace_id")
	if err := checkText("trace_id", id, maxTextRunes); err != nil {
		return nil, err
	}
	if err := checkParams(r.URL.Query(), nil); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return h.reader.Trace(ctx, identifier, id)
	}, nil
}

// fate answers what became of one of the user's events (fate.go): sequence= (the receipt's)
// makes it one lookup, else the tenant's events are searched around the id's time.
func (h *Handler) fate(r *http.Request, identifier string) (readFunc, error) {
	id := r.PathValue("event_id")
	if err := checkText("event_id", id, maxTextRunes); err != nil {
		return nil, err
	}
	seq, err := parseFateQuery(r.URL.Query())
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return h.reader.Fate(ctx, identifier, id, seq)
	}, nil
}

// tenantName names the tenant of a path in a message: the user, or the shared tenant.
func tenantName(identifier string) string {
	if identifier == "" {
		return "the shared tenant"
	}
	return fmt.Sprintf("user %q", identifier)
}
