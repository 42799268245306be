package ingest

import (
	"time"

	"github.com/engram-memory/engram/internal/events"
)

// Command is one write an agent asks for. Every command becomes exactly one event (Build).
// The JSON form of a command is the body of its HTTP endpoint and, with "op" added, an entry
// of a batch.
//
// Every command takes an optional EventID, and the commands that create something an optional
// id of it (MessageID, PreferenceID, TraceID on StartTrace, StepID on AddTraceStep,
// ToolCallID on RecordToolCall). Left empty they are minted (UUIDv7) by Build; a caller that
// sets them itself (UUIDv7 only) can retry the same command safely: the event id is the
// JetStream Nats-Msg-Id, so a retry within the duplicate window is stored once.
type Command interface {
	// Op names the command in a batch, e.g. "add_message".
	Op() string
	// Kind is the kind of event the command becomes.
	Kind() events.Kind
	// build validates the command and returns the event's user and data and the minted ids.
	build(s *Settings) (user string, data any, m Minted, err error)
}

// Batch operation names (the "op" of a batch entry).
const (
	OpUpsertUser          = "upsert_user"
	OpEraseUser           = "erase_user"
	OpRecreateUser        = "recreate_user"
	OpAddMessage          = "add_message"
	OpAddPreference       = "add_preference"
	OpSupersedePreference = "supersede_preference"
	OpStartTrace          = "start_trace"
	OpAddTraceStep        = "add_trace_step"
	OpRecordToolCall      = "record_tool_call"
	OpCompleteTrace       = "complete_trace"
	OpAddEntity           = "add_entity"
	OpAddRelationship     = "add_relationship"
	OpMergeEntities       = "merge_entities"
	OpAddFact             = "add_fact"
	OpDeleteMessage       = "delete_message"
	OpClearSession        = "clear_session"
)

// Ops lists every command's op in a stable order.
var Ops = []string{
	OpUpsertUser, OpEraseUser, OpRecreateUser, OpAddMessage, OpAddPreference, OpSupersedePreference,
	OpStartTrace, OpAddTraceStep, OpRecordToolCall, OpCompleteTrace,
	OpAddEntity, OpAddRelationship, OpMergeEntities, OpAddFact, OpDeleteMessage, OpClearSession,
	OpDeleteEntity,
}

// newCommand returns a pointer to a zero command of op, or nil for an unknown op.
func newCommand(op string) Command {
	switch op {
	case OpUpsertUser:
		return &UpsertUser{}
	case OpEraseUser:
		return &EraseUser{}
	case OpRecreateUser:
		return &RecreateUser{}
	case OpAddMessage:
		return &AddMessage{}
	case OpAddPreference:
		return &AddPreference{}
	case OpSupersedePreference:
		return &SupersedePreference{}
	case OpStartTrace:
		return &StartTrace{}
	case OpAddTraceStep:
		return &AddTraceStep{}
	case OpRecordToolCall:
		return &RecordToolCall{}
	case OpCompleteTrace:
		return &CompleteTrace{}
	case OpAddEntity:
		return &AddEntity{}
	case OpAddRelationship:
		return &AddRelationship{}
	case OpMergeEntities:
		return &MergeEntities{}
	case OpAddFact:
		return &AddFact{}
	case OpDeleteMessage:
		return &DeleteMessage{}
	case OpClearSession:
		return &ClearSession{}
	case OpDeleteEntity:
		return &DeleteEntity{}
	}
	return nil
}

// UpsertUser creates the user or replaces their attributes (user_upserted). It is idempotent:
// the user id is derived from the identifier. Non-empty Attributes replace the stored
// attributes wholesale; nil or empty ({}, JSON null, absent) leave them as they are, as the
// library's upsert_user does (its attributes={} is "nothing to change"); ClearAttributes
// empties them. In the event, absent attributes mean "leave" and {} means "clear" (the v1
// event's meaning, which the log's existing events keep): Build maps the command onto it.
type UpsertUser struct {
	EventID         string         `json:"event_id,omitempty"`
	Identifier      string         `json:"identifier"`
	Attributes      map[string]any `json:"attributes,omitzero"`
	ClearAttributes bool           `json:"clear_attributes,omitzero"`
}

// EraseUser asks for everything the user owns to be forgotten (user_erased).
type EraseUser struct {
	EventID    string `json:"event_id,omitempty"`
	Identifier string `json:"identifier"`
	Reason     string `json:"reason,omitempty"`
}

// RecreateUser starts a new life of an erased user (user_recreated): writes for them are
// accepted and projected again. Between an erasure and the re-creation that follows it every
// write of the user is refused (410) or, over NATS, dropped; only an admin re-creates.
type RecreateUser struct {
	EventID    string `json:"event_id,omitempty"`
	Identifier string `json:"identifier"`
	Reason     string `json:"reason,omitempty"`
}

// AddMessage appends a message to the user's conversation of SessionID (message_added).
// UserIdentifier is required in multi-tenant mode; without it the message belongs to the
// shared tenant.
type AddMessage struct {
	EventID        string         `json:"event_id,omitempty"`
	UserIdentifier string         `json:"user_identifier,omitempty"`
	MessageID      string         `json:"message_id,omitempty"`
	SessionID      string         `json:"session_id"`
	Role           string         `json:"role"`
	Content        string         `json:"content"`
	Timestamp      *time.Time     `json:"timestamp,omitempty"`
	Metadata       map[string]any `json:"metadata,omitempty"`
	Title          string         `json:"title,omitempty"`
	Embedding      []float64      `json:"embedding,omitempty"` // of the content; else the embedder's, if any
}

// AddPreference records a preference of the user (preference_added), optionally applying to
// entities of the user's scope and valid from an instant (default: the event time).
type AddPreference struct {
	EventID        string             `json:"event_id,omitempty"`
	UserIdentifier string             `json:"user_identifier,omitempty"`
	PreferenceID   string             `json:"preference_id,omitempty"`
	Category       string             `json:"category"`
	Preference     string             `json:"preference"`
	Context        string             `json:"context,omitempty"`
	Confidence     *float64           `json:"confidence,omitempty"`
	ValidFrom      *time.Time         `json:"valid_from,omitempty"`
	Metadata       map[string]any     `json:"metadata,omitempty"`
	AppliesTo      []events.EntityRef `json:"applies_to,omitempty"`
	Embedding      []float64          `json:"embedding,omitempty"` // of preference and context; else the embedder's
}

// SupersedePreference replaces preference OldID by NewID (preference_superseded); OldID stays
// valid until ValidUntil, by default the event time. Both must be preferences of the user the
// command names (the seed's supersede_preference takes no user; Engram needs it to put the
// event on the user's subject, and requires it in multi-tenant mode).
type SupersedePreference struct {
	EventID        string     `json:"event_id,omitempty"`
	UserIdentifier string     `json:"user_identifier,omitempty"`
	OldID          string     `json:"old_id"`
	NewID          string     `json:"new_id"`
	ValidUntil     *time.Time `json:"valid_until,omitempty"`
}

// StartTrace opens a reasoning trace (trace_started).
type StartTrace struct {
	EventID        string         `json:"event_id,omitempty"`
	UserIdentifier string         `json:"user_identifier,omitempty"`
	TraceID        string         `json:"trace_id,omitempty"`
	SessionID      string         `json:"session_id"`
	Task           string         `json:"task"`
	Metadata       map[string]any `json:"metadata,omitempty"`
	Embedding      []float64      `json:"embedding,omitempty"` // of the task; else the embedder's
}

// AddTraceStep adds a step to a trace (trace_step_added). StepNumber 0 means the next number
// in stored order.
type AddTraceStep struct {
	EventID        string `json:"event_id,omitempty"`
	UserIdentifier string `json:"user_identifier,omitempty"`
	TraceID        string `json:"trace_id"`
	StepID         string `json:"step_id,omitempty"`
	StepNumber     int    `json:"step_number,omitempty"`
	Thought        string `json:"thought,omitempty"`
	Action         string `json:"action,omitempty"`
	Observation    string `json:"observation,omitempty"`
}

// RecordToolCall records a tool call made in a step of a trace (tool_call_recorded). Status
// defaults to "success".
type RecordToolCall struct {
	EventID        string `json:"event_id,omitempty"`
	UserIdentifier string `json:"user_identifier,omitempty"`
	TraceID        string `json:"trace_id"`
	StepID         string `json:"step_id"`
	ToolCallID     string `json:"tool_call_id,omitempty"`
	ToolName       string `json:"tool_name"`
	Arguments      any    `json:"arguments,omitempty"`
	Result         any    `json:"result,omitempty"`
	Status         string `json:"status,omitempty"`
	DurationMS     *int64 `json:"duration_ms,omitempty"`
	Error          string `json:"error,omitempty"`
}

// CompleteTrace closes a trace (trace_completed).
type CompleteTrace struct {
	EventID        string `json:"event_id,omitempty"`
	UserIdentifier string `json:"user_identifier,omitempty"`
	TraceID        string `json:"trace_id"`
	Outcome        string `json:"outcome,omitempty"`
	Success        *bool  `json:"success,omitempty"`
}

// AddEntity records an entity of the user, or adds to it (entity_added): the entity's id is
// derived from the user, Name and Type (events.EntityID), the id a preference's applies_to
// {name, type} names, so both reach one node. Given fields replace the stored ones
// (Attributes wholesale), Aliases are added, MessageIDs and TraceIDs (the user's) are linked as
// mentioning it.
type AddEntity struct {
	EventID        string         `json:"event_id,omitempty"`
	UserIdentifier string         `json:"user_identifier,omitempty"`
	Name           string         `json:"name"`
	Type           string         `json:"type"`
	Subtype        string         `json:"subtype,omitempty"`
	Description    string         `json:"description,omitempty"`
	Aliases        []string       `json:"aliases,omitempty"`
	Attributes     map[string]any `json:"attributes,omitempty"`
	Confidence     *float64       `json:"confidence,omitempty"`
	MessageIDs     []string       `json:"message_ids,omitempty"`
	TraceIDs       []string       `json:"trace_ids,omitempty"`
	Embedding      []float64      `json:"embedding,omitempty"` // of name and description; else the embedder's
}

// AddRelationship relates two entities of the user (relationship_added): Source and Target by
// id (an entity of the user) or by name and type (that entity, created when absent).
type AddRelationship struct {
	EventID        string           `json:"event_id,omitempty"`
	UserIdentifier string           `json:"user_identifier,omitempty"`
	Source         events.EntityRef `json:"source"`
	Target         events.EntityRef `json:"target"`
	Type           string           `json:"type"`
	Description    string           `json:"description,omitempty"`
	Confidence     *float64         `json:"confidence,omitempty"`
	ValidFrom      *time.Time       `json:"valid_from,omitempty"`
	ValidUntil     *time.Time       `json:"valid_until,omitempty"`
	Attributes     map[string]any   `json:"attributes,omitempty"`
}

// MergeEntities merges entity SourceID into TargetID (entities_merged), both of the user.
type MergeEntities struct {
	EventID        string `json:"event_id,omitempty"`
	UserIdentifier string `json:"user_identifier,omitempty"`
	SourceID       string `json:"source_id"`
	TargetID       string `json:"target_id"`
}

// AddFact records a subject-predicate-object fact of the user (fact_added), valid from
// ValidFrom (default: the event time) until ValidUntil (open when absent).
type AddFact struct {
	EventID        string         `json:"event_id,omitempty"`
	UserIdentifier string         `json:"user_identifier,omitempty"`
	FactID         string         `json:"fact_id,omitempty"`
	Subject        string         `json:"subject"`
	Predicate      string         `json:"predicate"`
	Object         string         `json:"object"`
	Confidence     *float64       `json:"confidence,omitempty"`
	ValidFrom      *time.Time     `json:"valid_from,omitempty"`
	ValidUntil     *time.Time     `json:"valid_until,omitempty"`
	Metadata       map[string]any `json:"metadata,omitempty"`
}

// DeleteMessage deletes a message of the user (message_deleted); with SessionID only when the
// message is in that session's conversation. A message that does not exist is no error: the
// event is applied as a no-op.
type DeleteMessage struct {
	EventID        string `json:"event_id,omitempty"`
	UserIdentifier string `json:"user_identifier,omitempty"`
	MessageID      string `json:"message_id"`
	SessionID      string `json:"session_id,omitempty"`
}

// ClearSession deletes the user's conversation of SessionID and all its messages
// (session_cleared).
type ClearSession struct {
	EventID        string `json:"event_id,omitempty"`
	UserIdentifier string `json:"user_identifier,omitempty"`
	SessionID      string `json:"session_id"`
}

// Op implements Command.
func (*DeleteMessage) Op() string { return OpDeleteMessage }

// Op implements Command.
func (*ClearSession) Op() string { return OpClearSession }

// Kind implements Command.
func (*DeleteMessage) Kind() events.Kind { return events.KindMessageDeleted }

// Kind implements Command.
func (*ClearSession) Kind() events.Kind { return events.KindSessionCleared }

// Op implements Command.
func (*AddEntity) Op() string { return OpAddEntity }

// Op implements Command.
func (*AddRelationship) Op() string { return OpAddRelationship }

// Op implements Command.
func (*MergeEntities) Op() string { return OpMergeEntities }

// Op implements Command.
func (*AddFact) Op() string { return OpAddFact }

// Kind implements Command.
func (*AddEntity) Kind() events.Kind { return events.KindEntityAdded }

// Kind implements Command.
func (*AddRelationship) Kind() events.Kind { return events.KindRelationshipAdded }

// Kind implements Command.
func (*MergeEntities) Kind() events.Kind { return events.KindEntitiesMerged }

// Kind implements Command.
func (*AddFact) Kind() events.Kind { return events.KindFactAdded }

// Op implements Command.
func (*UpsertUser) Op() string { return OpUpsertUser }

// Op implements Command.
func (*EraseUser) Op() string { return OpEraseUser }

// Op implements Command.
func (*RecreateUser) Op() string { return OpRecreateUser }

// Op implements Command.
func (*AddMessage) Op() string { return OpAddMessage }

// Op implements Command.
func (*AddPreference) Op() string { return OpAddPreference }

// Op implements Command.
func (*SupersedePreference) Op() string { return OpSupersedePreference }

// Op implements Command.
func (*StartTrace) Op() string { return OpStartTrace }

// Op implements Command.
func (*AddTraceStep) Op() string { return OpAddTraceStep }

// Op implements Command.
func (*RecordToolCall) Op() string { return OpRecordToolCall }

// Op implements Command.
func (*CompleteTrace) Op() string { return OpCompleteTrace }

// Kind implements Command.
func (*UpsertUser) Kind() events.Kind { return events.KindUserUpserted }

// Kind implements Command.
func (*EraseUser) Kind() events.Kind { return events.KindUserErased }

// Kind implements Command.
func (*RecreateUser) Kind() events.Kind { return events.KindUserRecreated }

// Kind implements Command.
func (*AddMessage) Kind() events.Kind { return events.KindMessageAdded }

// Kind implements Command.
func (*AddPreference) Kind() events.Kind { return events.KindPreferenceAdded }

// Kind implements Command.
func (*SupersedePreference) Kind() events.Kind { return events.KindPreferenceSuperseded }

// Kind implements Command.
func (*StartTrace) Kind() events.Kind { return events.KindTraceStarted }

// Kind implements Command.
func (*AddTraceStep) Kind() events.Kind { return events.KindTraceStepAdded }

// Kind implements Command.
func (*RecordToolCall) Kind() events.Kind { return events.KindToolCallRecorded }

// Kind implements Command.
func (*CompleteTrace) Kind() events.Kind { return events.KindTraceCompleted }

// eventID returns the command's EventID field (every command has one).
func eventID(c Command) string {
	switch c := c.(type) {
	case *UpsertUser:
		return c.EventID
	case *EraseUser:
		return c.EventID
	case *RecreateUser:
		return c.EventID
	case *AddMessage:
		return c.EventID
	case *AddPreference:
		return c.EventID
	case *SupersedePreference:
		return c.EventID
	case *StartTrace:
		return c.EventID
	case *AddTraceStep:
		return c.EventID
	case *RecordToolCall:
		return c.EventID
	case *CompleteTrace:
		return c.EventID
	case *AddEntity:
		return c.EventID
	case *AddRelationship:
		return c.EventID
	case *MergeEntities:
		return c.EventID
	case *AddFact:
		return c.EventID
	case *DeleteMessage:
		return c.EventID
	case *ClearSession:
		return c.EventID
	case *DeleteEntity:
		return c.EventID
	}
	return ""
}
