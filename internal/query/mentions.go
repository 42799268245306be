package query

import (
	"context"
	"fmt"
	"net/http"
)

// Mentions: the MENTIONS edges the projector writes from a user's messages and reasoning
// traces to the entities they name (entity_added's message_ids and trace_ids; a merge moves
// them to the survivor, a deletion removes them), read from either end. Like every user read
// these start at the user's unique seek and reach the rest by its edges (conversationsOf); the
// entity, message or trace asked for is sought by its unique id (a hint: the planner would
// otherwise start at its owner index, or expand all the user's entities to filter by id) and
// must be the user's own: the entity and the trace joined to the user by HAS_ENTITY and
// HAS_TRACE, the message by its owner (a message's conversation edges would cost all the
// user's conversations to join), so another user's id finds nothing. The lists are ordered
// and bounded in COLLECT subqueries that expand from the node they start at, the neighbours
// collected by pattern comprehension and their owner checked after the unwind, so no index
// but a unique one is ever a start (TestReadsAreIndexBacked).

// MentioningMessage is a message that mentions an entity, with its conversation.
type MentioningMessage struct {
	Message
	ConversationID string `json:"conversation_id"`
	SessionID      string `json:"session_id"`
}

// EntityMentions is the answer of Mentions: the messages (newest first) and the traces
// (latest started first) that mention an entity, at most the limit of each.
type EntityMentions struct {
	EntityID string `json:"entity_id"`
	// ResolvedFrom is the id asked for when it names an entity merged into this one.
	ResolvedFrom *string             `json:"resolved_from"`
	Messages     []MentioningMessage `json:"messages"`
	Traces       []TraceSummary      `json:"traces"`
	// Truncated: more messages or more traces mention it than the limit let through.
	Truncated bool `json:"truncated"`
}

// MentionedEntities is the answer of MessageEntities and TraceEntities: the entities a
// message or trace mentions, by name then id, at most the limit.
type MentionedEntities struct {
	MessageID string         `json:"message_id,omitempty"`
	TraceID   string         `json:"trace_id,omitempty"`
	Entities  []EntityDetail `json:"entities"`
	// Truncated: it mentions more entities than the limit let through.
	Truncated bool `json:"truncated"`
}

// MessageNotFoundError says which message a tenant does not have (it matches ErrNotFound).
type MessageNotFoundError struct{ ID string }

func (e *MessageNotFoundError) Error() string { return fmt.Sprintf("message %q not found", e.ID) }

// Unwrap makes every MessageNotFoundError match ErrNotFound.
func (e *MessageNotFoundError) Unwrap() error { return ErrNotFound }

func (e *MessageNotFoundError) notFoundIn(tenant string) string { return e.Error() + " for " + tenant }

// TraceNotFoundError says which trace a tenant does not have (it matches ErrNotFound).
type TraceNotFoundError struct{ ID string }

func (e *TraceNotFoundError) Error() string { return fmt.Sprintf("trace %q not found", e.ID) }

// Unwrap makes every TraceNotFoundError match ErrNotFound.
func (e *TraceNotFoundError) Unwrap() error { return ErrNotFound }

func (e *TraceNotFoundError) notFoundIn(tenant string) string { return e.Error() + " for " + tenant }

const (
	// The entity of id (its survivor when merged, as entityResolved), then what mentions it.
	userEntityMentions = `
MATCH (u:User {identifier: $identifier})-[:HAS_ENTITY]->(t:Entity {id: $entity_id})
USING INDEX SEEK u:User(identifier)
USING INDEX SEEK t:Entity(id)
WHERE u.owner = $owner AND t.owner = u.owner` + entityMentions
	sharedEntityMentions = `
MATCH (t:Entity {id: $entity_id})
USING INDEX SEEK t:Entity(id)
WHERE t.owner = $owner` + entityMentions
	// t leaves the scope before the traces are collected (traceFields names the trace t).
	entityMentions = entityResolve + `
WITH e, CASE WHEN e <> t THEN t.id END AS resolved_from
RETURN {id: e.id, resolved_from: resolved_from,
  messages: COLLECT {
    UNWIND [(m:Message)-[:MENTIONS]->(e) | m] AS m
    WITH m WHERE m.owner = $owner
    WITH m, CASE WHEN m.timestamp IS NOT NULL THEN datetime({datetime: m.timestamp, timezone: 'Z'}) END AS ts,
      [x IN [(c:Conversation)-[:HAS_MESSAGE]->(m) | c {.id, .session_id, .owner}] WHERE x.owner = $owner] AS c
    RETURN m {.id, .role, .content, .timestamp, .metadata, .recorded_at, conversation_id: c[0].id, session_id: c[0].session_id}
    ORDER BY ts DESC, m.id DESC
    LIMIT $limit
  },
  traces: COLLECT {
    UNWIND [(t:ReasoningTrace)-[:MENTIONS]->(e) | t] AS t
    WITH t WHERE t.owner = $owner
    RETURN t {` + traceFields + `}
    ORDER BY t.started_at DESC, t.id DESC
    LIMIT $limit
  }} AS mentions
`

	// The entities one message or trace of the user mentions.
	userMessageEntities = `
MATCH (u:User {identifier: $identifier})
USING INDEX SEEK u:User(identifier)
WHERE u.owner = $owner
MATCH (n:Message {id: $id})
USING INDEX SEEK n:Message(id)
WHERE n.owner = u.owner` + mentionedEntities
	sharedMessageEntities = `
MATCH (n:Message {id: $id})
USING INDEX SEEK n:Message(id)
WHERE n.owner = $owner` + mentionedEntities
	userTraceEntities = `
MATCH (u:User {identifier: $identifier})-[:HAS_TRACE]->(n:ReasoningTrace {id: $id})
USING INDEX SEEK u:User(identifier)
USING INDEX SEEK n:ReasoningTrace(id)
WHERE u.owner = $owner AND n.owner = u.owner` + mentionedEntities
	sharedTraceEntities = `
MATCH (n:ReasoningTrace {id: $id})
USING INDEX SEEK n:ReasoningTrace(id)
WHERE n.owner = $owner` + mentionedEntities
	mentionedEntities = `
RETURN {id: n.id, entities: COLLECT {
  UNWIND [(n)-[:MENTIONS]->(e:Entity) | e] AS e
  WITH e WHERE e.owner = $owner
  RETURN e {` + entityProjection + `, resolved_from: null}
  ORDER BY e.name, e.id
  LIMIT $limit
}} AS mentioned
`
)

// Mentions returns the user's messages and traces that mention the user's entity of id (its
// survivor when it was merged), at most `most` of each (0: DefaultLimit); an
// *EntityNotFoundError when the user has no entity of that id. "" is the shared tenant.
func (r *Reader) Mentions(ctx context.Context, identifier, id string, most int) (EntityMentions, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return EntityMentions{}, err
	}
	if err := checkText("entity_id", id, maxTextRunes); err != nil {
		return EntityMentions{}, err
	}
	n, err := limit(most, r.maxLimit)
	if err != nil {
		return EntityMentions{}, err
	}
	rows, err := r.read(ctx, "mentions", pick(identifier, userEntityMentions, sharedEntityMentions),
		map[string]any{"identifier": identifier, "owner": owner, "entity_id": id, "limit": int64(n) + 1})
	if err != nil {
		return EntityMentions{}, err
	}
	if len(rows) == 0 {
		return EntityMentions{}, &EntityNotFoundError{ID: id}
	}
	m := rows[0]
	out := EntityMentions{EntityID: str(m, "id"), ResolvedFrom: strp(m, "resolved_from"),
		Messages: []MentioningMessage{}, Traces: []TraceSummary{}}
	msgs, traces := mapList(m, "messages"), mapList(m, "traces")
	out.Truncated = len(msgs) > n || len(traces) > n
	for _, x := range msgs[:min(len(msgs), n)] {
		out.Messages = append(out.Messages, MentioningMessage{
			Message: Message{ID: str(x, "id"), Role: str(x, "role"), Content: str(x, "content"),
				Timestamp: timep(x, "timestamp"), Metadata: object(x, "metadata"), RecordedAt: timep(x, "recorded_at")},
			ConversationID: str(x, "conversation_id"),
			SessionID:      str(x, "session_id"),
		})
	}
	for _, x := range traces[:min(len(traces), n)] {
		out.Traces = append(out.Traces, traceSummaryOf(x))
	}
	return out, nil
}

// MessageEntities returns the entities the user's message of id mentions, at most `most` (0:
// DefaultLimit); a *MessageNotFoundError when the user has no message of that id.
func (r *Reader) MessageEntities(ctx context.Context, identifier, id string, most int) (MentionedEntities, error) {
	out, err := r.mentioned(ctx, identifier, id, most, pick(identifier, userMessageEntities, sharedMessageEntities),
		&MessageNotFoundError{ID: id})
	out.MessageID = id
	return out, err
}

// TraceEntities returns the entities the user's reasoning trace of id mentions, at most `most`
// (0: DefaultLimit); a *TraceNotFoundError when the user has no trace of that id.
func (r *Reader) TraceEntities(ctx context.Context, identifier, id string, most int) (MentionedEntities, error) {
	out, err := r.mentioned(ctx, identifier, id, most, pick(identifier, userTraceEntities, sharedTraceEntities),
		&TraceNotFoundError{ID: id})
	out.TraceID = id
	return out, err
}

func (r *Reader) mentioned(ctx context.Context, identifier, id string, most int, cypher string, missing error) (MentionedEntities, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return MentionedEntities{}, err
	}
	field := "message_id"
	if _, ok := missing.(*TraceNotFoundError); ok {
		field = "trace_id"
	}
	if err := checkText(field, id, maxTextRunes); err != nil {
		return MentionedEntities{}, err
	}
	n, err := limit(most, r.maxLimit)
	if err != nil {
		return MentionedEntities{}, err
	}
	rows, err := r.read(ctx, "mentioned entities", cypher,
		map[string]any{"identifier": identifier, "owner": owner, "id": id, "limit": int64(n) + 1})
	if err != nil {
		return MentionedEntities{}, err
	}
	if len(rows) == 0 {
		return MentionedEntities{}, missing
	}
	list := mapList(rows[0], "entities")
	out := MentionedEntities{Entities: make([]EntityDetail, 0, min(len(list), n)), Truncated: len(list) > n}
	for _, x := range list[:min(len(list), n)] {
		out.Entities = append(out.Entities, entityOf(x))
	}
	return out, nil
}

// mentionRead is the endpoint of a mention read of the node the path parameter param names.
func (h *Handler) mentionRead(param string, read func(ctx context.Context, identifier, id string, limit int) (any, error)) endpoint {
	return func(r *http.Request, identifier string) (readFunc, error) {
		id := r.PathValue(param)
		if err := checkText(param, id, maxTextRunes); err != nil {
			return nil, err
		}
		v := r.URL.Query()
		if err := checkParams(v, []string{"limit"}); err != nil {
			return nil, err
		}
		n, err := parseLimit(v, h.maxLimit)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (any, error) { return read(ctx, identifier, id, n) }, nil
	}
}

// The endpoints of the mention reads (registerEntities).
func (h *Handler) mentions() endpoint {
	return h.mentionRead("entity_id", func(ctx context.Context, identifier, id string, n int) (any, error) {
		return h.reader.Mentions(ctx, identifier, id, n)
	})
}

func (h *Handler) messageEntities() endpoint {
	return h.mentionRead("message_id", func(ctx context.Context, identifier, id string, n int) (any, error) {
		return h.reader.MessageEntities(ctx, identifier, id, n)
	})
}

func (h *Handler) traceEntities() endpoint {
	return h.mentionRead("trace_id", func(ctx context.Context, identifier, id string, n int) (any, error) {
		return h.reader.TraceEntities(ctx, identifier, id, n)
	})
}
