package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
)

// Command turns a generated event into the ingest command an agent would send for it, with
// every id set by the caller (the ingestor accepts caller-chosen UUIDv7s), so the event the
// ingestor stores is the generated one.
func Command(e *events.Event) (ingest.Command, error) {
	switch d := e.Data.(type) {
	case events.UserUpserted:
		return &ingest.UpsertUser{EventID: e.ID, Identifier: d.Identifier, Attributes: d.Attributes}, nil
	case events.MessageAdded:
		return &ingest.AddMessage{EventID: e.ID, UserIdentifier: e.User, MessageID: d.MessageID, SessionID: d.SessionID,
			Role: d.Role, Content: d.Content, Timestamp: d.Timestamp, Metadata: d.Metadata, Title: d.Title}, nil
	case events.PreferenceAdded:
		return &ingest.AddPreference{EventID: e.ID, UserIdentifier: e.User, PreferenceID: d.PreferenceID, Category: d.Category,
			Preference: d.Preference, Context: d.Context, Confidence: d.Confidence, ValidFrom: d.ValidFrom,
			Metadata: d.Metadata, AppliesTo: d.AppliesTo}, nil
	case events.PreferenceSuperseded:
		return &ingest.SupersedePreference{EventID: e.ID, UserIdentifier: e.User, OldID: d.OldID, NewID: d.NewID, ValidUntil: d.ValidUntil}, nil
	case events.TraceStarted:
		return &ingest.StartTrace{EventID: e.ID, UserIdentifier: e.User, TraceID: d.TraceID, SessionID: d.SessionID, Task: d.Task, Metadata: d.Metadata}, nil
	case events.TraceStepAdded:
		return &ingest.AddTraceStep{EventID: e.ID, UserIdentifier: e.User, TraceID: d.TraceID, StepID: d.StepID, StepNumber: d.StepNumber,
			Thought: d.Thought, Action: d.Action, Observation: d.Observation}, nil
	case events.ToolCallRecorded:
		return &ingest.RecordToolCall{EventID: e.ID, UserIdentifier: e.User, TraceID: d.TraceID, StepID: d.StepID, ToolCallID: d.ToolCallID,
			ToolName: d.ToolName, Arguments: d.Arguments, Result: d.Result, Status: d.Status, DurationMS: d.DurationMS, Error: d.Error}, nil
	case events.TraceCompleted:
		return &ingest.CompleteTrace{EventID: e.ID, UserIdentifier: e.User, TraceID: d.TraceID, Outcome: d.Outcome, Success: d.Success}, nil
	}
	return nil, fmt.Errorf("no ingest command for %T", e.Data)
}

// route is the method and path of a command's single-command endpoint.
func route(c ingest.Command) (string, string) {
	switch c := c.(type) {
	case *ingest.UpsertUser:
		return http.MethodPut, "/v1/users/" + url.PathEscape(c.Identifier)
	case *ingest.AddMessage:
		return http.MethodPost, "/v1/messages"
	case *ingest.AddPreference:
		return http.MethodPost, "/v1/preferences"
	case *ingest.SupersedePreference:
		return http.MethodPost, "/v1/preferences/" + url.PathEscape(c.OldID) + "/supersede"
	case *ingest.StartTrace:
		return http.MethodPost, "/v1/traces"
	case *ingest.AddTraceStep:
		return http.MethodPost, "/v1/traces/" + url.PathEscape(c.TraceID) + "/steps"
	case *ingest.RecordToolCall:
		return http.MethodPost, "/v1/traces/" + url.PathEscape(c.TraceID) + "/tool-calls"
	case *ingest.CompleteTrace:
		return http.MethodPost, "/v1/traces/" + url.PathEscape(c.TraceID) + "/complete"
	}
	return "", ""
}

// eventSource hands out the events of an endless realistic mix over a fixed pool of users of
// one group, script after script, safe for concurrent use. A pool keeps the tenants a timed
// run writes for bounded, so purging them afterwards is cheap.
type eventSource struct {
	mu      sync.Mutex
	t       Tenants
	group   string
	pool    int
	next    int // next user script
	queue   []*events.Event
	written *tenantLog
}

func newEventSource(t Tenants, group string, pool int, written *tenantLog) *eventSource {
	written.used(group, pool)
	return &eventSource{t: t, group: group, pool: pool, written: written}
}

// Next returns the next event.
func (s *eventSource) Next() *events.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		// A few users' scripts interleaved, as concurrent agents write them; few, so that
		// every kind of event comes early even in a short run.
		const window = 8
		scripts := make([][]*events.Event, 0, window)
		for range window {
			scripts = append(scripts, userScript(s.t, s.t.User(s.group, s.next%s.pool), time.Now().UTC()))
			s.next++
		}
		for i := range EventsPerUser {
			for _, sc := range scripts {
				s.queue = append(s.queue, sc[i])
			}
		}
	}
	e := s.queue[0]
	s.queue = s.queue[1:]
	return e
}

// httpClient is a client with a connection pool large enough for every worker.
func httpClient(workers int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        workers + 16,
			MaxIdleConnsPerHost: workers + 16,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// accepted is the part of the ingestor's 202 answers the driver reads.
type accepted struct {
	EventID  string `json:"event_id"`
	Sequence uint64 `json:"sequence"`
}

// writer sends commands to the ingestor.
type writer struct {
	base   string
	client *http.Client
}

// send posts one command to its endpoint and returns the stream sequence it was stored at.
func (w *writer) send(ctx context.Context, cmd ingest.Command) (uint64, error) {
	method, path := route(cmd)
	body, err := json.Marshal(cmd)
	if err != nil {
		return 0, err
	}
	var a accepted
	if err := w.do(ctx, method, path, body, &a); err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return a.Sequence, nil
}

// batch posts commands to /v1/batch.
func (w *writer) batch(ctx context.Context, cmds []ingest.Command) (uint64, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"commands":[`)
	for i, c := range cmds {
		if i > 0 {
			buf.WriteByte(',')
		}
		entry, err := ingest.MarshalBatchEntry(c)
		if err != nil {
			return 0, err
		}
		buf.Write(entry)
	}
	buf.WriteString(`]}`)
	var a accepted
	if err := w.do(ctx, http.MethodPost, "/v1/batch", buf.Bytes(), &a); err != nil {
		return 0, fmt.Errorf("POST /v1/batch of %d: %w", len(cmds), err)
	}
	return a.Sequence, nil
}

func (w *writer) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("status %d: %s", resp.StatusCode, clip(string(b), 300))
	}
	return json.Unmarshal(b, out)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// requestPool is a pool of single-command requests made before a timed step, as the raw
// baselines' messages are: the driver shares the two cores with the services it measures, so
// making each request's script, texts and JSON inside the timed loop would charge the
// ingestor with the driver's work (the publish row's lesson, docs/BENCHMARKS.md, session 10).
// Each request is sent under a fresh event id, written over the template's, so none is a
// duplicate; the other ids repeat every len(reqs) requests, which the ingestor does not look
// at (the projector is stopped while the write scenarios run, and their events are purged).
type requestPool struct {
	reqs []pooledRequest
	next atomic.Uint64
}

type pooledRequest struct {
	method, path string
	body         []byte
	idAt         int // offset of the event id in body
}

func newRequestPool(src *eventSource, n int) (*requestPool, error) {
	p := &requestPool{reqs: make([]pooledRequest, 0, n)}
	for range n {
		ev := src.Next()
		cmd, err := Command(ev)
		if err != nil {
			return nil, err
		}
		body, err := json.Marshal(cmd)
		if err != nil {
			return nil, err
		}
		at := bytes.Index(body, []byte(`"event_id":"`+ev.ID+`"`))
		if at < 0 || len(ev.ID) != uuidLen {
			return nil, fmt.Errorf("bench: no event id %q in the body of a %s command", ev.ID, cmd.Op())
		}
		method, path := route(cmd)
		p.reqs = append(p.reqs, pooledRequest{method: method, path: path, body: body, idAt: at + len(`"event_id":"`)})
	}
	return p, nil
}

// uuidLen is the length of an event id in its text form.
const uuidLen = 36

// send posts the next request of the pool under a fresh event id.
func (p *requestPool) send(ctx context.Context, w *writer) error {
	r := p.reqs[int(p.next.Add(1)%uint64(len(p.reqs)))]
	body := slices.Clone(r.body)
	copy(body[r.idAt:r.idAt+uuidLen], events.NewID())
	var a accepted
	if err := w.do(ctx, r.method, r.path, body, &a); err != nil {
		return fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	return nil
}
