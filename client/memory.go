package client

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
)

// Users manages user identities (the seed's client.users).
type Users struct{ c *Client }

// UpsertUser creates the user or updates their attributes (WithAttributes,
// WithClearedAttributes). Idempotent: safe
// on every request or session start.
func (u *Users) UpsertUser(ctx context.Context, identifier string, opts ...WriteOption) (*User, error) {
	w := collect(opts)
	cmd := &ingest.UpsertUser{Identifier: identifier, Attributes: w.attributes, ClearAttributes: w.clearAttrs}
	m, r, err := u.c.write(ctx, "upsert_user", cmd, "PUT", "/v1/users/"+url.PathEscape(identifier))
	if err != nil {
		return nil, err
	}
	return &User{ID: m.UserID, Identifier: identifier, Receipt: r}, nil
}

// GetUser reads a user; ErrNotFound when there is none.
func (u *Users) GetUser(ctx context.Context, identifier string, opts ...ReadOption) (*User, error) {
	var out User
	if err := u.c.read(ctx, "get_user", identifier, readPath(identifier), consistency(collectRead(opts)), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EraseUser asks Engram to forget the user: every node they own is deleted and their events
// are purged from the log, keeping only an erasure tombstone (docs/replay.md, "Erasure").
func (u *Users) EraseUser(ctx context.Context, identifier string, opts ...WriteOption) (Receipt, error) {
	w := collect(opts)
	_, r, err := u.c.write(ctx, "erase_user", &ingest.EraseUser{Identifier: identifier, Reason: w.reason},
		"DELETE", "/v1/users/"+url.PathEscape(identifier))
	return r, err
}

// ShortTerm is conversation memory (the seed's client.short_term).
type ShortTerm struct{ c *Client }

// AddMessage appends a message to the conversation of sessionID; scope it with ForUser.
func (s *ShortTerm) AddMessage(ctx context.Context, sessionID, role, content string, opts ...WriteOption) (*Message, error) {
	w := collect(opts)
	cmd := &ingest.AddMessage{UserIdentifier: w.user, SessionID: sessionID, Role: role, Content: content,
		Timestamp: w.timestamp, Metadata: w.metadata, Title: w.title, Embedding: w.embedding}
	m, r, err := s.c.write(ctx, "add_message", cmd, "POST", "/v1/messages")
	if err != nil {
		return nil, err
	}
	return &Message{ID: m.MessageID, ConversationID: m.ConversationID, SessionID: sessionID, Role: role,
		Content: content, Timestamp: w.timestamp, Receipt: r}, nil
}

// GetConversations lists a user's conversations, most recently updated first.
func (s *ShortTerm) GetConversations(ctx context.Context, identifier string, opts ...ReadOption) ([]Conversation, error) {
	ro := collectRead(opts)
	q := consistency(ro)
	if ro.limit != 0 {
		q.Set("limit", strconv.Itoa(ro.limit))
	}
	var out struct {
		Conversations []Conversation `json:"conversations"`
	}
	err := s.c.read(ctx, "get_conversations", identifier, readPath(identifier)+"/conversations", q, &out)
	return out.Conversations, err
}

// GetMessages returns a page of the messages of the user's conversation of sessionID, oldest
// first unless NewestFirst; page on with After(page.NextCursor), or Since/Before.
func (s *ShortTerm) GetMessages(ctx context.Context, identifier, sessionID string, opts ...ReadOption) (*MessagePage, error) {
	ro := collectRead(opts)
	q := consistency(ro)
	if ro.limit != 0 {
		q.Set("limit", strconv.Itoa(ro.limit))
	}
	if ro.order != "" {
		q.Set("order", ro.order)
	}
	if ro.since != nil {
		q.Set("since", ro.since.UTC().Format(time.RFC3339Nano))
	}
	if ro.before != nil {
		q.Set("before", ro.before.UTC().Format(time.RFC3339Nano))
	}
	if ro.cursor != "" {
		q.Set("cursor", ro.cursor)
	}
	var out MessagePage
	err := s.c.read(ctx, "get_messages", identifier,
		readPath(identifier)+"/conversations/"+url.PathEscape(sessionID)+"/messages", q, &out)
	return &out, err
}

// LongTerm is preference memory (the seed's client.long_term).
type LongTerm struct{ c *Client }

// AddPreference records a preference; scope it with ForUser, attach entities with AppliesTo.
func (l *LongTerm) AddPreference(ctx context.Context, category, preference string, opts ...WriteOption) (*Preference, error) {
	w := collect(opts)
	refs := make([]events.EntityRef, len(w.appliesTo))
	for i, r := range w.appliesTo {
		refs[i] = events.EntityRef(r)
	}
	cmd := &ingest.AddPreference{UserIdentifier: w.user, Category: category, Preference: preference,
		Context: w.context, Confidence: w.confidence, ValidFrom: w.validFrom, Metadata: w.metadata, AppliesTo: refs,
		Embedding: w.embedding}
	m, r, err := l.c.write(ctx, "add_preference", cmd, "POST", "/v1/preferences")
	if err != nil {
		return nil, err
	}
	l.c.owners.put(m.PreferenceID, w.user)
	p := &Preference{ID: m.PreferenceID, User: w.user, Category: category, Preference: preference,
		ValidFrom: w.validFrom, Receipt: r, Confidence: 1}
	if w.confidence != nil {
		p.Confidence = *w.confidence
	}
	if w.context != "" {
		p.Context = &w.context
	}
	for _, ref := range w.appliesTo {
		p.AppliesTo = append(p.AppliesTo, Entity(ref))
	}
	return p, nil
}

// SupersedePreference replaces preference oldID by newID: (old)-[:SUPERSEDED_BY]->(new), and
// old's valid_until (ValidUntil, default now). As in the seed it needs no user when this
// client added the old preference; otherwise pass ForUser.
func (l *LongTerm) SupersedePreference(ctx context.Context, oldID, newID string, opts ...WriteOption) (Receipt, error) {
	w := collect(opts)
	if w.user == "" {
		w.user, _ = l.c.owners.get(oldID)
	}
	cmd := &ingest.SupersedePreference{UserIdentifier: w.user, OldID: oldID, NewID: newID, ValidUntil: w.validUntil}
	_, r, err := l.c.write(ctx, "supersede_preference", cmd, "POST", "/v1/preferences/"+url.PathEscape(oldID)+"/supersede")
	return r, err
}

// GetPreferencesFor returns the user's preferences with the seed's semantics: active only by
// default (ActiveOnly(false) includes superseded ones), optionally AppliesToEntity, AsOf a
// valid time, or KnownAt a transaction time.
func (l *LongTerm) GetPreferencesFor(ctx context.Context, identifier string, opts ...ReadOption) ([]Preference, error) {
	ro := collectRead(opts)
	q := consistency(ro)
	if ro.appliesTo != nil {
		for k, v := range map[string]string{"applies_to_id": ro.appliesTo.ID, "applies_to_name": ro.appliesTo.Name, "applies_to_type": ro.appliesTo.Type} {
			if v != "" {
				q.Set(k, v)
			}
		}
	}
	if ro.activeOnly != nil {
		q.Set("active_only", strconv.FormatBool(*ro.activeOnly))
	}
	setTime(q, "as_of", ro.asOf)
	setTime(q, "known_at", ro.knownAt)
	var out struct {
		Preferences []Preference `json:"preferences"`
	}
	if err := l.c.read(ctx, "get_preferences_for", identifier, readPath(identifier)+"/preferences", q, &out); err != nil {
		return nil, err
	}
	for i := range out.Preferences {
		out.Preferences[i].User = identifier
	}
	return out.Preferences, nil
}

// PreferenceHistory returns every version of the user's preferences (the audit view).
func (l *LongTerm) PreferenceHistory(ctx context.Context, identifier string, opts ...ReadOption) ([]Preference, error) {
	ro := collectRead(opts)
	q := consistency(ro)
	setTime(q, "known_at", ro.knownAt)
	var out struct {
		Preferences []Preference `json:"preferences"`
	}
	err := l.c.read(ctx, "preference_history", identifier, readPath(identifier)+"/preferences/history", q, &out)
	return out.Preferences, err
}

// Reasoning is reasoning-trace memory (the seed's client.reasoning).
type Reasoning struct{ c *Client }

// StartTrace opens a trace for a task in a session; scope it with ForUser.
func (r *Reasoning) StartTrace(ctx context.Context, sessionID, task string, opts ...WriteOption) (*Trace, error) {
	w := collect(opts)
	cmd := &ingest.StartTrace{UserIdentifier: w.user, SessionID: sessionID, Task: task, Metadata: w.metadata, Embedding: w.embedding}
	m, rc, err := r.c.write(ctx, "start_trace", cmd, "POST", "/v1/traces")
	if err != nil {
		return nil, err
	}
	r.c.owners.put(m.TraceID, w.user)
	return &Trace{ID: m.TraceID, User: w.user, SessionID: sessionID, Task: task, Receipt: rc}, nil
}

// AddStep adds a step (Thought, Action, Observation) to a trace this client started, or pass
// ForUser.
func (r *Reasoning) AddStep(ctx context.Context, traceID string, opts ...WriteOption) (*Step, error) {
	w := r.owned(traceID, opts)
	cmd := &ingest.AddTraceStep{UserIdentifier: w.user, TraceID: traceID, StepNumber: w.stepNumber,
		Thought: w.thought, Action: w.action, Observation: w.observation}
	m, rc, err := r.c.write(ctx, "add_trace_step", cmd, "POST", "/v1/traces/"+url.PathEscape(traceID)+"/steps")
	if err != nil {
		return nil, err
	}
	return &Step{ID: m.StepID, TraceID: traceID, Receipt: rc}, nil
}

// RecordToolCall records a call of toolName made in a step.
func (r *Reasoning) RecordToolCall(ctx context.Context, traceID, stepID, toolName string, opts ...WriteOption) (*ToolCall, error) {
	w := r.owned(traceID, opts)
	cmd := &ingest.RecordToolCall{UserIdentifier: w.user, TraceID: traceID, StepID: stepID, ToolName: toolName,
		Arguments: w.arguments, Result: w.result, Status: w.status, DurationMS: w.durationMS, Error: w.errText}
	m, rc, err := r.c.write(ctx, "record_tool_call", cmd, "POST", "/v1/traces/"+url.PathEscape(traceID)+"/tool-calls")
	if err != nil {
		return nil, err
	}
	return &ToolCall{ID: m.ToolCallID, ToolName: toolName, Status: cmd.Status, Receipt: rc}, nil
}

// CompleteTrace closes a trace with WithOutcome and WithSuccess.
func (r *Reasoning) CompleteTrace(ctx context.Context, traceID string, opts ...WriteOption) (Receipt, error) {
	w := r.owned(traceID, opts)
	cmd := &ingest.CompleteTrace{UserIdentifier: w.user, TraceID: traceID, Outcome: w.outcome, Success: w.success}
	_, rc, err := r.c.write(ctx, "complete_trace", cmd, "POST", "/v1/traces/"+url.PathEscape(traceID)+"/complete")
	return rc, err
}

// GetTrace reads a trace of the user with its steps and tool calls; ErrNotFound when the user
// has no such trace.
func (r *Reasoning) GetTrace(ctx context.Context, identifier, traceID string, opts ...ReadOption) (*Trace, error) {
	var out Trace
	if err := r.c.read(ctx, "get_trace", identifier, readPath(identifier)+"/traces/"+url.PathEscape(traceID),
		consistency(collectRead(opts)), &out); err != nil {
		return nil, err
	}
	out.User = identifier
	return &out, nil
}

// ListTraces lists the user's traces, or one session's with InSession.
func (r *Reasoning) ListTraces(ctx context.Context, identifier string, opts ...ReadOption) ([]Trace, error) {
	ro := collectRead(opts)
	q := consistency(ro)
	if ro.sessionID != "" {
		q.Set("session_id", ro.sessionID)
	}
	if ro.limit != 0 {
		q.Set("limit", strconv.Itoa(ro.limit))
	}
	var out struct {
		Traces []Trace `json:"traces"`
	}
	err := r.c.read(ctx, "list_traces", identifier, readPath(identifier)+"/traces", q, &out)
	return out.Traces, err
}

func (r *Reasoning) owned(traceID string, opts []WriteOption) writeOpts {
	w := collect(opts)
	if w.user == "" {
		w.user, _ = r.c.owners.get(traceID)
	}
	return w
}

// readPath is the root of the query service's reads about identifier; "" is the shared
// tenant, whose reads exist only while multi-tenant mode is off (docs/query.md).
func readPath(identifier string) string {
	if identifier == "" {
		return sharedPath
	}
	return "/v1/users/" + url.PathEscape(identifier)
}

// sharedPath is the query service's reads of the shared tenant (writes without a user, when
// multi-tenant mode is off).
const sharedPath = "/v1/shared"

func consistency(ro readOpts) url.Values {
	q := url.Values{}
	if ro.consistency > 0 {
		q.Set("consistency", strconv.FormatUint(ro.consistency, 10))
	}
	return q
}

func setTime(q url.Values, key string, t *time.Time) {
	if t != nil {
		q.Set(key, t.UTC().Format(time.RFC3339Nano))
	}
}

// DeleteMessage deletes a message of the user named by ForUser (the library's
// delete_message): the message leaves its conversation, whose chain is mended around it. A
// message that does not exist is no error; one of another user is dead-lettered (Fate). The
// log keeps the message's content in its earlier event until the user is erased.
func (s *ShortTerm) DeleteMessage(ctx context.Context, messageID string, opts ...WriteOption) (Receipt, error) {
	w := collect(opts)
	path := "/messages/" + url.PathEscape(messageID)
	if w.user != "" {
		path = "/users/" + url.PathEscape(w.user) + path
	}
	_, r, err := s.c.write(ctx, "delete_message", &ingest.DeleteMessage{UserIdentifier: w.user, MessageID: messageID}, "DELETE", "/v1"+path)
	return r, err
}

// ClearSession deletes the conversation of sessionID of the user named by ForUser and all
// its messages (the library's clear_session); a later message of the session starts it anew.
// Clearing a session without messages is no error.
func (s *ShortTerm) ClearSession(ctx context.Context, sessionID string, opts ...WriteOption) (Receipt, error) {
	w := collect(opts)
	path := "/conversations/" + url.PathEscape(sessionID)
	if w.user != "" {
		path = "/users/" + url.PathEscape(w.user) + path
	}
	_, r, err := s.c.write(ctx, "clear_session", &ingest.ClearSession{UserIdentifier: w.user, SessionID: sessionID}, "DELETE", "/v1"+path)
	return r, err
}
