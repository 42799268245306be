package client

import (
	"time"
)

// WriteOption refines a write: ForUser, AppliesTo, WithMetadata, ...
type WriteOption func(*writeOpts)

type writeOpts struct {
	user        string
	attributes  map[string]any
	clearAttrs  bool
	metadata    map[string]any
	appliesTo   []EntityRef
	context     string
	confidence  *float64
	validFrom   *time.Time
	validUntil  *time.Time
	timestamp   *time.Time
	title       string
	thought     string
	action      string
	observation string
	stepNumber  int
	arguments   any
	result      any
	status      string
	durationMS  *int64
	errText     string
	outcome     string
	success     *bool
	reason      string
	embedding   []float64
	subtype     string
	description string
	aliases     []string
	messageIDs  []string
	traceIDs    []string
}

func collect(opts []WriteOption) writeOpts {
	var w writeOpts
	for _, o := range opts {
		o(&w)
	}
	return w
}

// ForUser scopes a write to a user: the seed's user_identifier=. Required in multi-tenant mode.
func ForUser(identifier string) WriteOption { return func(w *writeOpts) { w.user = identifier } }

// WithAttributes sets a user's attributes on UpsertUser: a non-empty map replaces the stored
// ones wholesale; an empty or nil map leaves them, as the library's upsert_user(attributes={})
// does; without this option they stay as they are too. WithClearedAttributes clears them.
// On AddEntity and AddRelationship it sets the entity's or relationship's attributes.
func WithAttributes(attrs map[string]any) WriteOption {
	return func(w *writeOpts) { w.attributes = attrs }
}

// WithClearedAttributes clears a user's stored attributes on UpsertUser.
func WithClearedAttributes() WriteOption { return func(w *writeOpts) { w.clearAttrs = true } }

// WithMetadata attaches metadata to a message, preference or trace.
func WithMetadata(m map[string]any) WriteOption { return func(w *writeOpts) { w.metadata = m } }

// AppliesTo names the entities a preference applies to (the seed's applies_to=[EntityRef]).
func AppliesTo(refs ...EntityRef) WriteOption {
	return func(w *writeOpts) { w.appliesTo = append(w.appliesTo, refs...) }
}

// WithContext sets a preference's context.
func WithContext(s string) WriteOption { return func(w *writeOpts) { w.context = s } }

// WithConfidence sets a preference's confidence in [0, 1] (default 1.0).
func WithConfidence(f float64) WriteOption { return func(w *writeOpts) { w.confidence = &f } }

// ValidFrom sets when a preference starts to hold (default: when it is written).
func ValidFrom(t time.Time) WriteOption { return func(w *writeOpts) { w.validFrom = &t } }

// ValidUntil sets when a superseded preference stopped holding (default: when the supersede
// is written).
func ValidUntil(t time.Time) WriteOption { return func(w *writeOpts) { w.validUntil = &t } }

// WithTimestamp sets a message's timestamp (default: when it is written).
func WithTimestamp(t time.Time) WriteOption { return func(w *writeOpts) { w.timestamp = &t } }

// WithEmbedding gives a message, preference, entity or trace start its vector for vector
// search (SearchQuery.Embedding): the event carries it, so a replay keeps it. Without it the
// ingestor's embedder, when it has one (EMBEDDER), embeds the text.
func WithEmbedding(v []float64) WriteOption { return func(w *writeOpts) { w.embedding = v } }

// WithTitle sets the title of a message's conversation.
func WithTitle(s string) WriteOption { return func(w *writeOpts) { w.title = s } }

// Thought is the thought of a reasoning step.
func Thought(s string) WriteOption { return func(w *writeOpts) { w.thought = s } }

// Action is the action of a reasoning step.
func Action(s string) WriteOption { return func(w *writeOpts) { w.action = s } }

// Observation is the observation of a reasoning step.
func Observation(s string) WriteOption { return func(w *writeOpts) { w.observation = s } }

// StepNumber numbers a step explicitly (default: the next number).
func StepNumber(n int) WriteOption { return func(w *writeOpts) { w.stepNumber = n } }

// WithArguments records a tool call's JSON arguments.
func WithArguments(v any) WriteOption { return func(w *writeOpts) { w.arguments = v } }

// WithResult records a tool call's JSON result.
func WithResult(v any) WriteOption { return func(w *writeOpts) { w.result = v } }

// WithStatus sets a tool call's status: success (default), failure, error, timeout,
// cancelled or pending.
func WithStatus(s string) WriteOption { return func(w *writeOpts) { w.status = s } }

// WithDuration records a tool call's duration.
func WithDuration(d time.Duration) WriteOption {
	return func(w *writeOpts) { ms := d.Milliseconds(); w.durationMS = &ms }
}

// WithError records a tool call's error text.
func WithError(s string) WriteOption { return func(w *writeOpts) { w.errText = s } }

// WithOutcome records how a completed trace ended.
func WithOutcome(s string) WriteOption { return func(w *writeOpts) { w.outcome = s } }

// WithSuccess says whether a completed trace succeeded.
func WithSuccess(ok bool) WriteOption { return func(w *writeOpts) { w.success = &ok } }

// WithReason records why a user is erased.
func WithReason(s string) WriteOption { return func(w *writeOpts) { w.reason = s } }

// ReadOption refines a read: AppliesToEntity, ActiveOnly, AsOf, KnownAt, ...
type ReadOption func(*readOpts)

type readOpts struct {
	appliesTo   *EntityRef
	activeOnly  *bool
	asOf        *time.Time
	knownAt     *time.Time
	consistency uint64
	limit       int
	order       string
	since       *time.Time
	before      *time.Time
	cursor      string
	sessionID   string
	toolName    string
	entityType  string
	name        string
	depth       int
	relTypes    []string
	direction   string
	subject     string
	predicate   string
}

func collectRead(opts []ReadOption) readOpts {
	var r readOpts
	for _, o := range opts {
		o(&r)
	}
	return r
}

// AppliesToEntity keeps preferences that apply to the entity: by ID when set, else by Name
// and Type, else by Name.
func AppliesToEntity(ref EntityRef) ReadOption { return func(r *readOpts) { r.appliesTo = &ref } }

// ActiveOnly (default true) drops superseded preferences.
func ActiveOnly(on bool) ReadOption { return func(r *readOpts) { r.activeOnly = &on } }

// AsOf keeps preferences valid at t (valid time: valid_from <= t < valid_until).
func AsOf(t time.Time) ReadOption { return func(r *readOpts) { r.asOf = &t } }

// KnownAt answers as the system knew it at t (transaction time).
func KnownAt(t time.Time) ReadOption { return func(r *readOpts) { r.knownAt = &t } }

// AtLeast waits until the projection covers the given consistency token (a Receipt's
// Sequence), in addition to this client's own writes.
func AtLeast(seq uint64) ReadOption { return func(r *readOpts) { r.consistency = seq } }

// Limit bounds a list (1..1000; default 100).
func Limit(n int) ReadOption { return func(r *readOpts) { r.limit = n } }

// NewestFirst lists messages newest first (default oldest first).
func NewestFirst() ReadOption { return func(r *readOpts) { r.order = "desc" } }

// Since and Before page messages by timestamp.
func Since(t time.Time) ReadOption { return func(r *readOpts) { r.since = &t } }

// Before lists messages before t.
func Before(t time.Time) ReadOption { return func(r *readOpts) { r.before = &t } }

// After continues a message listing (GetMessages) or ListUsers from a page's NextCursor.
func After(cursor string) ReadOption { return func(r *readOpts) { r.cursor = cursor } }

// InSession lists only the traces of one session.
func InSession(sessionID string) ReadOption { return func(r *readOpts) { r.sessionID = sessionID } }

// ForTool keeps the statistics of the tool of this name (GetToolStats, GetGlobalToolStats).
func ForTool(name string) ReadOption { return func(r *readOpts) { r.toolName = name } }
