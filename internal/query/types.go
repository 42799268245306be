package query

import (
	"encoding/json"
	"time"
)

// User is a user node.
type User struct {
	ID         string          `json:"id"`
	Identifier string          `json:"identifier"`
	Attributes json.RawMessage `json:"attributes"` // the stored attributes object, {} when none
	CreatedAt  *time.Time      `json:"created_at"`
	RecordedAt *time.Time      `json:"recorded_at"` // transaction time of the first write
}

// Entity is what a preference applies to.
type Entity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// Preference is one preference node: the library's properties, what it applies to, what
// superseded it, and when the system learned of it and of its supersede.
type Preference struct {
	ID         string          `json:"id"`
	Category   string          `json:"category"`
	Preference string          `json:"preference"`
	Context    *string         `json:"context"`
	Confidence float64         `json:"confidence"`
	CreatedAt  *time.Time      `json:"created_at"`
	ValidFrom  *time.Time      `json:"valid_from"`
	ValidUntil *time.Time      `json:"valid_until"` // null while valid
	Metadata   json.RawMessage `json:"metadata"`    // {} when none
	AppliesTo  []Entity        `json:"applies_to"`
	// SupersededBy is the id of the preference that replaced this one, null while active.
	SupersededBy *string `json:"superseded_by"`
	// Supersedes lists the ids of the preferences this one replaced.
	Supersedes []string `json:"supersedes"`
	// RecordedAt and RecordedSeq: when the event that created this preference was stored.
	RecordedAt  *time.Time `json:"recorded_at"`
	RecordedSeq *int64     `json:"recorded_seq"`
	// SupersededRecordedAt and SupersededSeq: when the supersede was stored, null before.
	SupersededRecordedAt *time.Time `json:"superseded_recorded_at"`
	SupersededSeq        *int64     `json:"superseded_seq"`
}

// Conversation is one conversation of a user (one per session).
type Conversation struct {
	ID         string     `json:"id"`
	SessionID  string     `json:"session_id"`
	Title      *string    `json:"title"`
	CreatedAt  *time.Time `json:"created_at"`
	UpdatedAt  *time.Time `json:"updated_at"`
	RecordedAt *time.Time `json:"recorded_at"`
	// MessageCount is the number of its messages (the library's list_sessions message_count).
	MessageCount int64 `json:"message_count"`
}

// Message is one message of a conversation.
type Message struct {
	ID         string          `json:"id"`
	Role       string          `json:"role"`
	Content    string          `json:"content"`
	Timestamp  *time.Time      `json:"timestamp"`
	Metadata   json.RawMessage `json:"metadata"` // {} when none
	RecordedAt *time.Time      `json:"recorded_at"`
}

// MessagePage is one page of a conversation's messages.
type MessagePage struct {
	Messages []Message `json:"messages"`
	// NextCursor continues after the last message of this page in the same order; empty when
	// this page is the last.
	NextCursor string `json:"next_cursor,omitempty"`
}

// TraceSummary is a reasoning trace without its steps.
type TraceSummary struct {
	ID          string          `json:"id"`
	SessionID   string          `json:"session_id"`
	Task        string          `json:"task"`
	Outcome     *string         `json:"outcome"`
	Success     *bool           `json:"success"`
	StartedAt   *time.Time      `json:"started_at"`
	CompletedAt *time.Time      `json:"completed_at"`
	Metadata    json.RawMessage `json:"metadata"` // {} when none
	StepCount   int64           `json:"step_count"`
	RecordedAt  *time.Time      `json:"recorded_at"`
}

// Trace is a reasoning trace with its steps in order and each step's tool calls.
type Trace struct {
	TraceSummary
	Steps []Step `json:"steps"`
}

// Step is one reasoning step.
type Step struct {
	ID          string     `json:"id"`
	StepNumber  *int64     `json:"step_number"`
	Order       *int64     `json:"order"` // HAS_STEP.order
	Thought     *string    `json:"thought"`
	Action      *string    `json:"action"`
	Observation *string    `json:"observation"`
	Timestamp   *time.Time `json:"timestamp"`
	ToolCalls   []ToolCall `json:"tool_calls"`
}

// ToolCall is one tool call made in a step.
type ToolCall struct {
	ID         string          `json:"id"`
	ToolName   string          `json:"tool_name"`
	Arguments  json.RawMessage `json:"arguments"` // the stored JSON, null when none
	Result     json.RawMessage `json:"result"`    // the stored JSON, null when none
	Status     string          `json:"status"`
	DurationMS *int64          `json:"duration_ms"`
	Error      *string         `json:"error"`
	Timestamp  *time.Time      `json:"timestamp"`
}
