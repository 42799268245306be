package client

import (
	"encoding/json"
	"time"
)

// EntityRef names an entity: by ID, or by Name and Type within the user's scope.
type EntityRef struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

// User is a user as written or read.
type User struct {
	ID         string          `json:"id"`
	Identifier string          `json:"identifier"`
	Attributes json.RawMessage `json:"attributes,omitempty"`
	CreatedAt  *time.Time      `json:"created_at,omitempty"`
	RecordedAt *time.Time      `json:"recorded_at,omitempty"`
	Receipt    Receipt         `json:"-"`
}

// Message is a message as written or read.
type Message struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id,omitempty"`
	SessionID      string          `json:"session_id,omitempty"`
	Role           string          `json:"role"`
	Content        string          `json:"content"`
	Timestamp      *time.Time      `json:"timestamp,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	RecordedAt     *time.Time      `json:"recorded_at,omitempty"`
	Receipt        Receipt         `json:"-"`
}

// MessagePage is a page of a conversation's messages.
type MessagePage struct {
	Messages   []Message `json:"messages"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// Conversation is one conversation (one per user and session).
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

// Entity is what a preference applies to.
type Entity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// Preference is a preference as written or read. ValidUntil is nil while it holds;
// SupersededBy names its replacement; RecordedAt is when Engram learned of it.
type Preference struct {
	ID                   string          `json:"id"`
	User                 string          `json:"-"`
	Category             string          `json:"category"`
	Preference           string          `json:"preference"`
	Context              *string         `json:"context"`
	Confidence           float64         `json:"confidence"`
	CreatedAt            *time.Time      `json:"created_at"`
	ValidFrom            *time.Time      `json:"valid_from"`
	ValidUntil           *time.Time      `json:"valid_until"`
	Metadata             json.RawMessage `json:"metadata,omitempty"`
	AppliesTo            []Entity        `json:"applies_to"`
	SupersededBy         *string         `json:"superseded_by"`
	Supersedes           []string        `json:"supersedes"`
	RecordedAt           *time.Time      `json:"recorded_at"`
	SupersededRecordedAt *time.Time      `json:"superseded_recorded_at"`
	Receipt              Receipt         `json:"-"`
}

// Trace is a reasoning trace; Steps are filled by GetTrace.
type Trace struct {
	ID          string          `json:"id"`
	User        string          `json:"-"`
	SessionID   string          `json:"session_id"`
	Task        string          `json:"task"`
	Outcome     *string         `json:"outcome"`
	Success     *bool           `json:"success"`
	StartedAt   *time.Time      `json:"started_at"`
	CompletedAt *time.Time      `json:"completed_at"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	StepCount   int64           `json:"step_count"`
	Steps       []Step          `json:"steps,omitempty"`
	Receipt     Receipt         `json:"-"`
}

// Step is a reasoning step.
type Step struct {
	ID          string     `json:"id"`
	TraceID     string     `json:"-"`
	StepNumber  *int64     `json:"step_number"`
	Thought     *string    `json:"thought"`
	Action      *string    `json:"action"`
	Observation *string    `json:"observation"`
	Timestamp   *time.Time `json:"timestamp"`
	ToolCalls   []ToolCall `json:"tool_calls,omitempty"`
	Receipt     Receipt    `json:"-"`
}

// ToolCall is a tool call made in a step.
type ToolCall struct {
	ID         string          `json:"id"`
	ToolName   string          `json:"tool_name"`
	Arguments  json.RawMessage `json:"arguments"`
	Result     json.RawMessage `json:"result"`
	Status     string          `json:"status"`
	DurationMS *int64          `json:"duration_ms"`
	Error      *string         `json:"error"`
	Timestamp  *time.Time      `json:"timestamp"`
	Receipt    Receipt         `json:"-"`
}
