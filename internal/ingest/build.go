package ingest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/events"
)

// Settings are what Build needs besides the command: the multi-tenant guardrail and the
// CloudEvents attributes the writer sets.
type Settings struct {
	// MultiTenant requires every write to name its user (the seed's multi_tenant). When false,
	// a write without a user belongs to the shared tenant (subject mem._shared.<kind>).
	MultiTenant bool
	// Source is the CloudEvents source, e.g. /engram/ingestor (default) or /engram/client.
	Source string
	// Actor is the principal that writes (CloudEvents extension "actor"); default "anonymous".
	Actor string
	// CorrelationID, when set, becomes the CloudEvents extension "correlationid".
	CorrelationID string
	// Now is the clock of the events' time; default time.Now.
	Now func() time.Time
	// Embedder, when set, embeds the text of a write that carries no embedding (EMBEDDER,
	// docs/query.md "Vector search"); the vector goes into the event.
	Embedder embed.Embedder
}

// Defaults of Settings.
const (
	DefaultSource  = "/engram/ingestor"
	AnonymousActor = "anonymous"
)

// Minted are the ids a command produced: minted (UUIDv7) or derived from its input. Only the
// ids the command concerns are set.
type Minted struct {
	UserID         string `json:"user_id,omitempty"`
	ConversationID string `json:"conversation_id,omitempty"`
	MessageID      string `json:"message_id,omitempty"`
	PreferenceID   string `json:"preference_id,omitempty"`
	TraceID        string `json:"trace_id,omitempty"`
	StepID         string `json:"step_id,omitempty"`
	ToolCallID     string `json:"tool_call_id,omitempty"`
	EntityID       string `json:"entity_id,omitempty"`
	RelationshipID string `json:"relationship_id,omitempty"`
	FactID         string `json:"fact_id,omitempty"`
}

// ErrInvalid is wrapped by every error Build returns for bad input (a *FieldError).
var ErrInvalid = errors.New("invalid command")

// FieldError says which field of a command is wrong and why. It wraps ErrInvalid and, for the
// multi-tenant guardrail, events.ErrNoUser.
type FieldError struct {
	Field  string // JSON name, with the path inside a batch: commands[2].applies_to[0].name
	Reason string
	err    error
}

// Error says which field is wrong and why.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalid and the more specific sentinel, if any.
func (e *FieldError) Unwrap() []error {
	if e.err != nil {
		return []error{ErrInvalid, e.err}
	}
	return []error{ErrInvalid}
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// prefixed returns err with its field placed under prefix (a batch entry).
func prefixed(prefix string, err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return err
	}
	out := *fe
	if out.Field == "" {
		out.Field = prefix
	} else {
		out.Field = prefix + "." + out.Field
	}
	return &out
}

// Build validates a command, enforces the multi-tenant guardrail, mints the ids the command
// creates, and returns its event with the ids. Bad input is a *FieldError wrapping ErrInvalid;
// nothing is published by Build.
func Build(cmd Command, s Settings) (*events.Event, Minted, error) {
	if cmd == nil {
		return nil, Minted{}, fieldErr("", "no command")
	}
	if s.Source == "" {
		s.Source = DefaultSource
	}
	if s.Actor == "" {
		s.Actor = AnonymousActor
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	// Both become CloudEvents extension headers.
	if err := identifier("actor", s.Actor); err != nil {
		return nil, Minted{}, err
	}
	if s.CorrelationID != "" {
		if err := identifier("correlation_id", s.CorrelationID); err != nil {
			return nil, Minted{}, err
		}
	}
	id, err := mint("event_id", eventID(cmd))
	if err != nil {
		return nil, Minted{}, err
	}
	user, data, minted, err := cmd.build(&s)
	if err != nil {
		return nil, Minted{}, err
	}
	if user != "" {
		minted.UserID = events.UserID(user)
	}
	return &events.Event{
		ID:            id,
		Source:        s.Source,
		Kind:          cmd.Kind(),
		User:          user,
		Time:          s.Now().UTC(),
		Actor:         s.Actor,
		CorrelationID: s.CorrelationID,
		Data:          data,
	}, minted, nil
}

// Limits of command fields. They mirror the event schemas under schemas/events, so a command
// Build accepts always encodes; text limits count characters, as JSON Schema does.
const (
	maxShortText  = 256     // category, tool_name, entity name and type
	maxTitle      = 1024    // message title, erase reason
	maxText       = 65536   // preference, context, task, thought, action, observation, outcome, error
	maxContent    = 262144  // message content
	maxProperties = 256     // attributes, metadata
	maxAppliesTo  = 64      // applies_to entries
	maxStepNumber = 1000000 // step_number
)

// mint returns given when it is a valid UUIDv7, a new UUIDv7 when given is empty: the ids of
// what a command creates are minted at ingest, or chosen by a caller that wants safe retries.
func mint(field, given string) (string, error) {
	if given == "" {
		return events.NewID(), nil
	}
	u, err := uuid.Parse(given)
	if err != nil || u.String() != given {
		return "", fieldErr(field, "must be a UUID in canonical lower-case form, got %q", clip(given))
	}
	if u.Version() != 7 {
		return "", fieldErr(field, "must be a UUIDv7 (time-ordered), got version %d", u.Version())
	}
	return given, nil
}

// user resolves the user a write belongs to, enforcing the multi-tenant guardrail.
func (s *Settings) user(given string) (string, error) {
	if given == "" {
		if s.MultiTenant {
			return "", &FieldError{Field: "user_identifier", Reason: "is required: multi-tenant mode is on, so every write must name its user", err: events.ErrNoUser}
		}
		return "", nil
	}
	if err := identifier("user_identifier", given); err != nil {
		return "", err
	}
	return given, nil
}

func identifier(field, v string) error {
	if err := events.ValidateIdentifier(v); err != nil {
		reason := strings.TrimPrefix(err.Error(), events.ErrInvalidIdentifier.Error()+": ")
		if v == "" {
			reason = "is required"
		}
		return &FieldError{Field: field, Reason: reason, err: events.ErrInvalidIdentifier}
	}
	return nil
}

func reference(field, v string) error {
	if v == "" {
		return fieldErr(field, "is required")
	}
	u, err := uuid.Parse(v)
	if err != nil || u.String() != v {
		return fieldErr(field, "must be a UUID in canonical lower-case form, got %q", clip(v))
	}
	return nil
}

func text(field, v string, min, max int) error {
	if !utf8.ValidString(v) {
		return fieldErr(field, "is not valid UTF-8")
	}
	n := utf8.RuneCountInString(v)
	switch {
	case n < min && n == 0:
		return fieldErr(field, "is required")
	case n < min:
		return fieldErr(field, "must have at least %d characters", min)
	case n > max:
		return fieldErr(field, "has %d characters, at most %d allowed", n, max)
	}
	return nil
}

func object(field string, m map[string]any) error {
	if len(m) > maxProperties {
		return fieldErr(field, "has %d properties, at most %d allowed", len(m), maxProperties)
	}
	return nil
}

func oneOf(field, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		if v == "" {
			return fieldErr(field, "is required: one of %s", strings.Join(allowed, ", "))
		}
		return fieldErr(field, "%q is not one of %s", clip(v), strings.Join(allowed, ", "))
	}
	return nil
}

// clip shortens a value quoted in an error message.
func clip(v string) string {
	const n = 64
	if len(v) <= n {
		return v
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return v[:cut] + "…"
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *UpsertUser) build(_ *Settings) (string, any, Minted, error) {
	if err := firstErr(identifier("identifier", c.Identifier), object("attributes", c.Attributes)); err != nil {
		return "", nil, Minted{}, err
	}
	var attrs map[string]any // nil: the event leaves the stored attributes
	switch {
	case c.ClearAttributes && len(c.Attributes) > 0:
		return "", nil, Minted{}, fieldErr("clear_attributes", "cannot be combined with non-empty attributes, which replace the stored ones wholesale already")
	case c.ClearAttributes:
		attrs = map[string]any{} // the event's {}: clear
	case len(c.Attributes) > 0:
		attrs = c.Attributes
	}
	return c.Identifier, events.UserUpserted{
		UserID: events.UserID(c.Identifier), Identifier: c.Identifier, Attributes: attrs,
	}, Minted{}, nil
}

func (c *EraseUser) build(_ *Settings) (string, any, Minted, error) {
	if err := firstErr(identifier("identifier", c.Identifier), text("reason", c.Reason, 0, maxTitle)); err != nil {
		return "", nil, Minted{}, err
	}
	return c.Identifier, events.UserErased{Identifier: c.Identifier, Reason: c.Reason}, Minted{}, nil
}

func (c *RecreateUser) build(_ *Settings) (string, any, Minted, error) {
	if err := firstErr(identifier("identifier", c.Identifier), text("reason", c.Reason, 0, maxTitle)); err != nil {
		return "", nil, Minted{}, err
	}
	return c.Identifier, events.UserRecreated{UserID: events.UserID(c.Identifier), Identifier: c.Identifier, Reason: c.Reason}, Minted{}, nil
}

func (c *AddMessage) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := firstErr(
		identifier("session_id", c.SessionID),
		oneOf("role", c.Role, events.Roles),
		text("content", c.Content, 0, maxContent), // empty: an assistant turn that is only a tool call
		text("title", c.Title, 0, maxTitle),
		object("metadata", c.Metadata),
		instant("timestamp", c.Timestamp),
	); err != nil {
		return "", nil, Minted{}, err
	}
	id, err := mint("message_id", c.MessageID)
	if err != nil {
		return "", nil, Minted{}, err
	}
	vec, err := s.embedding(c.Embedding, c.Content)
	if err != nil {
		return "", nil, Minted{}, err
	}
	conv := events.ConversationID(user, c.SessionID)
	return user, events.MessageAdded{
		MessageID: id, ConversationID: conv, SessionID: c.SessionID, Role: c.Role,
		Content: c.Content, Timestamp: utc(c.Timestamp), Metadata: c.Metadata, Title: c.Title,
		Embedding: vec,
	}, Minted{MessageID: id, ConversationID: conv}, nil
}

func (c *AddPreference) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := firstErr(
		text("category", c.Category, 1, maxShortText),
		text("preference", c.Preference, 1, maxText),
		text("context", c.Context, 0, maxText),
		object("metadata", c.Metadata),
		instant("valid_from", c.ValidFrom),
		appliesTo(c.AppliesTo),
	); err != nil {
		return "", nil, Minted{}, err
	}
	if c.Confidence != nil && !(*c.Confidence >= 0 && *c.Confidence <= 1) {
		return "", nil, Minted{}, fieldErr("confidence", "must be between 0 and 1, got %v", *c.Confidence)
	}
	id, err := mint("preference_id", c.PreferenceID)
	if err != nil {
		return "", nil, Minted{}, err
	}
	vec, err := s.embedding(c.Embedding, joinText(c.Preference, c.Context))
	if err != nil {
		return "", nil, Minted{}, err
	}
	return user, events.PreferenceAdded{
		PreferenceID: id, Category: c.Category, Preference: c.Preference, Context: c.Context,
		Confidence: c.Confidence, ValidFrom: utc(c.ValidFrom), Metadata: c.Metadata,
		AppliesTo: slices.Clone(c.AppliesTo), Embedding: vec,
	}, Minted{PreferenceID: id}, nil
}

func appliesTo(refs []events.EntityRef) error {
	if len(refs) > maxAppliesTo {
		return fieldErr("applies_to", "has %d entries, at most %d allowed", len(refs), maxAppliesTo)
	}
	for i, r := range refs {
		f := fmt.Sprintf("applies_to[%d]", i)
		if r.ID == "" && r.Name == "" {
			return fieldErr(f, "needs an id or a name")
		}
		if r.ID != "" {
			if err := reference(f+".id", r.ID); err != nil {
				return err
			}
		}
		if r.Name != "" {
			if err := text(f+".name", r.Name, 1, maxShortText); err != nil {
				return err
			}
		}
		if err := text(f+".type", r.Type, 0, maxShortText); err != nil {
			return err
		}
	}
	return nil
}

func (c *SupersedePreference) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := firstErr(reference("old_id", c.OldID), reference("new_id", c.NewID), instant("valid_until", c.ValidUntil)); err != nil {
		return "", nil, Minted{}, err
	}
	if c.OldID == c.NewID {
		return "", nil, Minted{}, fieldErr("new_id", "must differ from old_id: a preference cannot supersede itself")
	}
	return user, events.PreferenceSuperseded{OldID: c.OldID, NewID: c.NewID, ValidUntil: utc(c.ValidUntil)}, Minted{}, nil
}

func (c *StartTrace) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := firstErr(
		identifier("session_id", c.SessionID),
		text("task", c.Task, 1, maxText),
		object("metadata", c.Metadata),
	); err != nil {
		return "", nil, Minted{}, err
	}
	id, err := mint("trace_id", c.TraceID)
	if err != nil {
		return "", nil, Minted{}, err
	}
	vec, err := s.embedding(c.Embedding, c.Task)
	if err != nil {
		return "", nil, Minted{}, err
	}
	return user, events.TraceStarted{TraceID: id, SessionID: c.SessionID, Task: c.Task, Metadata: c.Metadata, Embedding: vec},
		Minted{TraceID: id}, nil
}

func (c *AddTraceStep) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := firstErr(
		reference("trace_id", c.TraceID),
		text("thought", c.Thought, 0, maxText),
		text("action", c.Action, 0, maxText),
		text("observation", c.Observation, 0, maxText),
	); err != nil {
		return "", nil, Minted{}, err
	}
	if c.StepNumber < 0 || c.StepNumber > maxStepNumber {
		return "", nil, Minted{}, fieldErr("step_number", "must be between 0 and %d, got %d", maxStepNumber, c.StepNumber)
	}
	id, err := mint("step_id", c.StepID)
	if err != nil {
		return "", nil, Minted{}, err
	}
	return user, events.TraceStepAdded{
		TraceID: c.TraceID, StepID: id, StepNumber: c.StepNumber,
		Thought: c.Thought, Action: c.Action, Observation: c.Observation,
	}, Minted{StepID: id}, nil
}

func (c *RecordToolCall) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	status := c.Status
	if status == "" {
		status = "success"
	}
	if err := firstErr(
		reference("trace_id", c.TraceID),
		reference("step_id", c.StepID),
		text("tool_name", c.ToolName, 1, maxShortText),
		oneOf("status", status, events.ToolCallStatuses),
		text("error", c.Error, 0, maxText),
	); err != nil {
		return "", nil, Minted{}, err
	}
	if c.DurationMS != nil && (*c.DurationMS < 0 || *c.DurationMS > events.MaxToolCallDurationMS) {
		return "", nil, Minted{}, fieldErr("duration_ms", "must be 0 to %d (7 days), got %d", int64(events.MaxToolCallDurationMS), *c.DurationMS)
	}
	id, err := mint("tool_call_id", c.ToolCallID)
	if err != nil {
		return "", nil, Minted{}, err
	}
	return user, events.ToolCallRecorded{
		TraceID: c.TraceID, StepID: c.StepID, ToolCallID: id, ToolName: c.ToolName,
		Arguments: c.Arguments, Result: c.Result, Status: status, DurationMS: c.DurationMS, Error: c.Error,
	}, Minted{ToolCallID: id}, nil
}

func (c *CompleteTrace) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := firstErr(reference("trace_id", c.TraceID), text("outcome", c.Outcome, 0, maxText)); err != nil {
		return "", nil, Minted{}, err
	}
	return user, events.TraceCompleted{TraceID: c.TraceID, Outcome: c.Outcome, Success: c.Success}, Minted{}, nil
}

func (c *AddEntity) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := firstErr(
		text("name", c.Name, 1, maxShortText),
		text("type", c.Type, 1, maxShortText),
		text("subtype", c.Subtype, 0, maxShortText),
		text("description", c.Description, 0, maxText),
		texts("aliases", c.Aliases, maxAppliesTo, maxShortText),
		object("attributes", c.Attributes),
		confidence(c.Confidence),
		references("message_ids", c.MessageIDs),
		references("trace_ids", c.TraceIDs),
	); err != nil {
		return "", nil, Minted{}, err
	}
	vec, err := s.embedding(c.Embedding, joinText(c.Name, c.Description))
	if err != nil {
		return "", nil, Minted{}, err
	}
	return user, events.EntityAdded{
		Name: c.Name, Type: c.Type, Subtype: c.Subtype, Description: c.Description,
		Aliases: slices.Clone(c.Aliases), Attributes: c.Attributes, Confidence: c.Confidence,
		MessageIDs: slices.Clone(c.MessageIDs), TraceIDs: slices.Clone(c.TraceIDs), Embedding: vec,
	}, Minted{EntityID: events.EntityID(user, c.Name, c.Type)}, nil
}

// embedding is a write's vector: the one given (checked), else the embedder's of text (none
// without an embedder or without words in text).
func (s *Settings) embedding(given []float64, text string) ([]float64, error) {
	if given != nil {
		if err := embed.Check(given); err != nil {
			return nil, fieldErr("embedding", "%v", err)
		}
		return slices.Clone(given), nil
	}
	if s.Embedder == nil {
		return nil, nil
	}
	v, err := s.Embedder.Embed(text)
	if err != nil {
		return nil, fmt.Errorf("embedder %s: %w", s.Embedder.Name(), err)
	}
	return v, nil
}

// joinText is what the embedder reads of a write with two texts.
func joinText(a, b string) string {
	if b == "" {
		return a
	}
	return a + "\n" + b
}

func (c *AddRelationship) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := firstErr(
		entityRef("source", c.Source),
		entityRef("target", c.Target),
		text("type", c.Type, 1, maxShortText),
		text("description", c.Description, 0, maxText),
		confidence(c.Confidence),
		instant("valid_from", c.ValidFrom),
		instant("valid_until", c.ValidUntil),
		object("attributes", c.Attributes),
	); err != nil {
		return "", nil, Minted{}, err
	}
	src, dst := refID(user, c.Source), refID(user, c.Target)
	if src == dst {
		return "", nil, Minted{}, fieldErr("target", "names the source entity: an entity cannot be related to itself")
	}
	if c.ValidFrom != nil && c.ValidUntil != nil && !c.ValidUntil.After(*c.ValidFrom) {
		return "", nil, Minted{}, fieldErr("valid_until", "must be after valid_from")
	}
	return user, events.RelationshipAdded{
		Source: c.Source, Target: c.Target, Type: c.Type, Description: c.Description,
		Confidence: c.Confidence, ValidFrom: utc(c.ValidFrom), ValidUntil: utc(c.ValidUntil), Attributes: c.Attributes,
	}, Minted{RelationshipID: events.RelationshipID(user, src, c.Type, dst)}, nil
}

func (c *MergeEntities) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := firstErr(reference("source_id", c.SourceID), reference("target_id", c.TargetID)); err != nil {
		return "", nil, Minted{}, err
	}
	if c.SourceID == c.TargetID {
		return "", nil, Minted{}, fieldErr("target_id", "must differ from source_id: an entity cannot be merged into itself")
	}
	return user, events.EntitiesMerged{SourceID: c.SourceID, TargetID: c.TargetID}, Minted{EntityID: c.TargetID}, nil
}

func (c *AddFact) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := firstErr(
		text("subject", c.Subject, 1, maxTitle),
		text("predicate", c.Predicate, 1, maxShortText),
		text("object", c.Object, 1, maxText),
		confidence(c.Confidence),
		instant("valid_from", c.ValidFrom),
		instant("valid_until", c.ValidUntil),
		object("metadata", c.Metadata),
	); err != nil {
		return "", nil, Minted{}, err
	}
	if c.ValidFrom != nil && c.ValidUntil != nil && !c.ValidUntil.After(*c.ValidFrom) {
		return "", nil, Minted{}, fieldErr("valid_until", "must be after valid_from")
	}
	id, err := mint("fact_id", c.FactID)
	if err != nil {
		return "", nil, Minted{}, err
	}
	return user, events.FactAdded{
		FactID: id, Subject: c.Subject, Predicate: c.Predicate, Object: c.Object, Confidence: c.Confidence,
		ValidFrom: utc(c.ValidFrom), ValidUntil: utc(c.ValidUntil), Metadata: c.Metadata,
	}, Minted{FactID: id}, nil
}

func (c *DeleteMessage) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := reference("message_id", c.MessageID); err != nil {
		return "", nil, Minted{}, err
	}
	if c.SessionID == "" {
		return user, events.MessageDeleted{MessageID: c.MessageID}, Minted{MessageID: c.MessageID}, nil
	}
	if err := identifier("session_id", c.SessionID); err != nil {
		return "", nil, Minted{}, err
	}
	conv := events.ConversationID(user, c.SessionID)
	return user, events.MessageDeleted{MessageID: c.MessageID, ConversationID: conv, SessionID: c.SessionID},
		Minted{MessageID: c.MessageID, ConversationID: conv}, nil
}

func (c *ClearSession) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := identifier("session_id", c.SessionID); err != nil {
		return "", nil, Minted{}, err
	}
	conv := events.ConversationID(user, c.SessionID)
	return user, events.SessionCleared{ConversationID: conv, SessionID: c.SessionID}, Minted{ConversationID: conv}, nil
}

// refID is the entity id a reference names: its id, or the derived id of its name and type.
func refID(user string, r events.EntityRef) string {
	if r.ID != "" {
		return r.ID
	}
	return events.EntityID(user, r.Name, r.Type)
}

// entityRef checks one reference to an entity: an id, or a name with an optional type.
func entityRef(field string, r events.EntityRef) error {
	if r.ID == "" && r.Name == "" {
		return fieldErr(field, "needs an id or a name")
	}
	if r.ID != "" {
		if err := reference(field+".id", r.ID); err != nil {
			return err
		}
	}
	if r.Name != "" {
		if err := text(field+".name", r.Name, 1, maxShortText); err != nil {
			return err
		}
	}
	return text(field+".type", r.Type, 0, maxShortText)
}

func confidence(c *float64) error {
	if c != nil && !(*c >= 0 && *c <= 1) {
		return fieldErr("confidence", "must be between 0 and 1, got %v", *c)
	}
	return nil
}

// texts checks a list of at most maxItems strings of 1 to maxLen characters each.
func texts(field string, vs []string, maxItems, maxLen int) error {
	if len(vs) > maxItems {
		return fieldErr(field, "has %d entries, at most %d allowed", len(vs), maxItems)
	}
	for i, v := range vs {
		if err := text(fmt.Sprintf("%s[%d]", field, i), v, 1, maxLen); err != nil {
			return err
		}
	}
	return nil
}

// references checks a list of at most maxAppliesTo ids.
func references(field string, ids []string) error {
	if len(ids) > maxAppliesTo {
		return fieldErr(field, "has %d entries, at most %d allowed", len(ids), maxAppliesTo)
	}
	for i, id := range ids {
		if err := reference(fmt.Sprintf("%s[%d]", field, i), id); err != nil {
			return err
		}
	}
	return nil
}

// instant refuses times RFC 3339 cannot carry (events.CheckTime): an offset of 24 hours or
// more, a year outside 0000-9999 once in UTC. The event stores times in UTC, so such a time
// would be applied and then break every read that returns it.
func instant(field string, t *time.Time) error {
	if t == nil {
		return nil
	}
	if err := events.CheckTime(*t); err != nil {
		return fieldErr(field, "%v", err)
	}
	return nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
