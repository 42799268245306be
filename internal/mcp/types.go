package mcp

import (
	"encoding/json"
	"time"

	"github.com/engram-memory/engram/client"
)

// The tools' structured outputs. They are the query service's answers (docs/query.md) with
// JSON values as JSON (metadata, tool arguments and results), so that the output schemas
// the SDK derives from them describe exactly what is sent.

// Entity is what a preference applies to.
type Entity struct {
	ID   string `json:"id" jsonschema:"the entity's id (derived from the user, name and type when given by name)"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// Preference is one of a user's preferences.
type Preference struct {
	ID           string         `json:"id"`
	Category     string         `json:"category"`
	Text         string         `json:"preference"`
	Context      *string        `json:"context"`
	Confidence   float64        `json:"confidence"`
	CreatedAt    *time.Time     `json:"created_at"`
	ValidFrom    *time.Time     `json:"valid_from" jsonschema:"when the preference started to hold (valid time)"`
	ValidUntil   *time.Time     `json:"valid_until" jsonschema:"when it stopped holding; null while it holds"`
	Metadata     map[string]any `json:"metadata,omitempty"`
	AppliesTo    []Entity       `json:"applies_to"`
	SupersededBy *string        `json:"superseded_by" jsonschema:"the id of the preference that replaced it; null while active"`
	Supersedes   []string       `json:"supersedes" jsonschema:"ids of the preferences it replaced"`
	RecordedAt   *time.Time     `json:"recorded_at" jsonschema:"when Engram learned of it (transaction time)"`
}

// Message is one message of a conversation.
type Message struct {
	ID        string         `json:"id"`
	SessionID string         `json:"session_id,omitempty"`
	Role      string         `json:"role"`
	Content   string         `json:"content"`
	Timestamp *time.Time     `json:"timestamp"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// Conversation is one of a user's conversations: one per session.
type Conversation struct {
	ID        string     `json:"conversation_id"`
	SessionID string     `json:"session_id"`
	Title     *string    `json:"title"`
	CreatedAt *time.Time `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
	// MessageCount is the library's list_sessions message_count.
	MessageCount int64 `json:"message_count" jsonschema:"how many messages it has"`
}

// ToolCall is a tool call recorded in a reasoning step.
type ToolCall struct {
	ID         string     `json:"id"`
	ToolName   string     `json:"tool_name"`
	Arguments  any        `json:"arguments"`
	Result     any        `json:"result"`
	Status     string     `json:"status"`
	DurationMS *int64     `json:"duration_ms"`
	Error      *string    `json:"error"`
	Timestamp  *time.Time `json:"timestamp"`
}

// Step is a reasoning step.
type Step struct {
	ID          string     `json:"id"`
	StepNumber  *int64     `json:"step_number"`
	Thought     *string    `json:"thought"`
	Action      *string    `json:"action"`
	Observation *string    `json:"observation"`
	Timestamp   *time.Time `json:"timestamp"`
	ToolCalls   []ToolCall `json:"tool_calls"`
}

// Trace is a reasoning trace; Steps only when the trace is read by id.
type Trace struct {
	ID          string         `json:"trace_id"`
	SessionID   string         `json:"session_id"`
	Task        string         `json:"task"`
	Outcome     *string        `json:"outcome"`
	Success     *bool          `json:"success"`
	StartedAt   *time.Time     `json:"started_at"`
	CompletedAt *time.Time     `json:"completed_at"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	StepCount   int64          `json:"step_count"`
	Steps       []Step         `json:"steps,omitempty"`
}

// ToolStats is the usage of one tool, from the user's own calls.
type ToolStats struct {
	Name            string     `json:"name"`
	TotalCalls      int64      `json:"total_calls"`
	SuccessfulCalls int64      `json:"successful_calls"`
	FailedCalls     int64      `json:"failed_calls" jsonschema:"every call that did not succeed"`
	SuccessRate     float64    `json:"success_rate"`
	AvgDurationMS   *float64   `json:"avg_duration_ms"`
	LastUsedAt      *time.Time `json:"last_used_at"`
}

// User is a user as Engram keeps them.
type User struct {
	ID         string         `json:"id"`
	Identifier string         `json:"identifier"`
	Attributes map[string]any `json:"attributes"`
	CreatedAt  *time.Time     `json:"created_at"`
}

func object(raw json.RawMessage) map[string]any {
	var m map[string]any
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &m)
	}
	return m
}

func value(raw json.RawMessage) any {
	var v any
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &v)
	}
	return v
}

func fromEntities(es []client.Entity) []Entity {
	out := make([]Entity, 0, len(es))
	for _, e := range es {
		out = append(out, Entity(e))
	}
	return out
}

func fromPreference(p client.Preference) Preference {
	return Preference{
		ID: p.ID, Category: p.Category, Text: p.Preference, Context: p.Context, Confidence: p.Confidence,
		CreatedAt: p.CreatedAt, ValidFrom: p.ValidFrom, ValidUntil: p.ValidUntil, Metadata: object(p.Metadata),
		AppliesTo: fromEntities(p.AppliesTo), SupersededBy: p.SupersededBy, Supersedes: nonNil(p.Supersedes),
		RecordedAt: p.RecordedAt,
	}
}

func fromPreferences(ps []client.Preference) []Preference {
	out := make([]Preference, 0, len(ps))
	for _, p := range ps {
		out = append(out, fromPreference(p))
	}
	return out
}

func fromMessage(m client.Message) Message {
	return Message{ID: m.ID, SessionID: m.SessionID, Role: m.Role, Content: m.Content, Timestamp: m.Timestamp, Metadata: object(m.Metadata)}
}

func fromMessages(ms []client.Message) []Message {
	out := make([]Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, fromMessage(m))
	}
	return out
}

func fromConversations(cs []client.Conversation) []Conversation {
	out := make([]Conversation, 0, len(cs))
	for _, c := range cs {
		out = append(out, Conversation{ID: c.ID, SessionID: c.SessionID, Title: c.Title, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
			MessageCount: c.MessageCount})
	}
	return out
}

func fromStep(s client.Step) Step {
	out := Step{ID: s.ID, StepNumber: s.StepNumber, Thought: s.Thought, Action: s.Action, Observation: s.Observation,
		Timestamp: s.Timestamp, ToolCalls: make([]ToolCall, 0, len(s.ToolCalls))}
	for _, tc := range s.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, ToolCall{ID: tc.ID, ToolName: tc.ToolName, Arguments: value(tc.Arguments),
			Result: value(tc.Result), Status: tc.Status, DurationMS: tc.DurationMS, Error: tc.Error, Timestamp: tc.Timestamp})
	}
	return out
}

func fromTrace(t client.Trace) Trace {
	out := Trace{ID: t.ID, SessionID: t.SessionID, Task: t.Task, Outcome: t.Outcome, Success: t.Success,
		StartedAt: t.StartedAt, CompletedAt: t.CompletedAt, Metadata: object(t.Metadata), StepCount: t.StepCount}
	for _, s := range t.Steps {
		out.Steps = append(out.Steps, fromStep(s))
	}
	return out
}

func fromTraces(ts []client.Trace) []Trace {
	out := make([]Trace, 0, len(ts))
	for _, t := range ts {
		out = append(out, fromTrace(t))
	}
	return out
}

func fromToolStats(ts []client.ToolStats) []ToolStats {
	out := make([]ToolStats, 0, len(ts))
	for _, s := range ts {
		out = append(out, ToolStats{Name: s.Name, TotalCalls: s.TotalCalls, SuccessfulCalls: s.SuccessfulCalls,
			FailedCalls: s.FailedCalls, SuccessRate: s.SuccessRate, AvgDurationMS: s.AvgDurationMS, LastUsedAt: s.LastUsedAt})
	}
	return out
}

func fromUser(u *client.User) *User {
	if u == nil {
		return nil
	}
	attrs := object(u.Attributes)
	if attrs == nil {
		attrs = map[string]any{}
	}
	return &User{ID: u.ID, Identifier: u.Identifier, Attributes: attrs, CreatedAt: u.CreatedAt}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
