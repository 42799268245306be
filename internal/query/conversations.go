package query

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/engram-memory/engram/internal/events"
)

// A user's reads start at the user's unique seek and reach everything else by following the
// user's edges, collected in a pattern comprehension and unwound: an owner, session or name
// predicate on a neighbour in a MATCH lets the planner start a second time at that
// neighbour's index and join, which it does on a near-empty graph (where plans are first made
// and, with replan=skip, kept) and which then costs all the tenant's nodes of that label per
// read. The owner of each neighbour is checked after the unwind, where no index can serve it.
// TestReadsAreIndexBacked fails on any second start other than a unique seek.
const conversationsOf = `
MATCH (u:User {identifier: $identifier})
USING INDEX SEEK u:User(identifier)
WHERE u.owner = $owner
UNWIND [(u)-[:HAS_CONVERSATION]->(c:Conversation) | c] AS c
WITH c WHERE c.owner = $owner
RETURN c {.id, .session_id, .title, .created_at, .updated_at, .recorded_at,
          message_count: COUNT { (c)-[:HAS_MESSAGE]->() }} AS conversation
ORDER BY c.updated_at DESC, c.id DESC
LIMIT $limit
`

// The messages of one of the user's conversations: the conversation of a session has a
// derived id (events.ConversationID of the identifier and the session, which the ingestor
// and the envelope's validation enforce), sought by its unique constraint, and it must be
// the user's own, reached by the user's HAS_CONVERSATION edge: another user's session never
// matches. The messages are collected from the conversation's edges and unwound (see
// conversationsOf), their owner checked afterwards. Messages are ordered by (timestamp, id),
// the timestamp normalised to offset Z so that equal instants compare equal (see
// preferenceBody); the cursor is the (timestamp, id) of the last message of a page.
const (
	userMessagesHead = `
MATCH (u:User {identifier: $identifier})
USING INDEX SEEK u:User(identifier)
WHERE u.owner = $owner
MATCH (u)-[:HAS_CONVERSATION]->(c:Conversation {id: $conversation_id})
USING INDEX SEEK c:Conversation(id)
WHERE c.owner = $owner AND c.session_id = $session_id` + messagesOfConversation
	messagesOfConversation = `
UNWIND [(c)-[:HAS_MESSAGE]->(m:Message) | m] AS m`
	messagesFilter = `
WITH m, CASE WHEN m.timestamp IS NOT NULL THEN datetime({datetime: m.timestamp, timezone: 'Z'}) END AS ts
WHERE m.owner = $owner
  AND ($since IS NULL OR ts > $since)
  AND ($before IS NULL OR ts < $before)
`
	messagesReturn = `
RETURN m {.id, .role, .content, .timestamp, .metadata, .recorded_at} AS message
`
	afterCursorAsc = messagesFilter +
		"  AND ($cursor_ts IS NULL OR ts > $cursor_ts OR (ts = $cursor_ts AND m.id > $cursor_id))" +
		messagesReturn + "ORDER BY ts, m.id\nLIMIT $limit"
	afterCursorDesc = messagesFilter +
		"  AND ($cursor_ts IS NULL OR ts < $cursor_ts OR (ts = $cursor_ts AND m.id < $cursor_id))" +
		messagesReturn + "ORDER BY ts DESC, m.id DESC\nLIMIT $limit"
	messagesAsc  = userMessagesHead + afterCursorAsc
	messagesDesc = userMessagesHead + afterCursorDesc
)

// Order is the order of a conversation's messages.
type Order string

// The two orders; the zero value is OldestFirst.
const (
	OldestFirst Order = "asc"
	NewestFirst Order = "desc"
)

// Limits of a page.
const (
	DefaultLimit    = 100
	DefaultMaxLimit = 1000
)

// MessageQuery selects a page of a conversation's messages. Its zero value is the first
// DefaultLimit messages, oldest first.
type MessageQuery struct {
	Order  Order      // OldestFirst ("" too) or NewestFirst
	Limit  int        // 1..the Reader's max limit; 0 means DefaultLimit
	Since  *time.Time // only messages with timestamp > Since
	Before *time.Time // only messages with timestamp < Before
	Cursor string     // MessagePage.NextCursor of the previous page, in the same Order
}

// cursor is a decoded page cursor: the position of the last message returned.
type cursor struct {
	ts time.Time
	id string
}

const cursorPrefix = "m1|"

func (c cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + c.ts.UTC().Format(time.RFC3339Nano) + "|" + c.id))
}

func decodeCursor(s string) (cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, badArg("cursor", "not a cursor this API returned")
	}
	rest, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return cursor{}, badArg("cursor", "not a cursor this API returned")
	}
	tsText, id, ok := strings.Cut(rest, "|")
	if !ok {
		return cursor{}, badArg("cursor", "not a cursor this API returned")
	}
	ts, err := time.Parse(time.RFC3339Nano, tsText)
	if err != nil {
		return cursor{}, badArg("cursor", "not a cursor this API returned")
	}
	if err := checkText("cursor", id, maxTextRunes); err != nil {
		return cursor{}, err
	}
	return cursor{ts: ts.UTC(), id: id}, nil
}

// limit validates a page size against maxLimit, 0 meaning the default.
func limit(n, maxLimit int) (int, error) {
	if n == 0 {
		return min(DefaultLimit, maxLimit), nil
	}
	if n < 1 || n > maxLimit {
		return 0, badArg("limit", "%d is out of range: want 1 to %d", n, maxLimit)
	}
	return n, nil
}

// Conversations returns the user's conversations, most recently updated first. An unknown
// user has none; "" is the shared tenant.
func (r *Reader) Conversations(ctx context.Context, identifier string, n int) ([]Conversation, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	if n, err = limit(n, r.maxLimit); err != nil {
		return nil, err
	}
	rows, err := r.read(ctx, "conversations", pick(identifier, conversationsOf, sharedConversations),
		map[string]any{"identifier": identifier, "owner": owner, "limit": int64(n)})
	if err != nil {
		return nil, err
	}
	out := make([]Conversation, 0, len(rows))
	for _, m := range rows {
		out = append(out, Conversation{
			ID:         str(m, "id"),
			SessionID:  str(m, "session_id"),
			Title:      strp(m, "title"),
			CreatedAt:  timep(m, "created_at"),
			UpdatedAt:  timep(m, "updated_at"),
			RecordedAt: timep(m, "recorded_at"),
		})
		if n := int64p(m, "message_count"); n != nil {
			out[len(out)-1].MessageCount = *n
		}
	}
	return out, nil
}

// Messages returns a page of the messages of the user's conversation of sessionID. An unknown
// user or session has no messages; "" is the shared tenant.
func (r *Reader) Messages(ctx context.Context, identifier, sessionID string, q MessageQuery) (MessagePage, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return MessagePage{}, err
	}
	if err := checkText("session_id", sessionID, maxTextRunes); err != nil {
		return MessagePage{}, err
	}
	n, err := limit(q.Limit, r.maxLimit)
	if err != nil {
		return MessagePage{}, err
	}
	cypher := pick(identifier, messagesAsc, sharedMessagesAsc)
	switch q.Order {
	case "", OldestFirst:
	case NewestFirst:
		cypher = pick(identifier, messagesDesc, sharedMessagesDesc)
	default:
		return MessagePage{}, badArg("order", "%q: want asc (oldest first) or desc (newest first)", string(q.Order))
	}
	params := map[string]any{
		"identifier": identifier, "owner": owner, "session_id": sessionID, "limit": int64(n) + 1,
		"since": timeParam(q.Since), "before": timeParam(q.Before), "cursor_ts": nil, "cursor_id": nil,
		"conversation_id": events.ConversationID(identifier, sessionID),
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return MessagePage{}, err
		}
		params["cursor_ts"], params["cursor_id"] = timeParam(&c.ts), c.id
	}
	rows, err := r.read(ctx, "messages", cypher, params)
	if err != nil {
		return MessagePage{}, err
	}
	page := MessagePage{Messages: make([]Message, 0, min(len(rows), n))}
	for i, m := range rows {
		if i == n {
			last := page.Messages[n-1]
			if last.Timestamp != nil {
				page.NextCursor = cursor{ts: *last.Timestamp, id: last.ID}.encode()
			}
			break
		}
		page.Messages = append(page.Messages, Message{
			ID:         str(m, "id"),
			Role:       str(m, "role"),
			Content:    str(m, "content"),
			Timestamp:  timep(m, "timestamp"),
			Metadata:   object(m, "metadata"),
			RecordedAt: timep(m, "recorded_at"),
		})
	}
	return page, nil
}
