package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/audit"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/ui"
)

// The log reads: a user's stored events as the event log holds them — the CloudEvents
// envelope (id, source, actor, correlation, causation), when and at which sequence the stream
// stored it, and its data. The graph keeps when each fact was recorded (recorded_at,
// recorded_seq) but not who wrote it or with which correlation; the log does. They back the
// event panel of the timeline page (internal/ui, docs/timeline.md) and use the same message
// gets as a fate read (eventlog.go) — direct gets on MEM by sequence or by start time and the
// tenant's subjects — never a consumer, so the query service's NATS user needs nothing more.

// LoggedEvent is one stored event of a tenant.
type LoggedEvent struct {
	Sequence uint64    `json:"sequence"`  // the stream sequence: a receipt's consistency token
	StoredAt time.Time `json:"stored_at"` // when the stream stored it: its transaction time
	Kind     string    `json:"kind"`      // from the stored subject, e.g. preference_added
	EventID  string    `json:"event_id"`  // CloudEvents id
	Type     string    `json:"type"`      // CloudEvents type
	Source   string    `json:"source"`
	// Actor is the principal the writer named (the ingestor's authenticated principal, or
	// what an agent over NATS claims); Vouch says which.
	Actor         *string    `json:"actor"`
	CorrelationID *string    `json:"correlation_id"`
	CausationID   *string    `json:"causation_id"`
	Time          *time.Time `json:"time"` // the writer's event time
	// Data is the event's data as stored (JSON), null when it is not JSON.
	Data json.RawMessage `json:"data"`
	// Vouch is "claimed" when the event carries no ingestor vouch (its publisher's word only)
	// and "unchecked" when it carries one: the vouch is an HMAC, and a read-only service does
	// not hold the ingestors' signing keys to verify it (memctl audit --signing-key-file does).
	Vouch string `json:"vouch"`
	// Error is why the stored message does not decode as an event (the projector dead-letters
	// such messages); the other fields are then what its headers say. Null otherwise.
	Error *string `json:"error"`
}

// LogPage is one page of a tenant's stored events, in stream order.
type LogPage struct {
	Events []LoggedEvent `json:"events"`
	// NextAfter, when present, is the sequence to pass as After (the parameter after) for the
	// next page with the same filters; null when this page is the last.
	NextAfter *uint64 `json:"next_after"`
}

// LogQuery selects a tenant's stored events.
type LogQuery struct {
	Kind        events.Kind // "" for every kind
	StoredFrom  *time.Time  // inclusive bound on the stored time
	StoredUntil *time.Time  // inclusive bound on the stored time
	After       uint64      // only events stored at a higher sequence: a page's NextAfter
	Limit       int         // 1 to the reader's max limit; 0 is DefaultLimit
}

// logBatch is how many events one direct get of a log page asks for at most; logPageBytes
// bounds the data of one page (events are up to 1 MiB each): a page that reaches it ends
// early, with next_after set.
const (
	logBatch     = 256
	logPageBytes = 8 << 20
)

// rawEvent is a stored message with its data.
type rawEvent struct {
	StoredEvent
	Data []byte
}

// dataLog is the part of an EventLog that reads events with their data. StreamLog has it.
type dataLog interface {
	eventData(ctx context.Context, seq uint64) (*rawEvent, error)
	eventsFrom(ctx context.Context, req directRequest) ([]rawEvent, error)
	// codec opens sealed events (StreamLog: a ring on the data keys' bucket).
	codec() events.Codec
}

func (r *Reader) dataLog() (dataLog, error) {
	l, ok := r.events.(dataLog)
	if !ok {
		return nil, errors.New("query: log read without a stream log (WithEventLog(NewStreamLog(js)))")
	}
	return l, nil
}

// LogEvent returns identifier's stored event at seq ("" is the shared tenant). An event of
// another tenant, or none at seq (never stored, purged by an erasure), is ErrNotFound, so the
// answer tells nothing of other tenants. NATS not answering is ErrLogUnavailable.
func (r *Reader) LogEvent(ctx context.Context, identifier string, seq uint64) (*LoggedEvent, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	if seq == 0 || seq > math.MaxInt64 {
		return nil, badArg("sequence", "%d is not a stream sequence: want 1 to %d", seq, int64(math.MaxInt64))
	}
	l, err := r.dataLog()
	if err != nil {
		return nil, err
	}
	ev, err := l.eventData(ctx, seq)
	if err != nil {
		return nil, err
	}
	if ev == nil || !ownedBy(ev.Subject, owner) {
		return nil, &logNotFoundError{Sequence: seq}
	}
	e := loggedEvent(ctx, l.codec(), ev)
	return &e, nil
}

// Log returns a page of identifier's stored events in stream order ("" is the shared
// tenant): of one kind when q.Kind is set, stored within q's bounds, after q.After.
func (r *Reader) Log(ctx context.Context, identifier string, q LogQuery) (*LogPage, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	if q.Kind != "" && !q.Kind.Valid() {
		return nil, badArg("kind", "%q is not an event kind", clip(string(q.Kind)))
	}
	if q.Limit == 0 {
		q.Limit = min(DefaultLimit, r.maxLimit)
	}
	if q.Limit < 1 || q.Limit > r.maxLimit {
		return nil, badArg("limit", "%d is out of range: want 1 to %d", q.Limit, r.maxLimit)
	}
	if q.After > math.MaxInt64-1 {
		return nil, badArg("after", "%d is not a stream sequence", q.After)
	}
	l, err := r.dataLog()
	if err != nil {
		return nil, err
	}
	filter := events.SubjectRoot + "." + owner + ".>"
	if q.Kind != "" {
		filter = events.SubjectRoot + "." + owner + "." + string(q.Kind) + ".*"
	}
	req := directRequest{Seq: max(q.After+1, 1), NextFor: filter}
	if q.After == 0 && q.StoredFrom != nil {
		req = directRequest{StartTime: q.StoredFrom, NextFor: filter}
	}
	page := &LogPage{Events: []LoggedEvent{}}
	size := 0
	for {
		// One more than the page holds tells whether another page follows.
		req.Batch, req.MaxBytes = min(logBatch, q.Limit+1-len(page.Events)), searchBatchBytes
		msgs, err := l.eventsFrom(ctx, req)
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			return page, nil
		}
		for i := range msgs {
			ev := &msgs[i]
			if q.StoredUntil != nil && ev.Stored.After(*q.StoredUntil) {
				return page, nil
			}
			if !ownedBy(ev.Subject, owner) || (q.StoredFrom != nil && ev.Stored.Before(*q.StoredFrom)) {
				continue
			}
			if len(page.Events) == q.Limit || (len(page.Events) > 0 && size+len(ev.Data) > logPageBytes) {
				next := page.Events[len(page.Events)-1].Sequence
				page.NextAfter = &next
				return page, nil
			}
			size += len(ev.Data)
			page.Events = append(page.Events, loggedEvent(ctx, l.codec(), ev))
		}
		req = directRequest{Seq: msgs[len(msgs)-1].Sequence + 1, NextFor: filter}
	}
}

// loggedEvent reads a stored message: opened (a sealed event, with codec) and decoded as the
// projector decodes it, or, when it does not open or decode, what its headers say with the
// reason (a shredded event's data is null).
func loggedEvent(ctx context.Context, codec events.Codec, stored *rawEvent) LoggedEvent {
	_, kind, _ := events.ParseSubject(stored.Subject)
	e := LoggedEvent{Sequence: stored.Sequence, StoredAt: stored.Stored, Kind: string(kind), Vouch: audit.VouchClaimed}
	if stored.Header.Get(stream.VouchHeader) != "" {
		e.Vouch = audit.VouchUnchecked
	}
	ev := *stored
	h, d, err := codec.Open(ctx, stored.Subject, stored.Header, stored.Data)
	if err == nil {
		ev.Header, ev.Data = h, d
	} else {
		ev.Data = nil
	}
	if json.Valid(ev.Data) {
		e.Data = json.RawMessage(ev.Data)
	} else {
		e.Data = json.RawMessage("null")
	}
	var dec *events.Event
	if err == nil {
		dec, err = events.Decode(ev.Subject, ev.Header, ev.Data)
	}
	if err != nil {
		msg := err.Error()
		e.Error = &msg
		e.EventID, e.Type, e.Source = ev.Header.Get("ce-id"), ev.Header.Get("ce-type"), ev.Header.Get("ce-source")
		e.Actor = optional(ev.Header.Get("ce-" + events.ExtActor))
		e.CorrelationID = optional(ev.Header.Get("ce-" + events.ExtCorrelation))
		e.CausationID = optional(ev.Header.Get("ce-" + events.ExtCausation))
		if t, err := time.Parse(time.RFC3339Nano, ev.Header.Get("ce-time")); err == nil {
			t = t.UTC()
			e.Time = &t
		}
		return e
	}
	t := dec.Time
	e.EventID, e.Type, e.Source, e.Time = dec.ID, dec.Kind.Type(), dec.Source, &t
	e.Actor, e.CorrelationID, e.CausationID = optional(dec.Actor), optional(dec.CorrelationID), optional(dec.CausationID)
	return e
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// logNotFoundError is a log read's 404: the tenant's log holds no event at Sequence.
type logNotFoundError struct{ Sequence uint64 }

func (e *logNotFoundError) Error() string {
	return fmt.Sprintf("no event at sequence %d", e.Sequence)
}

// Unwrap makes every logNotFoundError match ErrNotFound.
func (e *logNotFoundError) Unwrap() error { return ErrNotFound }

// eventData implements dataLog: the memory stream's message at seq with its data, nil when
// there is none.
func (l *StreamLog) eventData(ctx context.Context, seq uint64) (*rawEvent, error) {
	msg, err := l.msgAt(ctx, seq)
	if msg == nil || err != nil {
		return nil, err
	}
	return &rawEvent{StoredEvent: storedEvent(msg), Data: msg.Data}, nil
}

// eventsFrom implements dataLog: one batched direct get (as directBatch), keeping the data.
func (l *StreamLog) eventsFrom(ctx context.Context, req directRequest) ([]rawEvent, error) {
	nc := l.js.Conn()
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("%w: direct get from %s: %w", ErrLogUnavailable, stream.MemoryStream, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishMsg(&nats.Msg{Subject: directGetAPI + stream.MemoryStream, Reply: inbox, Data: body}); err != nil {
		return nil, fmt.Errorf("%w: direct get from %s: %w", ErrLogUnavailable, stream.MemoryStream, err)
	}
	var out []rawEvent
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: direct get from %s: %w", ErrLogUnavailable, stream.MemoryStream, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204", "404":
			return out, nil
		default:
			return nil, fmt.Errorf("%w: direct get from %s: status %s %s", ErrLogUnavailable, stream.MemoryStream, status, m.Header.Get("Description"))
		}
		ev, err := directEvent(m)
		if err != nil {
			return nil, fmt.Errorf("direct get from %s: %w", stream.MemoryStream, err)
		}
		out = append(out, rawEvent{StoredEvent: *ev, Data: m.Data})
	}
}

// Query parameters of the log reads.
var (
	logParams      = []string{"kind", "stored_from", "stored_until", "after", "limit"}
	logEventParams []string
)

// parseLogQuery reads the parameters of GET .../log.
func parseLogQuery(v url.Values, maxLimit int) (LogQuery, error) {
	var q LogQuery
	if err := checkParams(v, logParams); err != nil {
		return q, err
	}
	if v.Has("kind") {
		q.Kind = events.Kind(v.Get("kind"))
		if !q.Kind.Valid() {
			return q, badArg("kind", "%q is not an event kind (docs/events.md), e.g. preference_added", clip(string(q.Kind)))
		}
	}
	var err error
	if q.StoredFrom, err = optTime(v, "stored_from"); err != nil {
		return q, err
	}
	if q.StoredUntil, err = optTime(v, "stored_until"); err != nil {
		return q, err
	}
	if v.Has("after") {
		s := v.Get("after")
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > math.MaxInt64-1 {
			return q, badArg("after", "%q is not a stream sequence: want an integer from 0 (a page's next_after)", clip(s))
		}
		q.After = n
	}
	q.Limit, err = parseLimit(v, maxLimit)
	return q, err
}

// parseSequence reads the {sequence} of GET .../log/{sequence}.
func parseSequence(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, badArg("sequence", "%q is not a stream sequence: want an integer from 1 to %d", clip(s), int64(math.MaxInt64))
	}
	return n, nil
}

func (h *Handler) logPage(r *http.Request, identifier string) (readFunc, error) {
	q, err := parseLogQuery(r.URL.Query(), h.maxLimit)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return h.reader.Log(ctx, identifier, q)
	}, nil
}

func (h *Handler) logEvent(r *http.Request, identifier string) (readFunc, error) {
	seq, err := parseSequence(r.PathValue("sequence"))
	if err != nil {
		return nil, err
	}
	if err := checkParams(r.URL.Query(), logEventParams); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return h.reader.LogEvent(ctx, identifier, seq)
	}, nil
}

// logRoute is route (http.go) for the log reads, with one difference in the answer
// (answerLog): a read that runs out of time is the event log not answering (503), not Neo4j.
func (h *Handler) logRoute(name string, ep endpoint) http.Handler {
	return h.routeWith(name, ep, h.answerLog)
}

func (h *Handler) answerLog(w http.ResponseWriter, r *http.Request, read readFunc) int {
	rctx, cancel := context.WithTimeout(r.Context(), h.readTimeout)
	defer cancel()
	begun := time.Now()
	body, err := read(rctx)
	w.Header().Add("Server-Timing", serverTiming("read", time.Since(begun)))
	if err != nil {
		if rctx.Err() != nil && r.Context().Err() == nil && !errors.Is(err, ErrLogUnavailable) && !errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%w: no answer within %s: %w", ErrLogUnavailable, h.readTimeout, err)
		}
		return h.writeError(w, r, err)
	}
	if err := app.WriteJSON(w, http.StatusOK, body); err != nil {
		h.logger.Error("read not encodable", "route", r.Pattern, "err", err)
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

// registerUI mounts the log reads (with the user's read scope, as every read) and the
// timeline page's static shell (internal/ui), which reads everything it shows from this API
// with the caller's credential.
func (h *Handler) registerUI(mux *http.ServeMux) {
	mux.Handle("GET /v1/users/{identifier}/log", h.guard(h.logRoute("log", h.logPage)))
	mux.Handle("GET /v1/users/{identifier}/log/{sequence}", h.guard(h.logRoute("log_event", h.logEvent)))
	for _, rt := range []struct {
		path string
		next http.Handler
	}{
		{"/log", h.logRoute("shared_log", h.logPage)},
		{"/log/{sequence}", h.logRoute("shared_log_event", h.logEvent)},
	} {
		if !h.shared {
			rt.next = http.HandlerFunc(multiTenantOn)
		}
		mux.Handle("GET "+SharedPrefix+rt.path, h.guard(rt.next))
	}
	ui.Register(mux)
}
