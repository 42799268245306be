package client

import (
	"context"
	"net/url"
	"strconv"
)

// Mentions: the messages and reasoning traces that mention an entity (MentionedIn and
// MentionedInTrace on AddEntity), read from either end (docs/query.md, "Mentions").

// EntityMentions is the answer of GetEntityMentions: the messages (newest first, each with
// its ConversationID and SessionID) and the traces (latest started first) that mention an
// entity, at most Limit of each.
type EntityMentions struct {
	EntityID string `json:"entity_id"`
	// ResolvedFrom is the id asked for when it names an entity merged into EntityID.
	ResolvedFrom *string   `json:"resolved_from"`
	Messages     []Message `json:"messages"`
	Traces       []Trace   `json:"traces"`
	// Truncated: more messages or more traces mention it than Limit let through.
	Truncated bool `json:"truncated"`
}

// MentionedEntities is the answer of GetMessageEntities and GetTraceEntities: the entities a
// message or trace mentions, by name then id, at most Limit.
type MentionedEntities struct {
	MessageID string         `json:"message_id,omitempty"`
	TraceID   string         `json:"trace_id,omitempty"`
	Entities  []EntityDetail `json:"entities"`
	// Truncated: it mentions more entities than Limit let through.
	Truncated bool `json:"truncated"`
}

// GetEntityMentions reads the messages and traces of the user that mention the user's entity
// id (its survivor when it was merged); Limit bounds each list. ErrNotFound when the user has
// no entity of that id.
func (l *LongTerm) GetEntityMentions(ctx context.Context, identifier, id string, opts ...ReadOption) (*EntityMentions, error) {
	var out EntityMentions
	if err := l.c.read(ctx, "get_entity_mentions", identifier, readPath(identifier)+"/entities/"+url.PathEscape(id)+"/mentions",
		mentionQuery(opts), &out); err != nil {
		return nil, err
	}
	for i := range out.Traces {
		out.Traces[i].User = identifier
	}
	return &out, nil
}

// GetMessageEntities reads the entities the user's message mentions (the library's
// get_entities_from_message); Limit bounds them. ErrNotFound when the user has no such
// message.
func (s *ShortTerm) GetMessageEntities(ctx context.Context, identifier, messageID string, opts ...ReadOption) (*MentionedEntities, error) {
	return mentioned(ctx, s.c, "get_message_entities", identifier, "/messages/"+url.PathEscape(messageID)+"/entities", opts)
}

// GetTraceEntities reads the entities the user's reasoning trace mentions; Limit bounds
// them. ErrNotFound when the user has no such trace.
func (r *Reasoning) GetTraceEntities(ctx context.Context, identifier, traceID string, opts ...ReadOption) (*MentionedEntities, error) {
	return mentioned(ctx, r.c, "get_trace_entities", identifier, "/traces/"+url.PathEscape(traceID)+"/entities", opts)
}

func mentioned(ctx context.Context, c *Client, op, identifier, path string, opts []ReadOption) (*MentionedEntities, error) {
	var out MentionedEntities
	if err := c.read(ctx, op, identifier, readPath(identifier)+path, mentionQuery(opts), &out); err != nil {
		return nil, err
	}
	for i := range out.Entities {
		out.Entities[i].User = identifier
	}
	return &out, nil
}

func mentionQuery(opts []ReadOption) url.Values {
	ro := collectRead(opts)
	q := consistency(ro)
	if ro.limit != 0 {
		q.Set("limit", strconv.Itoa(ro.limit))
	}
	return q
}
