package mcp

import (
	"context"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
)

// The library's deletions, as tools: delete_message, clear_session and delete_entity. Each is
// an event in Engram's log like every write (docs/events.md, "Deletion"): the graph forgets,
// a replay forgets too, and the audit keeps that the deletion happened, not what was deleted.
// Deleting what is not there is no error; an id of another user is refused by the projector
// (the tool then says so). The content stays in the log's earlier events until the user is
// erased (memory_erase_user), which is the tool for forgetting a person.

// DeleteMessageIn is the input of memory_delete_message.
type DeleteMessageIn struct {
	UserArg
	MessageID string `json:"message_id" jsonschema:"the message to delete (message_id of memory_add_messages or id of memory_get_conversation)"`
}

// ClearSessionIn is the input of memory_clear_session.
type ClearSessionIn struct {
	UserArg
	SessionID string `json:"session_id" jsonschema:"the conversation to delete with all its messages"`
}

// DeleteEntityIn is the input of memory_delete_entity.
type DeleteEntityIn struct {
	UserArg
	EntityID string `json:"entity_id" jsonschema:"the entity to delete (an id of memory_search_entities or of a preference's applies_to)"`
}

// DeletedOut is what the deletion tools answer: the deletion's write.
type DeletedOut struct {
	Write
}

func addDeletionTools(r *registry) {
	id := func(name string) func(*jsonschema.Schema) { return length([]string{name}, 36, 36) }
	add(r, &sdk.Tool{
		Name: "memory_delete_message",
		Description: "Delete one of the user's messages: it leaves its conversation, whose order is kept around it. A message that " +
			"does not exist is no error. Engram's log keeps the deletion (not the content) for audit.",
		Annotations: destroys,
	}, schemaFor[DeleteMessageIn](id("message_id")), deleteMessage)

	add(r, &sdk.Tool{
		Name: "memory_clear_session",
		Description: "Delete one of the user's conversations by session_id, with all its messages; a later message of the session " +
			"starts it anew. Reasoning traces of the session stay. A session without messages is no error.",
		Annotations: destroys,
	}, schemaFor[ClearSessionIn](length([]string{"session_id"}, 1, 256)), clearSession)

	add(r, &sdk.Tool{
		Name: "memory_delete_entity",
		Description: "Delete one of the user's entities: the entity, the entities merged into it, its mentions, relationships and the " +
			"preferences' links to it (the preferences stay), and the facts about it. An entity that does not exist is no error.",
		Annotations: destroys,
	}, schemaFor[DeleteEntityIn](id("entity_id")), deleteEntity)
}

func deleteMessage(ctx context.Context, c *call, in DeleteMessageIn) (DeletedOut, error) {
	r, err := c.c.ShortTerm.DeleteMessage(ctx, in.MessageID, c.writeOpts()...)
	return c.deleted(ctx, r, err)
}

func clearSession(ctx context.Context, c *call, in ClearSessionIn) (DeletedOut, error) {
	r, err := c.c.ShortTerm.ClearSession(ctx, in.SessionID, c.writeOpts()...)
	return c.deleted(ctx, r, err)
}

func deleteEntity(ctx context.Context, c *call, in DeleteEntityIn) (DeletedOut, error) {
	r, err := c.c.LongTerm.DeleteEntity(ctx, in.EntityID, c.writeOpts()...)
	return c.deleted(ctx, r, err)
}

// deleted settles a deletion's write as every write tool does.
func (c *call) deleted(ctx context.Context, r client.Receipt, err error) (DeletedOut, error) {
	if err != nil {
		return DeletedOut{}, err
	}
	w, err := c.settle(ctx, r)
	return DeletedOut{Write: w}, err
}
