package events

import (
	"github.com/google/uuid"
)

// Namespaces for the ids Engram derives instead of minting, so that the same input always
// yields the same id: at ingest (no database look-up needed) and on replay.
var (
	nsUser         = uuid.MustParse("5b0c3f2e-7a51-4c4e-9d0e-6a1f0f1c7e01")
	nsConversation = uuid.MustParse("5b0c3f2e-7a51-4c4e-9d0e-6a1f0f1c7e02")
	nsEntity       = uuid.MustParse("5b0c3f2e-7a51-4c4e-9d0e-6a1f0f1c7e03")
	nsRelationship = uuid.MustParse("5b0c3f2e-7a51-4c4e-9d0e-6a1f0f1c7e04")
)

// NewID mints a time-ordered UUIDv7, used for event ids and for the ids of new messages,
// preferences, traces, steps and tool calls.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// UserID is the User node id of an identifier: a UUIDv5, stable across upserts and replays.
func UserID(identifier string) string {
	return uuid.NewSHA1(nsUser, []byte(identifier)).String()
}

// ConversationID is the id of the one conversation per (user, session): sessions are scoped
// to their user, so two users with the same session id never share a conversation.
func ConversationID(identifier, sessionID string) string {
	return uuid.NewSHA1(nsConversation, []byte(identifier+"\x00"+sessionID)).String()
}

// EntityID is the id of the entity a user's applies_to reference {name, type} names: entities
// are merged by name and type within their owner's scope, never across users.
func EntityID(identifier, name, typ string) string {
	return uuid.NewSHA1(nsEntity, []byte(identifier+"\x00"+name+"\x00"+typ)).String()
}

// RelationshipID is the id of the user's one RELATED_TO edge of type typ from entity source to
// entity target (entity ids): adding the same relationship again reaches the same edge, and a
// merge that moves an edge to the surviving entity gives it the id of its new endpoints.
func RelationshipID(identifier, source, typ, target string) string {
	return uuid.NewSHA1(nsRelationship, []byte(identifier+"\x00"+source+"\x00"+typ+"\x00"+target)).String()
}

// MsgID is the Nats-Msg-Id Encode gives an event: <tenant-token>:<event id>. JetStream
// deduplicates on the header's value across the whole stream, so the id is scoped by tenant:
// two tenants' events of the same id are two events. It is what a publisher without the
// ingestors' key uses (agents over NATS, operators' tools); the ingestors key theirs
// (stream.Key.MsgID), so that no id an agent chooses can collide with one of theirs.
func MsgID(token, eventID string) string { return token + ":" + eventID }
