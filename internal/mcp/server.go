package mcp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Name is the server's name in the MCP handshake.
const Name = "engram"

// Version is the server's version in the MCP handshake.
var Version = "v0.1.0"

// instructions tell the model, at initialization, how to use the memory.
const instructions = `Engram is the long-term memory of the users you serve: conversations, preferences and reasoning traces, kept per user.
- At the start of a conversation, load what is known with memory_get_context (or the prompt memory-conversation).
- Store what should be remembered as it happens: messages with memory_add_messages, preferences the user states with memory_add_preference (tie them to what they concern with applies_to).
- When the user changes their mind, add the new preference and call memory_supersede_preference(old_id, new_id); do not leave contradicting preferences active.
- Recall with memory_get_preferences (as_of / known_at look back in time), memory_get_conversation, memory_search (full text by default: whole words, any of them; mode=vector searches by meaning, for memories worded differently, when Engram has an embedder).
- Before a longer task, memory_get_similar_traces finds how similar tasks went. Record your reasoning on it: memory_start_trace, memory_record_step (with its tool call), memory_complete_trace.
Tool errors name the argument that is wrong; nothing is written by a call that fails validation.`

// NewServer returns the MCP server of Engram's memory: the tools, the resources and the
// prompt, all served through m. erasure adds memory_erase_user.
func NewServer(m *Memory, erasure bool, metrics *Metrics, logger *slog.Logger) *sdk.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := sdk.NewServer(&sdk.Implementation{Name: Name, Title: "Engram memory", Version: Version},
		&sdk.ServerOptions{Instructions: instructions, Logger: logger})
	s.AddReceivingMiddleware(recoverPanics(logger), argumentErrors(metrics))
	r := &registry{s: s, m: m, metrics: metrics, logger: logger}
	addMessageTools(r)
	addPreferenceTools(r)
	addTraceTools(r)
	addSearchTools(r)
	addEntityTools(r)
	addMentionTools(r)
	addDeletionTools(r)
	addUserTools(r, erasure)
	addResources(s, m)
	addPrompts(s, m)
	return s
}

type registry struct {
	s       *sdk.Server
	m       *Memory
	metrics *Metrics
	logger  *slog.Logger
}

// userArg is embedded by every tool input: the user the call is about.
type userArg interface{ userIdentifier() string }

// UserArg is the user_identifier argument of every tool.
type UserArg struct {
	UserIdentifier string `json:"user_identifier,omitempty" jsonschema:"the user this call is about"`
}

func (u UserArg) userIdentifier() string { return u.UserIdentifier }

// Tool annotations: hints for hosts about what a tool does.
var (
	readOnly = &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: new(false)}
	writes   = &sdk.ToolAnnotations{DestructiveHint: new(false), OpenWorldHint: new(false)}
	upserts  = &sdk.ToolAnnotations{DestructiveHint: new(false), IdempotentHint: true, OpenWorldHint: new(false)}
	destroys = &sdk.ToolAnnotations{DestructiveHint: new(true), OpenWorldHint: new(false)}
	// merges: a merge cannot be undone, and merging again changes nothing.
	merges = &sdk.ToolAnnotations{DestructiveHint: new(true), IdempotentHint: true, OpenWorldHint: new(false)}
)

// add registers a tool whose handler runs with the call's user and credential resolved,
// within MCP_CALL_TIMEOUT, and whose errors reach the model as tool errors (IsError) saying
// which argument is wrong or how Engram refused.
func add[In userArg, Out any](r *registry, t *sdk.Tool, schema *jsonschema.Schema, run func(context.Context, *call, In) (Out, error)) {
	t.InputSchema = r.m.withUser(schema)
	name := t.Name
	sdk.AddTool(r.s, t, func(ctx context.Context, req *sdk.CallToolRequest, in In) (*sdk.CallToolResult, Out, error) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(ctx, r.m.callTimeout)
		defer cancel()
		var out Out
		c, err := r.m.begin(req.Extra, in.userIdentifier())
		if err == nil {
			out, err = run(ctx, c, in)
		}
		err = toolError(err, same)
		outcome := outcomeOf(err)
		r.metrics.observe(name, outcome, time.Since(start))
		if err != nil {
			r.logger.Info("tool call refused", "tool", name, "outcome", outcome, "duration", time.Since(start))
			r.logger.Debug("tool call refused", "tool", name, "err", err)
			var zero Out
			return nil, zero, err
		}
		r.logger.Debug("tool call", "tool", name, "duration", time.Since(start))
		return nil, out, nil
	})
}

// outcomeOf classifies a tool error for metrics and logs, without its text (which may name
// users).
func outcomeOf(err error) string {
	var (
		ae      *ArgError
		authe   *AuthError
		refused *RefusedError
	)
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ae):
		return "invalid"
	case errors.As(err, &authe):
		return "unauthenticated"
	case errors.As(err, &refused):
		switch refused.Status {
		case http.StatusForbidden:
			return "forbidden"
		case http.StatusNotFound:
			return "not_found"
		case http.StatusGone:
			return "gone"
		case http.StatusServiceUnavailable, http.StatusInsufficientStorage, http.StatusTooManyRequests:
			return "unavailable"
		}
	}
	return "error"
}
