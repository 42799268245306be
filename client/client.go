package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
)

// Client talks to one Engram deployment. It is safe for concurrent use.
type Client struct {
	Users     *Users
	ShortTerm *ShortTerm
	LongTerm  *LongTerm
	Reasoning *Reasoning

	o        options
	settings ingest.Settings
	async    *ingest.AsyncPublisher

	mu     sync.Mutex
	tokens map[string]uint64 // user -> highest consistency token this client wrote
	owners *owners           // preference/trace id -> user, for SupersedePreference and steps
}

// Option configures a Client.
type Option func(*options) error

type options struct {
	ingestURL, queryURL string
	http                *http.Client
	nc                  *nats.Conn
	maxInFlight         int
	multiTenant         bool
	readYourWrites      bool
	token               string
	source              string
	retries             int
}

// WithHTTP sets the ingestor's and the query service's base URLs, e.g.
// http://127.0.0.1:8080 and http://127.0.0.1:8081.
func WithHTTP(ingestorURL, queryURL string) Option {
	return func(o *options) error {
		for _, u := range []string{ingestorURL, queryURL} {
			if u == "" {
				continue
			}
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				return fmt.Errorf("WithHTTP: %q is not an http(s) URL", u)
			}
		}
		o.ingestURL, o.queryURL = strings.TrimRight(ingestorURL, "/"), strings.TrimRight(queryURL, "/")
		return nil
	}
}

// WithHTTPClient replaces http.DefaultClient.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("WithHTTPClient: nil client")
		}
		o.http = c
		return nil
	}
}

// WithNATS sends writes straight to JetStream over nc, asynchronously, with at most
// maxInFlight unacknowledged events (0: 256). Writes then return as soon as they are sent;
// Wait (or Close) reports every event that failed. Reads still use the query service.
func WithNATS(nc *nats.Conn, maxInFlight int) Option {
	return func(o *options) error {
		if nc == nil {
			return errors.New("WithNATS: nil connection")
		}
		if maxInFlight < 0 {
			return fmt.Errorf("WithNATS: maxInFlight %d is negative", maxInFlight)
		}
		o.nc, o.maxInFlight = nc, maxInFlight
		return nil
	}
}

// WithMultiTenant is the seed's memory.multi_tenant: every write must name its user.
func WithMultiTenant(on bool) Option {
	return func(o *options) error { o.multiTenant = on; return nil }
}

// WithReadYourWrites (default on) makes reads about a user wait until this client's writes
// for that user are projected.
func WithReadYourWrites(on bool) Option {
	return func(o *options) error { o.readYourWrites = on; return nil }
}

// WithBearerToken sends Authorization: Bearer token (a JWT or an API key, docs/security.md).
func WithBearerToken(token string) Option {
	return func(o *options) error { o.token = token; return nil }
}

// WithRetries sets how often a write answered 503 is retried with the same event id (safe:
// JetStream stores it once); default 2.
func WithRetries(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("WithRetries: %d is negative", n)
		}
		o.retries = n
		return nil
	}
}

// New returns a Client. It needs WithHTTP, and optionally WithNATS for writes.
func New(opts ...Option) (*Client, error) {
	o := options{http: http.DefaultClient, readYourWrites: true, retries: 2, source: "/engram/client"}
	var errs []error
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if o.queryURL == "" {
		errs = append(errs, errors.New("WithHTTP: the query service URL is required"))
	}
	if o.ingestURL == "" && o.nc == nil {
		errs = append(errs, errors.New("WithHTTP: the ingestor URL is required unless WithNATS is given"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := &Client{o: o, tokens: map[string]uint64{}, owners: newOwners(100_000)}
	c.settings = ingest.Settings{MultiTenant: o.multiTenant, Source: o.source}
	if o.nc != nil {
		var aopts []ingest.AsyncOption
		if o.maxInFlight > 0 {
			aopts = append(aopts, ingest.WithMaxInFlight(o.maxInFlight))
		}
		a, err := ingest.NewAsyncPublisher(o.nc, c.settings, aopts...)
		if err != nil {
			return nil, err
		}
		c.async = a
	}
	c.Users = &Users{c: c}
	c.ShortTerm = &ShortTerm{c: c}
	c.LongTerm = &LongTerm{c: c}
	c.Reasoning = &Reasoning{c: c}
	return c, nil
}

// Wait blocks until every write sent over NATS is acknowledged, and returns one error per
// event that failed (errors.Join). Over HTTP it returns nil at once.
func (c *Client) Wait(ctx context.Context) error {
	if c.async == nil {
		return nil
	}
	return c.async.Wait(ctx)
}

// Close waits for pending NATS writes (Wait). It does not close a connection it was given.
func (c *Client) Close(ctx context.Context) error { return c.Wait(ctx) }

// Receipt says where a write was stored. Fate and WaitApplied tell what became of it.
type Receipt struct {
	EventID string
	// User is the user the write was for; "" for the shared tenant.
	User string
	// Sequence is the stream sequence (the consistency token); 0 for writes sent over NATS,
	// which are acknowledged later.
	Sequence  uint64
	Duplicate bool
}

// write validates cmd, mints its ids, and sends it.
func (c *Client) write(ctx context.Context, op string, cmd ingest.Command, method, path string) (ingest.Minted, Receipt, error) {
	ev, minted, err := ingest.Build(cmd, c.settings)
	if err != nil {
		if isNoUser(err) {
			return minted, Receipt{}, fmt.Errorf("engram %s: %w", op, ErrUserRequired)
		}
		return minted, Receipt{}, fmt.Errorf("engram %s: %w: %w", op, ErrInvalid, err)
	}
	if c.async != nil {
		if err := c.async.PublishEvent(ctx, ev); err != nil {
			return minted, Receipt{}, fmt.Errorf("engram %s: %w", op, err)
		}
		return minted, Receipt{EventID: ev.ID, User: ev.User}, nil
	}
	// Send the command with the ids Build minted, so that a retry is the same event.
	setIDs(cmd, ev.ID, minted)
	var acc ingest.Accepted
	if err := c.do(ctx, op, method, c.o.ingestURL+path, cmd, &acc, c.o.retries); err != nil {
		return minted, Receipt{}, err
	}
	c.noteToken(ev.User, acc.Sequence)
	return minted, Receipt{EventID: acc.EventID, User: ev.User, Sequence: acc.Sequence, Duplicate: acc.Duplicate}, nil
}

func isNoUser(err error) bool { return errors.Is(err, events.ErrNoUser) }

func (c *Client) noteToken(user string, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq > c.tokens[user] {
		c.tokens[user] = seq
	}
}

func (c *Client) tokenFor(user string) uint64 {
	if !c.o.readYourWrites {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens[user]
}

// read GETs a query-service path about user into out.
func (c *Client) read(ctx context.Context, op, user, path string, q url.Values, out any) error {
	if q == nil {
		q = url.Values{}
	}
	if tok := c.tokenFor(user); tok > 0 {
		if given, _ := strconv.ParseUint(q.Get("consistency"), 10, 64); tok > given {
			q.Set("consistency", strconv.FormatUint(tok, 10))
		}
	}
	u := c.o.queryURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return c.do(ctx, op, http.MethodGet, u, nil, out, 0)
}

// post POSTs body to a query-service read about user (a vector search), with its
// consistency token as read does.
func (c *Client) post(ctx context.Context, op, user, path string, q url.Values, body, out any) error {
	if tok := c.tokenFor(user); tok > 0 {
		if given, _ := strconv.ParseUint(q.Get("consistency"), 10, 64); tok > given {
			q.Set("consistency", strconv.FormatUint(tok, 10))
		}
	}
	u := c.o.queryURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return c.do(ctx, op, http.MethodPost, u, body, out, 0)
}

func (c *Client) do(ctx context.Context, op, method, u string, body, out any, retries int) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("engram %s: %w", op, err)
		}
	}
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, op, method, u, payload, out)
		if err == nil || attempt >= retries || !errors.Is(err, ErrUnavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (c *Client) once(ctx context.Context, op, method, u string, payload []byte, out any) error {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("engram %s: %w", op, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.o.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.token)
	}
	resp, err := c.o.http.Do(req)
	if err != nil {
		return fmt.Errorf("engram %s: %w: %w", op, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("engram %s: read answer: %w", op, err)
	}
	if resp.StatusCode >= 300 {
		var p struct {
			Error string `json:"error"`
			Field string `json:"field"`
		}
		_ = json.Unmarshal(raw, &p)
		if p.Error == "" {
			p.Error = strings.TrimSpace(string(raw))
		}
		return &APIError{Op: op, Status: resp.StatusCode, Msg: p.Error, Field: p.Field}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("engram %s: decode answer: %w", op, err)
	}
	return nil
}

// setIDs writes the event id and the minted ids back into the command.
func setIDs(cmd ingest.Command, eventID string, m ingest.Minted) {
	switch c := cmd.(type) {
	case *ingest.UpsertUser:
		c.EventID = eventID
	case *ingest.EraseUser:
		c.EventID = eventID
	case *ingest.RecreateUser:
		c.EventID = eventID
	case *ingest.AddMessage:
		c.EventID, c.MessageID = eventID, m.MessageID
	case *ingest.AddPreference:
		c.EventID, c.PreferenceID = eventID, m.PreferenceID
	case *ingest.SupersedePreference:
		c.EventID = eventID
	case *ingest.StartTrace:
		c.EventID, c.TraceID = eventID, m.TraceID
	case *ingest.AddTraceStep:
		c.EventID, c.StepID = eventID, m.StepID
	case *ingest.RecordToolCall:
		c.EventID, c.ToolCallID = eventID, m.ToolCallID
	case *ingest.CompleteTrace:
		c.EventID = eventID
	case *ingest.AddEntity:
		c.EventID = eventID
	case *ingest.AddRelationship:
		c.EventID = eventID
	case *ingest.MergeEntities:
		c.EventID = eventID
	case *ingest.AddFact:
		c.EventID, c.FactID = eventID, m.FactID
	case *ingest.DeleteMessage:
		c.EventID = eventID
	case *ingest.ClearSession:
		c.EventID = eventID
	case *ingest.DeleteEntity:
		c.EventID = eventID
	}
}

// owners remembers which user owns the preferences and traces this client created, so that
// SupersedePreference(old, new) and AddStep(trace) work without ForUser, as in the seed.
// Bounded: the oldest entries are forgotten first.
type owners struct {
	mu    sync.Mutex
	max   int
	m     map[string]string
	order []string
}

func newOwners(max int) *owners { return &owners{max: max, m: map[string]string{}} }

func (o *owners) put(id, user string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.m[id]; !ok {
		o.order = append(o.order, id)
	}
	o.m[id] = user
	for len(o.order) > o.max {
		delete(o.m, o.order[0])
		o.order = o.order[1:]
	}
}

func (o *owners) get(id string) (string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	u, ok := o.m[id]
	return u, ok
}
