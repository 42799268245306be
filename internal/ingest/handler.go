package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/schemas"
)

// CorrelationHeader is the request header that, when present, becomes the "correlationid" extension of every
// event the request writes. A batch without it is correlated by its minted batch id.
const CorrelationHeader = "X-Correlation-ID"

// RetryAfterSeconds is the Retry-After of a 503: the event store is unreachable or did not
// acknowledge in time.
const RetryAfterSeconds = 1

// errUnsupportedMedia marks a *FieldError answered 415.
var errUnsupportedMedia = errors.New("unsupported media type")

// Accepted is the 202 answer to a command: the event id, the stream sequence it was stored at
// (the consistency token a read can wait for), and the ids the command minted.
type Accepted struct {
	EventID string `json:"event_id"`
	// Sequence is the stream sequence of the event: a consistency token.
	Sequence uint64 `json:"sequence"`
	// Duplicate is true when the stream already held an event with this id (a retry); nothing
	// new was stored and Sequence is the first copy's.
	Duplicate bool `json:"duplicate,omitempty"`
	Minted
}

// BatchResult is one command's part of a BatchAccepted.
type BatchResult struct {
	Op string `json:"op"`
	Accepted
}

// BatchAccepted is the 202 answer to a batch: every command's result in order, and the
// sequence of the batch's last event (the consistency token of the whole batch).
type BatchAccepted struct {
	// BatchID is the correlationid of the batch's events: the X-Correlation-ID header, or a
	// minted UUIDv7.
	BatchID  string        `json:"batch_id"`
	Sequence uint64        `json:"sequence"`
	Results  []BatchResult `json:"results"`
}

// Problem is the body of every error answer: what is wrong and, for bad input, which field
// (a JSON field, a path inside a batch such as commands[2].role, "body", or a header name).
// A 503 lists the ids of the events that were not confirmed.
type Problem struct {
	Error    string   `json:"error"`
	Field    string   `json:"field,omitempty"`
	EventIDs []string `json:"event_ids,omitempty"`
}

// Handler serves the ingestor's /v1 HTTP API.
type Handler struct {
	auth    *auth.Authenticator
	pub     *stream.Publisher
	cfg     Config
	logger  *slog.Logger
	metrics *Metrics
	now     func() time.Time
	mux     *http.ServeMux
	batches *batchLimiter
	// erasureOf reads a user's erasures from the log (stream.LastErasure); a benchmark
	// replaces it to measure the handler without the look-up.
	erasureOf func(context.Context, string) (stream.Erasure, error)
	// erasures remembers what erasureOf said of users not erased (erasurecache.go).
	erasures *erasureCache
	// onBatchOpen, when set (tests), runs while a batch holds its slots, before it publishes.
	onBatchOpen func(context.Context)
	// ring seals users' events and destroys their keys on erasure (seal.go); nil: plaintext.
	ring *keys.Ring
	// embedder embeds writes that carry no embedding (cfg.Embedder); nil: none.
	embedder embed.Embedder
}

// Option configures a Handler.
type Option func(*Handler) error

// WithLogger sets the handler's logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(h *Handler) error {
		if l == nil {
			return errors.New("ingest: nil logger")
		}
		h.logger = l
		return nil
	}
}

// WithMetrics makes the handler count requests and stored events.
func WithMetrics(m *Metrics) Option {
	return func(h *Handler) error { h.metrics = m; return nil }
}

// WithClock sets the clock of the events' time (tests).
func WithClock(now func() time.Time) Option {
	return func(h *Handler) error {
		if now == nil {
			return errors.New("ingest: nil clock")
		}
		h.now = now
		return nil
	}
}

// NewHandler returns the HTTP API publishing through pub. Of cfg it uses MaxBatch,
// MaxBodyBytes, MaxOpenBatches, Source and Common.MultiTenant.
func NewHandler(pub *stream.Publisher, cfg Config, opts ...Option) (*Handler, error) {
	if pub == nil {
		return nil, errors.New("ingest: nil publisher")
	}
	if err := cfg.validateLimits(); err != nil {
		return nil, err
	}
	h := &Handler{
		pub: pub, cfg: cfg, now: time.Now,
		logger:   slog.New(slog.DiscardHandler),
		batches:  newBatchLimiter(cfg.MaxOpenBatches),
		erasures: newErasureCache(erasureCacheSize),
	}
	h.erasureOf = pub.Erasure
	emb, err := embed.Parse(cfg.Embedder)
	if err != nil {
		return nil, err
	}
	h.embedder = emb
	for _, o := range opts {
		if err := o(h); err != nil {
			return nil, err
		}
	}
	h.mux = http.NewServeMux()
	h.Register(h.mux)
	return h, nil
}

// ServeHTTP serves the /v1 routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Register adds the /v1 routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(schemas.OpenAPI)
	})
	identifier := func(c Command) *string {
		switch c := c.(type) {
		case *UpsertUser:
			return &c.Identifier
		case *EraseUser:
			return &c.Identifier
		case *RecreateUser:
			return &c.Identifier
		}
		panic("no identifier")
	}
	traceID := func(c Command) *string {
		switch c := c.(type) {
		case *AddTraceStep:
			return &c.TraceID
		case *RecordToolCall:
			return &c.TraceID
		case *CompleteTrace:
			return &c.TraceID
		}
		panic("no trace_id")
	}
	oldID := func(c Command) *string { return &c.(*SupersedePreference).OldID }
	owner := func(c Command) *string {
		switch c := c.(type) {
		case *DeleteMessage:
			return &c.UserIdentifier
		case *ClearSession:
			return &c.UserIdentifier
		case *DeleteEntity:
			return &c.UserIdentifier
		}
		panic("no user_identifier")
	}
	session := func(c Command) *string {
		switch c := c.(type) {
		case *DeleteMessage:
			return &c.SessionID
		case *ClearSession:
			return &c.SessionID
		}
		panic("no session_id")
	}
	messageID := func(c Command) *string { return &c.(*DeleteMessage).MessageID }
	entityID := fromPath("entity_id", "entity_id", func(c Command) *string { return &c.(*DeleteEntity).EntityID })
	user := fromPath("identifier", "user_identifier", owner)

	mux.Handle("PUT /v1/users/{identifier}", h.guard(auth.ScopeWrite, h.command(OpUpsertUser, true, fromPath("identifier", "identifier", identifier))))
	mux.Handle("POST /v1/users", h.guard(auth.ScopeWrite, h.command(OpUpsertUser, false, nil)))
	mux.Handle("DELETE /v1/users/{identifier}", h.guard(auth.ScopeAdmin, h.command(OpEraseUser, true, fromPath("identifier", "identifier", identifier))))
	mux.Handle("POST /v1/users/{identifier}/recreate", h.guard(auth.ScopeAdmin, h.command(OpRecreateUser, true, fromPath("identifier", "identifier", identifier))))
	mux.Handle("POST /v1/messages", h.guard(auth.ScopeWrite, h.command(OpAddMessage, false, nil)))
	mux.Handle("POST /v1/preferences", h.guard(auth.ScopeWrite, h.command(OpAddPreference, false, nil)))
	mux.Handle("POST /v1/preferences/{old_id}/supersede", h.guard(auth.ScopeWrite, h.command(OpSupersedePreference, false, fromPath("old_id", "old_id", oldID))))
	mux.Handle("POST /v1/traces", h.guard(auth.ScopeWrite, h.command(OpStartTrace, false, nil)))
	mux.Handle("POST /v1/traces/{trace_id}/steps", h.guard(auth.ScopeWrite, h.command(OpAddTraceStep, false, fromPath("trace_id", "trace_id", traceID))))
	mux.Handle("POST /v1/traces/{trace_id}/tool-calls", h.guard(auth.ScopeWrite, h.command(OpRecordToolCall, false, fromPath("trace_id", "trace_id", traceID))))
	mux.Handle("POST /v1/traces/{trace_id}/complete", h.guard(auth.ScopeWrite, h.command(OpCompleteTrace, true, fromPath("trace_id", "trace_id", traceID))))
	mux.Handle("POST /v1/entities", h.guard(auth.ScopeWrite, h.command(OpAddEntity, false, nil)))
	mux.Handle("POST /v1/entities/merge", h.guard(auth.ScopeWrite, h.command(OpMergeEntities, false, nil)))
	mux.Handle("POST /v1/relationships", h.guard(auth.ScopeWrite, h.command(OpAddRelationship, false, nil)))
	mux.Handle("POST /v1/facts", h.guard(auth.ScopeWrite, h.command(OpAddFact, false, nil)))
	mux.Handle("DELETE /v1/messages/{message_id}", h.guard(auth.ScopeWrite, h.command(OpDeleteMessage, true,
		fromPath("message_id", "message_id", messageID))))
	mux.Handle("DELETE /v1/conversations/{session_id}", h.guard(auth.ScopeWrite, h.command(OpClearSession, true,
		fromPath("session_id", "session_id", session))))
	mux.Handle("DELETE /v1/users/{identifier}/messages/{message_id}", h.guard(auth.ScopeWrite, h.command(OpDeleteMessage, true,
		fromPaths(user, fromPath("message_id", "message_id", messageID)))))
	mux.Handle("DELETE /v1/users/{identifier}/conversations/{session_id}/messages/{message_id}", h.guard(auth.ScopeWrite, h.command(OpDeleteMessage, true,
		fromPaths(user, fromPath("session_id", "session_id", session), fromPath("message_id", "message_id", messageID)))))
	mux.Handle("DELETE /v1/users/{identifier}/conversations/{session_id}", h.guard(auth.ScopeWrite, h.command(OpClearSession, true,
		fromPaths(user, fromPath("session_id", "session_id", session)))))
	mux.Handle("DELETE /v1/entities/{entity_id}", h.guard(auth.ScopeWrite, h.command(OpDeleteEntity, true, entityID)))
	mux.Handle("DELETE /v1/users/{identifier}/entities/{entity_id}", h.guard(auth.ScopeWrite, h.command(OpDeleteEntity, true,
		fromPaths(user, entityID))))
	mux.Handle("POST /v1/batch", h.guard(auth.ScopeWrite, h.endpoint("batch", h.batch)))
}

// fromPath copies a path parameter into the command's field; the body may repeat it only
// with the same value.
func fromPath(param, field string, ptr func(Command) *string) func(*http.Request, Command) error {
	return func(r *http.Request, c Command) error {
		v, f := r.PathValue(param), ptr(c)
		if *f != "" && *f != v {
			return fieldErr(field, "is %q in the body but %q in the path", clip(*f), clip(v))
		}
		*f = v
		return nil
	}
}

// fromPaths applies several path parameters, the first refusal winning.
func fromPaths(fns ...func(*http.Request, Command) error) func(*http.Request, Command) error {
	return func(r *http.Request, c Command) error {
		for _, fn := range fns {
			if err := fn(r, c); err != nil {
				return err
			}
		}
		return nil
	}
}

// endpoint runs fn and writes its answer: 202 with the result, or the error as a Problem.
func (h *Handler) endpoint(op string, fn func(http.ResponseWriter, *http.Request) (any, []string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, eventIDs, err := fn(w, r)
		if err != nil {
			h.metrics.request(op, h.writeProblem(w, r, op, err, eventIDs))
			return
		}
		if err := app.WriteJSON(w, http.StatusAccepted, resp); err != nil {
			h.logger.Error("answer not encodable", "op", op, "route", r.Pattern, "err", err)
			h.metrics.request(op, http.StatusInternalServerError)
			return
		}
		h.metrics.request(op, http.StatusAccepted)
	})
}

// command serves one command's endpoint.
func (h *Handler) command(op string, optionalBody bool, path func(*http.Request, Command) error) http.Handler {
	return h.endpoint(op, func(w http.ResponseWriter, r *http.Request) (any, []string, error) {
		s, err := h.settings(r)
		if err != nil {
			return nil, nil, err
		}
		body, err := h.readBody(w, r, optionalBody)
		if err != nil {
			return nil, nil, err
		}
		cmd := newCommand(op)
		if body != nil {
			if cmd, err = DecodeCommand(op, body); err != nil {
				return nil, nil, err
			}
		}
		if path != nil {
			if err := path(r, cmd); err != nil {
				return nil, nil, err
			}
		}
		ev, minted, err := Build(cmd, s)
		if err != nil {
			return nil, nil, err
		}
		if err := h.authorize(r.Context(), op, ev.User); err != nil {
			return nil, nil, err
		}
		var acc Accepted
		var ids []string
		err = conditionally(r.Context(), "the user's", func(fresh bool) error {
			var err error
			acc, ids, err = h.store(r.Context(), op, ev, minted, fresh)
			return err
		})
		if err != nil {
			return nil, ids, err
		}
		return acc, nil, nil
	})
}

// conditionally runs store, a write whose events are conditional on their users' erasures
// (expectErasures), until JetStream no longer refuses a condition: after errSubjectBusy the
// same write again a moment later (busyWait), after errErasuresChanged the write decided anew
// from the log (fresh), at most maxConditionalTries times. whose names the users in the error
// of a write that did not get through.
func conditionally(ctx context.Context, whose string, store func(fresh bool) error) error {
	var busy busyWait
	for try := 1; ; {
		err := store(try > 1)
		switch {
		case errors.Is(err, errSubjectBusy) && busy.again(ctx):
			continue // another write of the user is being replicated: the same condition again
		case errors.Is(err, errErasuresChanged) && try < maxConditionalTries:
			try++
			continue // an erasure or re-creation of the user was stored meanwhile: decide again
		case errors.Is(err, errErasuresChanged), errors.Is(err, errSubjectBusy):
			return fmt.Errorf("%w: %s erasures changed, or other writes held the store, while the write was tried (%d times): %v",
				stream.ErrUnavailable, whose, try+busy.tries, err)
		}
		return err
	}
}

// errSubjectBusy: JetStream refused an event's condition on its user's erasures because
// another event with a condition on the same subject was still being stored (stream.ErrBusy:
// clustered streams check one at a time per subject). The condition may well hold: the write
// is tried again, unchanged, after a pause (busyWait).
var errSubjectBusy = errors.New("another write of the user is being stored")

// busyWait paces the tries of a write refused with errSubjectBusy: a short pause, doubling up
// to busyPauseMax, for at most busyWaitMax in all. On a three-node stream a write is
// replicated in a millisecond or two, so this is how many writes of one user a cluster stores
// at once: one after the other.
type busyWait struct {
	tries int
	start time.Time
}

const (
	busyPauseMin = 500 * time.Microsecond
	busyPauseMax = 20 * time.Millisecond
	busyWaitMax  = 5 * time.Second
)

// again waits before the next try; false when the time is up or ctx ended.
func (b *busyWait) again(ctx context.Context) bool {
	if b.tries == 0 {
		b.start = time.Now()
	}
	if time.Since(b.start) > busyWaitMax {
		return false
	}
	pause := min(busyPauseMax, busyPauseMin<<min(b.tries, 6))
	pause = pause/2 + rand.N(pause/2+1) // jitter: the writers that met must not meet again
	b.tries++
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errErasuresChanged: JetStream refused an event's condition on its user's erasures
// (expectErasures): the log holds an erasure or a re-creation the ingestor did not know.
var errErasuresChanged = errors.New("the user's erasures changed")

// store checks, seals and stores one command's event, and returns what command's endpoint
// answers (with the ids of the events an error leaves unconfirmed). fresh reads the user's
// erasures from the log instead of the cache (a retry after errErasuresChanged).
func (h *Handler) store(ctx context.Context, op string, ev *events.Event, minted Minted, fresh bool) (Accepted, []string, error) {
	ids := []string{ev.ID}
	checked, err := h.checkErasures(ctx, []*events.Event{ev}, func(int) string { return "" }, fresh)
	if ne := (*NotErasedError)(nil); errors.As(err, &ne) && ne.recreated() {
		acc, err := h.finishRecreation(ctx, ne, minted)
		return acc, nil, err
	}
	if err != nil {
		return Accepted{}, ids, err
	}
	msg, err := encode(ev, "")
	if err != nil {
		return Accepted{}, nil, err
	}
	if err := h.seal(ctx, ev, msg, checked[0]); err != nil {
		return Accepted{}, nil, err
	}
	if ev.Kind == events.KindUserErased {
		if err := h.destroyKeys(ctx, ev.User); err != nil {
			return Accepted{}, nil, err
		}
	}
	if ev.Kind == events.KindUserRecreated {
		acc, err := h.recreate(ctx, ev, msg, checked[0], minted)
		if err != nil {
			return Accepted{}, ids, err
		}
		return acc, nil, nil
	}
	cond := conditional([]*events.Event{ev})[0]
	if cond {
		if err := expectErasures(msg, ev.User, checked[0]); err != nil {
			return Accepted{}, nil, err
		}
	}
	stored, err := h.pub.PublishMsg(ctx, ev.ID, msg)
	if cond && errors.Is(err, stream.ErrBusy) {
		return Accepted{}, ids, fmt.Errorf("%w: %w", errSubjectBusy, err)
	}
	if cond && errors.Is(err, stream.ErrConflict) {
		h.erasures.forget(ev.User)
		return Accepted{}, ids, fmt.Errorf("%w: %w", errErasuresChanged, err)
	}
	if err != nil {
		return Accepted{}, ids, err
	}
	h.metrics.stored(string(ev.Kind), stored.Duplicate)
	h.logger.Debug("event stored", "op", op, "event_id", ev.ID, "sequence", stored.Sequence, "duplicate", stored.Duplicate)
	if ev.Kind == events.KindUserErased {
		h.erasures.forget(ev.User)
		if err := h.pub.PurgeTenant(ctx, ev.User, stored.Sequence); err != nil {
			return Accepted{}, ids, fmt.Errorf("erasure recorded, but purging the user's events failed (repeat the request; it is idempotent): %w", err)
		}
		if err := h.destroyKeys(ctx, ev.User); err != nil {
			return Accepted{}, ids, err
		}
		h.logger.Info("user erased", "sequence", stored.Sequence)
	}
	return Accepted{EventID: ev.ID, Sequence: stored.Sequence, Duplicate: stored.Duplicate, Minted: minted}, nil, nil
}

// batch serves POST /v1/batch: every command is validated and encoded before anything is
// sent, then all events are stored in one JetStream atomic batch, or none.
func (h *Handler) batch(w http.ResponseWriter, r *http.Request) (any, []string, error) {
	s, err := h.settings(r)
	if err != nil {
		return nil, nil, err
	}
	body, err := h.readBody(w, r, false)
	if err != nil {
		return nil, nil, err
	}
	cmds, err := DecodeBatch(body, h.cfg.MaxBatch)
	if err != nil {
		return nil, nil, err
	}
	if s.CorrelationID == "" {
		s.CorrelationID = events.NewID()
	}
	evs, err := BuildBatch(cmds, s)
	if err != nil {
		return nil, nil, err
	}
	for i, b := range evs {
		if err := h.authorize(r.Context(), cmds[i].Op(), b.Event.User); err != nil {
			return nil, nil, fmt.Errorf("commands[%d]: %w", i, err)
		}
	}
	all := make([]*events.Event, len(evs))
	ids := make([]string, len(evs))
	for i, b := range evs {
		all[i], ids[i] = b.Event, b.Event.ID
	}
	var stored []stream.Stored
	err = conditionally(r.Context(), "the users'", func(fresh bool) error {
		var err error
		stored, err = h.storeBatch(r.Context(), evs, all, ids, fresh)
		return err
	})
	if err != nil {
		if errors.Is(err, errNotAttempted) {
			return nil, nil, err
		}
		return nil, ids, err
	}
	out := BatchAccepted{BatchID: s.CorrelationID, Results: make([]BatchResult, len(evs))}
	for i, b := range evs {
		out.Results[i] = BatchResult{Op: cmds[i].Op(), Accepted: Accepted{EventID: ids[i], Sequence: stored[i].Sequence, Minted: b.Minted}}
		h.metrics.stored(string(b.Event.Kind), false)
	}
	out.Sequence = stored[len(stored)-1].Sequence
	for i, b := range evs {
		switch b.Event.Kind {
		case events.KindUserErased:
			if err := h.pub.PurgeTenant(r.Context(), b.Event.User, stored[i].Sequence); err != nil {
				return nil, ids, fmt.Errorf("batch stored, but purging an erased user's events failed (erase them again; it is idempotent): %w", err)
			}
			// Not when the batch re-creates the user after the erasure: the keys now are the
			// new life's, which its later commands were sealed with.
			if !recreatedAfter(evs[i+1:], b.Event.User) {
				if err := h.destroyKeys(r.Context(), b.Event.User); err != nil {
					return nil, ids, err
				}
			}
		case events.KindUserRecreated:
			if err := h.pub.PurgeRefused(r.Context(), b.Event.User, stored[i].Sequence); err != nil {
				return nil, ids, fmt.Errorf("batch stored, but purging the writes refused since a re-created user's erasure failed (re-create them again; it is idempotent): %w", err)
			}
		}
	}
	h.logger.Debug("batch stored", "batch_id", out.BatchID, "events", len(evs), "sequence", out.Sequence)
	return out, nil, nil
}

// errNotAttempted marks a batch's error found before anything was sent (its answer names no
// event ids).
var errNotAttempted = errors.New("nothing sent")

// storeBatch checks, seals and stores a batch's events in one atomic batch; fresh reads the
// users' erasures from the log instead of the cache (a retry after errErasuresChanged).
func (h *Handler) storeBatch(ctx context.Context, evs []Built, all []*events.Event, ids []string, fresh bool) ([]stream.Stored, error) {
	notSent := func(err error) error { return &batchError{err} }
	checked, err := h.checkErasures(ctx, all, func(i int) string { return fmt.Sprintf("commands[%d]", i) }, fresh)
	if err != nil {
		return nil, err
	}
	cond := conditional(all)
	msgs := make([]*nats.Msg, len(evs))
	sealCtx := withRecreating(ctx, all)
	for i, b := range evs {
		if msgs[i], err = encode(b.Event, fmt.Sprintf("commands[%d]", i)); err != nil {
			return nil, notSent(err)
		}
		if err := h.seal(sealCtx, b.Event, msgs[i], checked[i]); err != nil {
			if g := (*GoneError)(nil); errors.As(err, &g) {
				g.Field = fmt.Sprintf("commands[%d]", i)
			}
			return nil, notSent(err)
		}
		if b.Event.Kind == events.KindUserErased {
			if err := h.destroyKeys(ctx, b.Event.User); err != nil {
				return nil, notSent(err)
			}
		}
		if b.Event.Kind == events.KindUserRecreated {
			expectRecreation(msgs[i], checked[i])
		}
		if cond[i] {
			if err := expectErasures(msgs[i], b.Event.User, checked[i]); err != nil {
				return nil, notSent(err)
			}
		}
	}
	release, err := h.batches.acquire(h.batchKeys(ctx, evs))
	if err != nil {
		return nil, notSent(err)
	}
	if h.onBatchOpen != nil {
		h.onBatchOpen(ctx)
	}
	stored, err := h.pub.PublishBatchMsgs(ctx, ids, msgs)
	release()
	if errors.Is(err, stream.ErrBusy) && slices.Contains(cond, true) {
		return nil, fmt.Errorf("%w: %w", errSubjectBusy, err)
	}
	if errors.Is(err, stream.ErrConflict) && slices.Contains(cond, true) {
		for _, ev := range all {
			h.erasures.forget(ev.User)
		}
		return nil, fmt.Errorf("%w: %w", errErasuresChanged, err)
	}
	if err == nil {
		for _, ev := range all {
			if ev.Kind == events.KindUserErased || ev.Kind == events.KindUserRecreated {
				h.erasures.forget(ev.User)
			}
		}
	}
	return stored, err
}

// batchError is an error of storeBatch before anything was sent: it matches errNotAttempted
// and says what err says.
type batchError struct{ err error }

func (e *batchError) Error() string   { return e.err.Error() }
func (e *batchError) Unwrap() []error { return []error{e.err, errNotAttempted} }

// batchKeys are the shares a batch counts against (batchLimiter): its principal's when
// requests are authenticated; without authentication every caller is the same anonymous
// principal, so then each tenant the batch writes for. (Not both: a principal allowed to
// write for another's tenant could otherwise use up that tenant's share.)
func (h *Handler) batchKeys(ctx context.Context, evs []Built) []string {
	if h.auth != nil {
		if p, ok := auth.FromContext(ctx); ok {
			return []string{fmt.Sprintf("principal %q", p.Name)}
		}
	}
	keys := make([]string, 0, len(evs))
	for _, b := range evs {
		if b.Event.User == "" {
			keys = append(keys, "the shared tenant")
		} else {
			keys = append(keys, fmt.Sprintf("user %q", b.Event.User))
		}
	}
	return keys
}

// Built is one command's event and minted ids.
type Built struct {
	Event  *events.Event
	Minted Minted
}

// BuildBatch builds every command of a batch with the same settings; an error names the
// command (commands[i].field). Two commands of one batch cannot share an event id.
func BuildBatch(cmds []Command, s Settings) ([]Built, error) {
	out := make([]Built, len(cmds))
	seen := make(map[string]int, len(cmds))
	for i, c := range cmds {
		prefix := fmt.Sprintf("commands[%d]", i)
		ev, m, err := Build(c, s)
		if err != nil {
			return nil, prefixed(prefix, err)
		}
		if j, dup := seen[ev.ID]; dup {
			return nil, fieldErr(prefix+".event_id", "repeats the event id of commands[%d]", j)
		}
		seen[ev.ID] = i
		out[i] = Built{Event: ev, Minted: m}
	}
	return out, nil
}

// encode encodes a built event; what the event schema still refuses is bad input of field.
func encode(ev *events.Event, field string) (*nats.Msg, error) {
	msg, err := events.Encode(ev)
	switch {
	case err == nil:
		return msg, nil
	case errors.Is(err, events.ErrDataTooLarge):
		return nil, &FieldError{Field: orBody(field), Reason: "the event it makes is too large: " + err.Error(), err: errTooLarge}
	case errors.Is(err, events.ErrInvalidData):
		return nil, &FieldError{Field: orBody(field), Reason: err.Error()}
	}
	return nil, err
}

func orBody(field string) string {
	if field == "" {
		return bodyField
	}
	return field
}

// settings are the Build settings of one request.
func (h *Handler) settings(r *http.Request) (Settings, error) {
	s := Settings{
		MultiTenant: h.cfg.Common.MultiTenant,
		Source:      h.cfg.Source,
		Actor:       actor(r.Context()),
		Now:         h.now,
		Embedder:    h.embedder,
	}
	if c := r.Header.Get(CorrelationHeader); c != "" {
		if err := events.ValidateIdentifier(c); err != nil {
			return s, fieldErr(CorrelationHeader, "%v", err)
		}
		s.CorrelationID = c
	}
	return s, nil
}

// readBody reads the request body within MaxBodyBytes and checks it is JSON. An empty body is
// nil, allowed only when optional.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, optional bool) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !isJSON(ct) {
		return nil, &FieldError{Field: "Content-Type", Reason: fmt.Sprintf("%q is not supported: send application/json", clip(ct)), err: errUnsupportedMedia}
	}
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return nil, &FieldError{Field: bodyField, Reason: fmt.Sprintf("is %d bytes, at most %d allowed", r.ContentLength, h.cfg.MaxBodyBytes), err: errTooLarge}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &FieldError{Field: bodyField, Reason: fmt.Sprintf("is over %d bytes", h.cfg.MaxBodyBytes), err: errTooLarge}
		}
		return nil, fieldErr(bodyField, "could not be read: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil, nil
		}
		return nil, fieldErr(bodyField, "is empty: a JSON object is required")
	}
	if ct == "" {
		return nil, &FieldError{Field: "Content-Type", Reason: "is missing: send application/json", err: errUnsupportedMedia}
	}
	return body, nil
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// writeProblem answers err and returns the status code.
func (h *Handler) writeProblem(w http.ResponseWriter, r *http.Request, op string, err error, eventIDs []string) int {
	if auth.IsAuthError(err) {
		auth.WriteError(w, err)
		return authStatus(err)
	}
	var fe *FieldError
	p := Problem{Error: err.Error()}
	code := http.StatusInternalServerError
	switch {
	case errors.As(err, &fe):
		p.Field = fe.Field
		code = http.StatusBadRequest
		if errors.Is(err, errTooLarge) {
			code = http.StatusRequestEntityTooLarge
		} else if errors.Is(err, errUnsupportedMedia) {
			code = http.StatusUnsupportedMediaType
		}
	case errors.Is(err, ErrGone):
		code = http.StatusGone
		var g *GoneError
		if errors.As(err, &g) {
			p.Field = g.Field
		}
	case errors.Is(err, ErrNotErased):
		code = http.StatusConflict
		var ne *NotErasedError
		if errors.As(err, &ne) {
			p.Field = ne.Field
		}
	case errors.Is(err, stream.ErrConflict):
		code = http.StatusConflict
		p.Error = "another re-creation of the user was stored at the same time: nothing was stored; repeat the request"
		p.EventIDs = eventIDs
	case errors.Is(err, ErrTooManyBatches):
		code = http.StatusTooManyRequests
		w.Header().Set("Retry-After", fmt.Sprint(RetryAfterBatchSeconds))
	case errors.Is(err, stream.ErrTimeout):
		code = http.StatusServiceUnavailable
		p.Error = "the event store did not acknowledge in time: the events may or may not be stored; retrying with the same event_id (and ids) is safe"
		p.EventIDs = eventIDs
	case errors.Is(err, stream.ErrUnavailable), errors.Is(err, context.Canceled):
		code = http.StatusServiceUnavailable
		p.Error = "the event store is unavailable: nothing was stored; retry later"
		p.EventIDs = eventIDs
	case errors.Is(err, stream.ErrStreamFull):
		code = http.StatusInsufficientStorage
		p.Error = "the event store is full: nothing was stored"
	case errors.Is(err, stream.ErrDuplicateInBatch):
		code = http.StatusConflict
		p.Error = "the batch holds an event id the store already has: nothing of the batch was stored (a retried batch was stored the first time)"
		p.EventIDs = eventIDs
	case errors.Is(err, stream.ErrRejected):
		p.Error = "the event store refused the events: nothing was stored"
	default:
		p.Error = "internal error"
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", fmt.Sprint(RetryAfterSeconds))
	}
	if code >= 500 {
		h.logger.Warn("write failed", "op", op, "status", code, "route", r.Pattern, "err", err)
	}
	if err := app.WriteJSON(w, code, p); err != nil {
		h.logger.Error("problem not encodable", "op", op, "route", r.Pattern, "err", err)
		return http.StatusInternalServerError
	}
	return code
}
