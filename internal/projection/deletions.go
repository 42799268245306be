package projection

import (
	"context"
	"fmt"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// Deletions (message_deleted, session_cleared) are applied on their own, like a merge: the
// events before them are written, then the deletion reads the graph (which, in the
// transaction, holds those writes; in a rebuild, everything the partition committed) and
// deletes. Deleting what does not exist, or no longer does, writes nothing and counts as a
// duplicate: a second delete, a replay, and a delete of an id never written all end in the
// same graph. Naming another owner's message or conversation is a dead letter. Their
// statements keep their first plan (planOnce), like every statement of the projection.

// cypherFindMessage reads the owner and the conversation of a message.
const cypherFindMessage = planOnce + `
OPTIONAL MATCH (m:Message {id: $id}) USING INDEX SEEK m:Message(id)
OPTIONAL MATCH (c:Conversation)-[:HAS_MESSAGE]->(m)
RETURN m IS NOT NULL AS found, m.owner AS owner, c.id AS conversation`

// cypherDeleteMessage deletes a message and mends its conversation around it: its
// predecessor links to its successor, its successor becomes the conversation's first when it
// was, and its predecessor the conversation's tail (last_message_id) when it was the tail.
// The conversation's updated_at and title stay: they record the latest write, not the latest
// surviving message.
const cypherDeleteMessage = planOnce + `
MATCH (m:Message {id: $id}) USING INDEX SEEK m:Message(id)
OPTIONAL MATCH (c:Conversation)-[:HAS_MESSAGE]->(m)
OPTIONAL MATCH (prev:Message)-[:NEXT_MESSAGE]->(m)
OPTIONAL MATCH (m)-[:NEXT_MESSAGE]->(next:Message)
WITH m, c, prev, next, EXISTS { (c)-[:FIRST_MESSAGE]->(m) } AS first
FOREACH (a IN CASE WHEN prev IS NOT NULL AND next IS NOT NULL THEN [prev] ELSE [] END |
  CREATE (a)-[:NEXT_MESSAGE]->(next))
FOREACH (conv IN CASE WHEN first AND next IS NOT NULL THEN [c] ELSE [] END |
  CREATE (conv)-[:FIRST_MESSAGE]->(next))
FOREACH (conv IN CASE WHEN c IS NOT NULL AND c.last_message_id = m.id THEN [c] ELSE [] END |
  SET conv.last_message_id = prev.id)
WITH m, c, prev
DETACH DELETE m
RETURN c.id AS conversation, c.last_message_id AS tail`

// cypherFindConversation reads the owner of a conversation and the ids of its messages.
const cypherFindConversation = planOnce + `
OPTIONAL MATCH (c:Conversation {id: $id}) USING INDEX SEEK c:Conversation(id)
RETURN c IS NOT NULL AS found, c.owner AS owner, [(c)-[:HAS_MESSAGE]->(m:Message) | m.id] AS messages`

// cypherClearSession deletes a conversation and every message of it (the library's
// clear_session; its traces are the user's in Engram, not the conversation's, and stay).
const cypherClearSession = planOnce + `
MATCH (c:Conversation {id: $id}) USING INDEX SEEK c:Conversation(id)
CALL (c) {
  MATCH (c)-[:HAS_MESSAGE]->(m:Message)
  DETACH DELETE m
}
DETACH DELETE c`

// deletion is what a deletion removed, for a stateSource that remembers the graph.
type deletion struct {
	messages      []string
	conversations []string
	tails         map[string]string // conversation id -> its new tail ("" for none)
	entities      []string          // entities_deleted.go
	facts         []string
}

// deleteMessage applies a message_deleted event and returns its status.
func deleteMessage(ctx context.Context, tx neo4j.ManagedTransaction, r Record, src stateSource) (string, error) {
	m, err := row(r)
	if err != nil {
		return "", err
	}
	d, err := dataAs[events.MessageDeleted](r)
	if err != nil {
		return "", err
	}
	owner, _ := m["owner"].(string)
	rec, status, err := findOwned(ctx, tx, cypherFindMessage, "message", d.MessageID, owner)
	if rec == nil {
		return status, err
	}
	conv, _ := rec.Get("conversation")
	if cid, _ := conv.(string); d.ConversationID != "" && cid != d.ConversationID {
		return "duplicate", nil // not in the conversation named: nothing of it to delete
	}
	rec, err = single(ctx, tx, cypherDeleteMessage, map[string]any{"id": d.MessageID})
	if err != nil {
		return "", fmt.Errorf("delete message %s: %w", d.MessageID, err)
	}
	del := deletion{messages: []string{d.MessageID}, tails: map[string]string{}}
	if c, _ := rec.Get("conversation"); c != nil {
		cid, _ := c.(string)
		tail, _ := rec.Get("tail")
		t, _ := tail.(string)
		del.tails[cid] = t
	}
	src.deleted(del)
	return "ok", nil
}

// clearSession applies a session_cleared event and returns its status.
func clearSession(ctx context.Context, tx neo4j.ManagedTransaction, r Record, src stateSource) (string, error) {
	m, err := row(r)
	if err != nil {
		return "", err
	}
	d, err := dataAs[events.SessionCleared](r)
	if err != nil {
		return "", err
	}
	owner, _ := m["owner"].(string)
	rec, status, err := findOwned(ctx, tx, cypherFindConversation, "conversation", d.ConversationID, owner)
	if rec == nil {
		return status, err
	}
	v, _ := rec.Get("messages")
	list, _ := v.([]any)
	del := deletion{conversations: []string{d.ConversationID}}
	for _, x := range list {
		if s, ok := x.(string); ok {
			del.messages = append(del.messages, s)
		}
	}
	res, err := tx.Run(ctx, cypherClearSession, map[string]any{"id": d.ConversationID})
	if err == nil {
		_, err = res.Consume(ctx)
	}
	if err != nil {
		return "", fmt.Errorf("clear conversation %s: %w", d.ConversationID, err)
	}
	src.deleted(del)
	return "ok", nil
}

// single runs a statement that returns one record.
// findOwned runs a deletion's look-up of id (a statement returning found and owner): nil and
// "duplicate" when there is nothing to delete (never written, or deleted already), nil and
// foreign_reference when another user owns it, else its record.
func findOwned(ctx context.Context, tx neo4j.ManagedTransaction, cypher, what, id, owner string) (*neo4j.Record, string, error) {
	rec, err := single(ctx, tx, cypher, map[string]any{"id": id})
	if err != nil {
		return nil, "", fmt.Errorf("look up %s %s: %w", what, id, err)
	}
	found, _ := rec.Get("found")
	if f, _ := found.(bool); !f {
		return nil, "duplicate", nil
	}
	o, _ := rec.Get("owner")
	if s, ok := o.(string); ok && s != owner {
		return nil, string(ReasonForeignReference), nil
	}
	return rec, "", nil
}

func single(ctx context.Context, tx neo4j.ManagedTransaction, cypher string, params map[string]any) (*neo4j.Record, error) {
	res, err := tx.Run(ctx, cypher, params)
	if err != nil {
		return nil, err
	}
	return res.Single(ctx)
}

func messageDeletedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.MessageDeleted](r)
	if err != nil {
		return err
	}
	m["message_id"] = d.MessageID
	m["conversation_id"] = nilIfEmpty(d.ConversationID)
	return nil
}

func sessionClearedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.SessionCleared](r)
	if err != nil {
		return err
	}
	m["conversation_id"] = d.ConversationID
	m["session_id"] = d.SessionID
	return nil
}
