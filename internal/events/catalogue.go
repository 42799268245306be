package events

import (
	"time"
)

// Kind names one entry of the event catalogue. Its String is the last token of the event's
// subject (mem.<tenant-token>.<kind>).
type Kind string

// The catalogue. Adding a kind means adding its data type, its JSON Schema under schemas/,
// its projection and its documentation in docs/events.md.
const (
	KindUserUpserted         Kind = "user_upserted"
	KindMessageAdded         Kind = "message_added"
	KindPreferenceAdded      Kind = "preference_added"
	KindPreferenceSuperseded Kind = "preference_superseded"
	KindTraceStarted         Kind = "trace_started"
	KindTraceStepAdded       Kind = "trace_step_added"
	KindToolCallRecorded     Kind = "tool_call_recorded"
	KindTraceCompleted       Kind = "trace_completed"
	KindUserErased           Kind = "user_erased"
	KindUserRecreated        Kind = "user_recreated"
	KindEntityAdded          Kind = "entity_added"
	KindRelationshipAdded    Kind = "relationship_added"
	KindEntitiesMerged       Kind = "entities_merged"
	KindFactAdded            Kind = "fact_added"
	KindMessageDeleted       Kind = "message_deleted"
	KindSessionCleared       Kind = "session_cleared"
	KindEntityDeleted        Kind = "entity_deleted"
)

// Kinds lists the catalogue in a stable order.
var Kinds = []Kind{
	KindUserUpserted, KindMessageAdded, KindPreferenceAdded, KindPreferenceSuperseded,
	KindTraceStarted, KindTraceStepAdded, KindToolCallRecorded, KindTraceCompleted,
	KindUserErased, KindUserRecreated, KindEntityAdded, KindRelationshipAdded, KindEntitiesMerged,
	KindFactAdded, KindMessageDeleted, KindSessionCleared, KindEntityDeleted,
}

// SchemaVersion is the version of every kind's data schema and CloudEvents type.
const SchemaVersion = "v1"

// TypePrefix starts every CloudEvents type: dev.engram.memory.<kind>.v1.
const TypePrefix = "dev.engram.memory."

// SchemaBase starts every dataschema URI: <SchemaBase><kind>.v1.json, the file
// schemas/events/<kind>.v1.json in this repository.
const SchemaBase = "https://engram.dev/schemas/events/"

// Type is the CloudEvents type of the kind, e.g. dev.engram.memory.preference_added.v1.
func (k Kind) Type() string { return TypePrefix + string(k) + "." + SchemaVersion }

// DataSchema is the URI of the kind's JSON Schema.
func (k Kind) DataSchema() string { return SchemaBase + string(k) + "." + SchemaVersion + ".json" }

// Valid reports whether k is in the catalogue.
func (k Kind) Valid() bool {
	for _, c := range Kinds {
		if c == k {
			return true
		}
	}
	return false
}

// KindOfType maps a CloudEvents type back to its kind.
func KindOfType(t string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Type() == t {
			return k, true
		}
	}
	return "", false
}

// EntityRef names an entity a preference applies to. ID, when set, is an Entity id of the
// same user; otherwise Name (required) and Type identify the entity within the user's scope.
type EntityRef struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	Type string `json:"type,omitempty"`
}

// UserUpserted creates the user or updates their attributes. UserID is derived from the
// identifier (UserID), so every upsert of one identifier carries the same id. Attributes
// replace the stored attributes wholesale when present; absent (null) leaves them as they are;
// {} clears them. Hence omitzero, not omitempty: an empty map must stay distinct from nil.
type UserUpserted struct {
	UserID     string         `json:"user_id"`
	Identifier string         `json:"identifier"`
	Attributes map[string]any `json:"attributes,omitzero"`
}

// MessageAdded appends a message to the user's conversation of SessionID.
type MessageAdded struct {
	MessageID      string         `json:"message_id"`
	ConversationID string         `json:"conversation_id"`
	SessionID      string         `json:"session_id"`
	Role           string         `json:"role"`
	Content        string         `json:"content"`
	Timestamp      *time.Time     `json:"timestamp,omitempty"`
	Metadata       map[string]any `json:"metadata,omitempty"`
	Title          string         `json:"title,omitempty"`
	// Embedding is the content's vector, given with the write or computed by the ingestor's
	// embedder (EMBEDDER): in the event, so a replay sets the same vector without an
	// embedder (docs/query.md, "Vector search").
	Embedding []float64 `json:"embedding,omitempty"`
}

// PreferenceAdded records a preference of the user.
type PreferenceAdded struct {
	PreferenceID string         `json:"preference_id"`
	Category     string         `json:"category"`
	Preference   string         `json:"preference"`
	Context      string         `json:"context,omitempty"`
	Confidence   *float64       `json:"confidence,omitempty"`
	ValidFrom    *time.Time     `json:"valid_from,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
	AppliesTo    []EntityRef    `json:"applies_to,omitempty"`
	Embedding    []float64      `json:"embedding,omitempty"` // of preference and context, as MessageAdded's
}

// PreferenceSuperseded replaces OldID by NewID; OldID's valid_until becomes ValidUntil, or the
// event time when absent. Both must be preferences of the event's user.
type PreferenceSuperseded struct {
	OldID      string     `json:"old_id"`
	NewID      string     `json:"new_id"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
}

// TraceStarted opens a reasoning trace.
type TraceStarted struct {
	TraceID   string         `json:"trace_id"`
	SessionID string         `json:"session_id"`
	Task      string         `json:"task"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	Embedding []float64      `json:"embedding,omitempty"` // of the task, as MessageAdded's
}

// TraceStepAdded adds a step to a trace. StepNumber, when zero, is assigned by the projector
// as the next number in stored order.
type TraceStepAdded struct {
	TraceID     string `json:"trace_id"`
	StepID      string `json:"step_id"`
	StepNumber  int    `json:"step_number,omitempty"`
	Thought     string `json:"thought,omitempty"`
	Action      string `json:"action,omitempty"`
	Observation string `json:"observation,omitempty"`
}

// ToolCallRecorded records a tool call made in a step.
type ToolCallRecorded struct {
	TraceID    string `json:"trace_id"`
	StepID     string `json:"step_id"`
	ToolCallID string `json:"tool_call_id"`
	ToolName   string `json:"tool_name"`
	Arguments  any    `json:"arguments,omitempty"`
	Result     any    `json:"result,omitempty"`
	Status     string `json:"status"`
	DurationMS *int64 `json:"duration_ms,omitempty"` // 0 to MaxToolCallDurationMS
	Error      string `json:"error,omitempty"`
}

// TraceCompleted closes a trace.
type TraceCompleted struct {
	TraceID string `json:"trace_id"`
	Outcome string `json:"outcome,omitempty"`
	Success *bool  `json:"success,omitempty"`
}

// UserErased removes everything the user owns (the right to be forgotten).
type UserErased struct {
	Identifier string `json:"identifier"`
	Reason     string `json:"reason,omitempty"`
}

// UserRecreated starts a new life of an erased user: an admin's explicit word that writes for
// the identifier are welcome again after its last erasure (docs/replay.md). Without it, every
// write of the user stored after the tombstone is dropped by the projector and refused by the
// ingestor, so an agent still writing cannot bring the user back by accident. Its effect is an
// upsert without attributes: the User node, created anew.
type UserRecreated struct {
	UserID     string `json:"user_id"`
	Identifier string `json:"identifier"`
	Reason     string `json:"reason,omitempty"`
}

// EntityAdded records an entity of the user (the library's add_entity), or adds to it: the
// entity's id is derived, events.EntityID(user, Name, Type), the id an applies_to {name, type}
// of a preference names, so both reach one node. Given fields replace the stored ones
// (Attributes wholesale), Aliases are added to the stored ones, and every message and trace in
// MessageIDs and TraceIDs is linked as mentioning the entity (MENTIONS). They must be the
// user's own.
type EntityAdded struct {
	Name        string         `json:"name"`
	Type        string         `json:"type"`
	Subtype     string         `json:"subtype,omitempty"`
	Description string         `json:"description,omitempty"`
	Aliases     []string       `json:"aliases,omitempty"`
	Attributes  map[string]any `json:"attributes,omitempty"`
	Confidence  *float64       `json:"confidence,omitempty"`
	MessageIDs  []string       `json:"message_ids,omitempty"`
	TraceIDs    []string       `json:"trace_ids,omitempty"`
	Embedding   []float64      `json:"embedding,omitempty"` // of name and description, as MessageAdded's
}

// RelationshipAdded relates two entities of the user (the library's add_relationship): one
// RELATED_TO edge per (source, type, target), whose id is RelationshipID of the entities it
// joins. An endpoint named by id must be an entity of the user; by name (and type) it is the
// entity of that derived id, created when absent. A second add of the same edge sets what it
// gives (description, confidence, validity, attributes).
type RelationshipAdded struct {
	Source      EntityRef      `json:"source"`
	Target      EntityRef      `json:"target"`
	Type        string         `json:"type"`
	Description string         `json:"description,omitempty"`
	Confidence  *float64       `json:"confidence,omitempty"`
	ValidFrom   *time.Time     `json:"valid_from,omitempty"`
	ValidUntil  *time.Time     `json:"valid_until,omitempty"`
	Attributes  map[string]any `json:"attributes,omitempty"`
}

// EntitiesMerged merges entity SourceID into TargetID (the library's merge_duplicate_entities):
// the source's mentions, preferences and relationships move to the target, its name and
// aliases become the target's aliases, and it stays behind as a tombstone MERGED_INTO the
// target, so later references to it reach the target. Both must be entities of the user.
type EntitiesMerged struct {
	SourceID string `json:"source_id"`
	TargetID string `json:"target_id"`
}

// FactAdded records a subject–predicate–object fact of the user (the library's add_fact),
// valid from ValidFrom (default: the event time) until ValidUntil (open when absent).
type FactAdded struct {
	FactID     string         `json:"fact_id"`
	Subject    string         `json:"subject"`
	Predicate  string         `json:"predicate"`
	Object     string         `json:"object"`
	Confidence *float64       `json:"confidence,omitempty"`
	ValidFrom  *time.Time     `json:"valid_from,omitempty"`
	ValidUntil *time.Time     `json:"valid_until,omitempty"`
	Metadata   map[string]any `json:"metadata,omitempty"`
}

// MessageDeleted deletes a message of the user (the library's delete_message): the Message
// node goes and its conversation's chain is mended around it. With ConversationID (and its
// SessionID) it deletes the message only when it is in that conversation. Deleting a message
// that does not exist, or no longer does, is a no-op; one of another user is refused. The
// event is the audit of the deletion: the message's content stays in the log's message_added
// event until the user is erased.
type MessageDeleted struct {
	MessageID      string `json:"message_id"`
	ConversationID string `json:"conversation_id,omitempty"`
	SessionID      string `json:"session_id,omitempty"`
}

// SessionCleared deletes the user's conversation of SessionID and all its messages (the
// library's clear_session); a later message of the session starts a new conversation of the
// same derived id. Clearing a session that has no conversation is a no-op.
type SessionCleared struct {
	ConversationID string `json:"conversation_id"`
	SessionID      string `json:"session_id"`
}

// Roles are the message roles accepted on MessageAdded.
var Roles = []string{"user", "assistant", "system", "tool"}

// ToolCallStatuses are the statuses accepted on ToolCallRecorded.
var ToolCallStatuses = []string{"pending", "success", "failure", "error", "timeout", "cancelled"}

// newData returns a pointer to a zero value of the kind's data type.
func newData(k Kind) any {
	switch k {
	case KindUserUpserted:
		return &UserUpserted{}
	case KindMessageAdded:
		return &MessageAdded{}
	case KindPreferenceAdded:
		return &PreferenceAdded{}
	case KindPreferenceSuperseded:
		return &PreferenceSuperseded{}
	case KindTraceStarted:
		return &TraceStarted{}
	case KindTraceStepAdded:
		return &TraceStepAdded{}
	case KindToolCallRecorded:
		return &ToolCallRecorded{}
	case KindTraceCompleted:
		return &TraceCompleted{}
	case KindUserErased:
		return &UserErased{}
	case KindUserRecreated:
		return &UserRecreated{}
	case KindEntityAdded:
		return &EntityAdded{}
	case KindRelationshipAdded:
		return &RelationshipAdded{}
	case KindEntitiesMerged:
		return &EntitiesMerged{}
	case KindFactAdded:
		return &FactAdded{}
	case KindMessageDeleted:
		return &MessageDeleted{}
	case KindSessionCleared:
		return &SessionCleared{}
	case KindEntityDeleted:
		return &EntityDeleted{}
	}
	return nil
}

// KindOf returns the catalogue kind of a data value (a value or pointer of one of the data
// types above).
func KindOf(data any) (Kind, bool) {
	switch data.(type) {
	case UserUpserted, *UserUpserted:
		return KindUserUpserted, true
	case MessageAdded, *MessageAdded:
		return KindMessageAdded, true
	case PreferenceAdded, *PreferenceAdded:
		return KindPreferenceAdded, true
	case PreferenceSuperseded, *PreferenceSuperseded:
		return KindPreferenceSuperseded, true
	case TraceStarted, *TraceStarted:
		return KindTraceStarted, true
	case TraceStepAdded, *TraceStepAdded:
		return KindTraceStepAdded, true
	case ToolCallRecorded, *ToolCallRecorded:
		return KindToolCallRecorded, true
	case TraceCompleted, *TraceCompleted:
		return KindTraceCompleted, true
	case UserErased, *UserErased:
		return KindUserErased, true
	case UserRecreated, *UserRecreated:
		return KindUserRecreated, true
	case EntityAdded, *EntityAdded:
		return KindEntityAdded, true
	case RelationshipAdded, *RelationshipAdded:
		return KindRelationshipAdded, true
	case EntitiesMerged, *EntitiesMerged:
		return KindEntitiesMerged, true
	case FactAdded, *FactAdded:
		return KindFactAdded, true
	case MessageDeleted, *MessageDeleted:
		return KindMessageDeleted, true
	case SessionCleared, *SessionCleared:
		return KindSessionCleared, true
	case EntityDeleted, *EntityDeleted:
		return KindEntityDeleted, true
	}
	return "", false
}

// MaxToolCallDurationMS bounds a tool call's duration_ms (7 days; the schema's maximum). The
// global Tool aggregates sum the durations of every tenant's calls: without a bound one call
// near 2^63 would make every later call of that tool, for every tenant, overflow the sum and be
// dead-lettered.
const MaxToolCallDurationMS = 7 * 24 * 60 * 60 * 1000
