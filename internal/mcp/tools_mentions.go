package mcp

import (
	"context"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
)

// Mentions as tools: the messages and reasoning traces that mention an entity (written by
// memory_add_entity's message_ids and trace_ids), read from either end (docs/query.md,
// "Mentions"). Each is a read of the Go client, scoped to the call's user: an entity, message
// or trace the user does not have is not found, and the error names it.

// EntityMentionsIn is the input of memory_get_entity_mentions.
type EntityMentionsIn struct {
	UserArg
	EntityID string `json:"entity_id" jsonschema:"the entity (an id of memory_add_entity, memory_search_entities or a preference's applies_to)"`
	Limit    int    `json:"limit,omitempty" jsonschema:"most messages and most traces to return (each)"`
}

// EntityMentionsOut is what memory_get_entity_mentions answers.
type EntityMentionsOut struct {
	EntityID     string    `json:"entity_id" jsonschema:"the entity (its survivor when the id asked for was merged into it)"`
	ResolvedFrom *string   `json:"resolved_from" jsonschema:"the id asked for when it names an entity merged into entity_id; null otherwise"`
	Messages     []Message `json:"messages" jsonschema:"the messages that mention it, newest first, each with its session_id"`
	Traces       []Trace   `json:"traces" jsonschema:"the reasoning traces that mention it, latest started first, without steps"`
	Truncated    bool      `json:"truncated" jsonschema:"more messages or traces mention it than limit let through"`
}

// MessageEntitiesIn is the input of memory_get_message_entities.
type MessageEntitiesIn struct {
	UserArg
	MessageID string `json:"message_id" jsonschema:"the message (message_id of memory_add_messages or id of memory_get_conversation)"`
	Limit     int    `json:"limit,omitempty" jsonschema:"most entities to return"`
}

// MessageEntitiesOut is what memory_get_message_entities answers.
type MessageEntitiesOut struct {
	MessageID string      `json:"message_id"`
	Entities  []EntityOut `json:"entities" jsonschema:"the entities the message mentions, by name then id"`
	Truncated bool        `json:"truncated" jsonschema:"it mentions more entities than limit let through"`
}

// TraceEntitiesIn is the input of memory_get_trace_entities.
type TraceEntitiesIn struct {
	UserArg
	TraceID string `json:"trace_id" jsonschema:"the reasoning trace, from memory_start_trace or memory_list_traces"`
	Limit   int    `json:"limit,omitempty" jsonschema:"most entities to return"`
}

// TraceEntitiesOut is what memory_get_trace_entities answers.
type TraceEntitiesOut struct {
	TraceID   string      `json:"trace_id"`
	Entities  []EntityOut `json:"entities" jsonschema:"the entities the trace mentions, by name then id"`
	Truncated bool        `json:"truncated" jsonschema:"it mentions more entities than limit let through"`
}

func addMentionTools(r *registry) {
	id := func(name string) func(*jsonschema.Schema) { return length([]string{name}, 36, 36) }
	add(r, &sdk.Tool{
		Name: "memory_get_entity_mentions",
		Description: "Where one of the user's entities came up: the messages that mention it (newest first, with their session_id) and " +
			"the reasoning traces that mention it (latest first), as recorded by memory_add_entity's message_ids and trace_ids. A " +
			"merged entity's id answers its survivor's mentions. An unknown entity (or another user's) is not found.",
		Annotations: readOnly,
	}, schemaFor[EntityMentionsIn](id("entity_id"), limit(20, 1000)), entityMentions)

	add(r, &sdk.Tool{
		Name: "memory_get_message_entities",
		Description: "The entities one of the user's messages mentions (the library's get_entities_from_message), by name: type, " +
			"description, aliases and attributes of each. An unknown message (or another user's) is not found.",
		Annotations: readOnly,
	}, schemaFor[MessageEntitiesIn](id("message_id"), limit(50, 1000)), messageEntities)

	add(r, &sdk.Tool{
		Name: "memory_get_trace_entities",
		Description: "The entities one of the user's reasoning traces mentions, by name: type, description, aliases and attributes " +
			"of each. An unknown trace (or another user's) is not found.",
		Annotations: readOnly,
	}, schemaFor[TraceEntitiesIn](id("trace_id"), limit(50, 1000)), traceEntities)
}

func mentionOpts(limit int) []client.ReadOption {
	if limit != 0 {
		return []client.ReadOption{client.Limit(limit)}
	}
	return nil
}

func entityMentions(ctx context.Context, c *call, in EntityMentionsIn) (EntityMentionsOut, error) {
	out := EntityMentionsOut{EntityID: in.EntityID, Messages: []Message{}, Traces: []Trace{}}
	m, err := c.c.LongTerm.GetEntityMentions(ctx, c.user, in.EntityID, c.readOpts(mentionOpts(in.Limit)...)...)
	if err != nil {
		return out, err
	}
	out.EntityID, out.ResolvedFrom, out.Truncated = m.EntityID, m.ResolvedFrom, m.Truncated
	out.Messages, out.Traces = fromMessages(m.Messages), fromTraces(m.Traces)
	return out, nil
}

func messageEntities(ctx context.Context, c *call, in MessageEntitiesIn) (MessageEntitiesOut, error) {
	out := MessageEntitiesOut{MessageID: in.MessageID, Entities: []EntityOut{}}
	m, err := c.c.ShortTerm.GetMessageEntities(ctx, c.user, in.MessageID, c.readOpts(mentionOpts(in.Limit)...)...)
	if err != nil {
		return out, err
	}
	out.Entities, out.Truncated = fromEntityDetails(m.Entities), m.Truncated
	return out, nil
}

func traceEntities(ctx context.Context, c *call, in TraceEntitiesIn) (TraceEntitiesOut, error) {
	out := TraceEntitiesOut{TraceID: in.TraceID, Entities: []EntityOut{}}
	m, err := c.c.Reasoning.GetTraceEntities(ctx, c.user, in.TraceID, c.readOpts(mentionOpts(in.Limit)...)...)
	if err != nil {
		return out, err
	}
	out.Entities, out.Truncated = fromEntityDetails(m.Entities), m.Truncated
	return out, nil
}
