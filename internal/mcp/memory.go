package mcp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
)

// Memory is how the tools reach Engram: through the Go client, over the ingestor's and the
// query service's HTTP APIs (so every write is an event in the log, validated and authorized
// as any other). Each call gets a client carrying the caller's credential; the consistency
// tokens of the writes so far are kept here, per user, so that a read in a later call waits
// for the writes of earlier ones (read-your-writes across tool calls).
type Memory struct {
	ingestorURL, queryURL string
	http                  *http.Client
	// token is the configured credential (stdio); passThrough: use each HTTP request's own.
	token       string
	passThrough bool
	user        string
	multiTenant bool
	applyWait   time.Duration
	callTimeout time.Duration
	seen        *tokens
	logger      *slog.Logger
}

// NewMemory returns the Memory of c.
func NewMemory(c Config, logger *slog.Logger) *Memory {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Memory{
		ingestorURL: c.IngestorURL,
		queryURL:    c.QueryURL,
		http:        &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		token:       c.Token,
		passThrough: c.Transport == TransportHTTP,
		user:        c.User,
		multiTenant: c.MultiTenant,
		applyWait:   c.ApplyWait,
		callTimeout: c.CallTimeout,
		seen:        newTokens(100_000),
		logger:      logger,
	}
}

// settings are the command settings the client validates with, for tools that validate
// several commands before sending the first.
func (m *Memory) settings() ingest.Settings { return ingest.Settings{MultiTenant: m.multiTenant} }

// call is one tool call's (or resource read's, or prompt's) access to Engram.
type call struct {
	m    *Memory
	c    *client.Client
	user string
}

// begin resolves the user of a call (the argument, or the configured one) and returns the
// client carrying the caller's credential. A bad user is an *ArgError naming
// user_identifier; nothing has been sent then.
func (m *Memory) begin(extra *sdk.RequestExtra, userArg string) (*call, error) {
	user, err := m.resolveUser(userArg)
	if err != nil {
		return nil, err
	}
	token := m.token
	if m.passThrough {
		token = ""
		if extra != nil && extra.Header != nil {
			if h := extra.Header.Get("Authorization"); h != "" {
				if token, err = auth.ParseAuthorization(h); err != nil {
					return nil, &AuthError{Msg: "the Authorization header of the request is not usable: " + err.Error()}
				}
			}
		}
	}
	c, err := client.New(
		client.WithHTTP(m.ingestorURL, m.queryURL),
		client.WithHTTPClient(m.http),
		client.WithMultiTenant(m.multiTenant),
		client.WithBearerToken(token))
	if err != nil {
		return nil, err
	}
	return &call{m: m, c: c, user: user}, nil
}

// resolveUser applies the tenancy rules: the configured user when there is one (a different
// argument is refused), else the argument, validated; without either the multi-tenant
// guardrail refuses and, with it off, the shared tenant ("") is meant.
func (m *Memory) resolveUser(arg string) (string, error) {
	switch {
	case m.user != "" && arg != "" && arg != m.user:
		return "", &ArgError{Arg: "user_identifier", Reason: "this server acts for one configured user only (ENGRAM_USER); omit user_identifier"}
	case m.user != "":
		return m.user, nil
	case arg != "":
		if err := events.ValidateIdentifier(arg); err != nil {
			return "", &ArgError{Arg: "user_identifier", Reason: err.Error()}
		}
		return arg, nil
	case m.multiTenant:
		return "", &ArgError{Arg: "user_identifier", Reason: "required: multi-tenant mode is on (MULTI_TENANT=true), so every call names the user it is about"}
	}
	return "", nil
}

// readOpts are the options of a read about the call's user: wait for the writes this
// server made for that user.
func (c *call) readOpts(opts ...client.ReadOption) []client.ReadOption {
	if seq := c.m.seen.get(c.user); seq > 0 {
		opts = append(opts, client.AtLeast(seq))
	}
	return opts
}

// writeOpts are the options of a write for the call's user.
func (c *call) writeOpts(opts ...client.WriteOption) []client.WriteOption {
	if c.user != "" {
		opts = append(opts, client.ForUser(c.user))
	}
	return opts
}

// Write is what a tool answers about one write it made.
type Write struct {
	EventID  string `json:"event_id" jsonschema:"the id of the event in Engram's log"`
	Sequence uint64 `json:"sequence" jsonschema:"the log's sequence of the event (a consistency token)"`
	Status   string `json:"status" jsonschema:"applied: projected, every read shows it; stored: in the log but not yet applied when this answer was sent (reads through this server still wait for it)"`
}

// Write statuses.
const (
	StatusApplied = "applied"
	StatusStored  = "stored"
)

// settle notes the write's consistency token and waits (at most MCP_APPLY_WAIT) for the
// projector's decision. A write the projector refused (dead-lettered, or dropped for an
// erased user) is an error: nothing of it was applied. A write whose decision is not known in
// time, or cannot be read (a credential without the read scope), is "stored".
func (c *call) settle(ctx context.Context, r client.Receipt) (Write, error) {
	c.m.seen.note(r.User, r.Sequence)
	w := Write{EventID: r.EventID, Sequence: r.Sequence, Status: StatusStored}
	if c.m.applyWait <= 0 || r.Sequence == 0 {
		return w, nil
	}
	wctx, cancel := context.WithTimeout(ctx, c.m.applyWait)
	defer cancel()
	_, err := c.c.WaitApplied(wctx, r)
	switch {
	case err == nil:
		w.Status = StatusApplied
	case errors.Is(err, client.ErrRejected), errors.Is(err, client.ErrGone):
		return w, err
	default:
		c.m.logger.Debug("write not confirmed applied", "event_id", r.EventID, "err", err)
	}
	return w, nil
}

// tokens keeps the highest consistency token per user, bounded: beyond max users the map is
// cleared (a read then merely does not wait for an earlier call's write).
type tokens struct {
	mu  sync.Mutex
	max int
	m   map[string]uint64
}

func newTokens(max int) *tokens { return &tokens{max: max, m: map[string]uint64{}} }

func (t *tokens) note(user string, seq uint64) {
	if seq == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[user]; !ok && len(t.m) >= t.max {
		clear(t.m)
	}
	if seq > t.m[user] {
		t.m[user] = seq
	}
}

func (t *tokens) get(user string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[user]
}
