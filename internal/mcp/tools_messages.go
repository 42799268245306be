package mcp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
)

// maxMessages bounds the messages of one memory_add_messages call.
const maxMessages = 100

// AddMessagesIn is the input of memory_add_messages.
type AddMessagesIn struct {
	UserArg
	SessionID string      `json:"session_id" jsonschema:"the conversation's session id, of your choosing (e.g. one per chat); a session's first message creates its conversation"`
	Title     string      `json:"title,omitempty" jsonschema:"the conversation's title"`
	Messages  []MessageIn `json:"messages" jsonschema:"the messages to store, oldest first"`
}

// MessageIn is one message to store.
type MessageIn struct {
	Role      string         `json:"role" jsonschema:"who said it"`
	Content   string         `json:"content" jsonschema:"the text (empty is allowed for an assistant turn that only called a tool)"`
	Timestamp string         `json:"timestamp,omitempty" jsonschema:"when it was said, RFC 3339 with a zone (default: when stored)"`
	Metadata  map[string]any `json:"metadata,omitempty" jsonschema:"a JSON object kept with the message"`
}

// AddMessagesOut is what memory_add_messages answers.
type AddMessagesOut struct {
	ConversationID string          `json:"conversation_id"`
	SessionID      string          `json:"session_id"`
	Messages       []StoredMessage `json:"messages" jsonschema:"one per message given, in order"`
}

// StoredMessage is a stored message's id and write.
type StoredMessage struct {
	MessageID string `json:"message_id"`
	Write
}

// GetConversationIn is the input of memory_get_conversation.
type GetConversationIn struct {
	UserArg
	SessionID string `json:"session_id" jsonschema:"the conversation's session id"`
	Limit     int    `json:"limit,omitempty" jsonschema:"most messages to return"`
	Order     string `json:"order,omitempty" jsonschema:"asc: oldest first (default); desc: newest first (the latest messages)"`
	Cursor    string `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page, to continue (same order)"`
	Since     string `json:"since,omitempty" jsonschema:"only messages after this instant (RFC 3339)"`
	Before    string `json:"before,omitempty" jsonschema:"only messages before this instant (RFC 3339)"`
}

// ConversationOut is what memory_get_conversation answers.
type ConversationOut struct {
	SessionID  string    `json:"session_id"`
	Messages   []Message `json:"messages"`
	NextCursor string    `json:"next_cursor,omitempty" jsonschema:"present when more messages follow: pass it as cursor"`
}

// ListSessionsIn is the input of memory_list_sessions.
type ListSessionsIn struct {
	UserArg
	Limit int `json:"limit,omitempty" jsonschema:"most conversations to return"`
}

// SessionsOut is what memory_list_sessions answers.
type SessionsOut struct {
	Conversations []Conversation `json:"conversations" jsonschema:"most recently updated first"`
}

// ContextIn is the input of memory_get_context.
type ContextIn struct {
	UserArg
	SessionID string `json:"session_id,omitempty" jsonschema:"the current session, whose latest messages to include"`
	MaxItems  int    `json:"max_items,omitempty" jsonschema:"most conversations, messages and traces to include (preferences: every active one)"`
}

// ContextOut is what memory_get_context answers: the user's memory at a glance.
type ContextOut struct {
	User          *User          `json:"user" jsonschema:"the user and their attributes; null if Engram has no such user yet"`
	Preferences   []Preference   `json:"preferences" jsonschema:"every active preference (superseded ones left out)"`
	Conversations []Conversation `json:"conversations" jsonschema:"the latest conversations, most recently updated first"`
	Messages      []Message      `json:"messages" jsonschema:"the latest messages of session_id, oldest first; empty without session_id"`
	Traces        []Trace        `json:"traces" jsonschema:"the latest reasoning traces, without steps"`
}

func addMessageTools(r *registry) {
	add(r, &sdk.Tool{
		Name: "memory_add_messages",
		Description: "Store one or more messages of a conversation with the user, in order. Call it for the user's messages worth remembering " +
			"and for your own answers. A conversation is identified by session_id and created by its first message (there is no separate " +
			"create call). Every message is validated before any is stored: a bad one fails the call naming it (messages[i].field) and " +
			"nothing is written. Returns the conversation_id and each message's id and write status.",
		Annotations: writes,
	}, schemaFor[AddMessagesIn](
		items([]string{"messages"}, 1, maxMessages),
		enum([]string{"messages", "[]", "role"}, events.Roles...),
		length([]string{"session_id"}, 1, 256),
		dateTime("messages.[].timestamp"),
	), addMessages)

	add(r, &sdk.Tool{
		Name: "memory_get_conversation",
		Description: "Read the messages of one of the user's conversations by session_id: oldest first by default, order=desc for the " +
			"latest ones. Returns each message's id, role, content and timestamp; when more follow, next_cursor continues the listing. " +
			"An unknown session gives no messages.",
		Annotations: readOnly,
	}, schemaFor[GetConversationIn](
		limit(50, 1000),
		enum([]string{"order"}, "asc", "desc"),
		length([]string{"session_id"}, 1, 256),
		dateTime("since", "before"),
	), getConversation)

	add(r, &sdk.Tool{
		Name: "memory_list_sessions",
		Description: "List the user's conversations (one per session), most recently updated first, with session_id, title, times and message count. " +
			"Use it to find a past conversation, then read it with memory_get_conversation.",
		Annotations: readOnly,
	}, schemaFor[ListSessionsIn](limit(20, 1000)), listSessions)

	add(r, &sdk.Tool{
		Name: "memory_get_context",
		Description: "Load what Engram remembers about the user in one call: call it at the start of a conversation, and whenever you need " +
			"to recall who the user is. Returns the user's attributes, every active preference, the latest conversations, the latest " +
			"messages of session_id (oldest first) and the latest reasoning traces.",
		Annotations: readOnly,
	}, schemaFor[ContextIn](
		func(s *jsonschema.Schema) {
			p := prop(s, "max_items")
			lo, hi := 1.0, 100.0
			p.Minimum, p.Maximum, p.Default = &lo, &hi, []byte("10")
		},
		length([]string{"session_id"}, 1, 256),
	), getContext)
}

func addMessages(ctx context.Context, c *call, in AddMessagesIn) (AddMessagesOut, error) {
	out := AddMessagesOut{SessionID: in.SessionID, Messages: []StoredMessage{}}
	switch {
	case len(in.Messages) == 0:
		return out, &ArgError{Arg: "messages", Reason: "give at least one message"}
	case len(in.Messages) > maxMessages:
		return out, &ArgError{Arg: "messages", Reason: fmt.Sprintf("at most %d messages per call, got %d", maxMessages, len(in.Messages))}
	}
	// Validate every message as the ingestor will, before the first is sent.
	opts := make([][]client.WriteOption, len(in.Messages))
	for i, msg := range in.Messages {
		ts, err := parseTime(fmt.Sprintf("messages[%d].timestamp", i), msg.Timestamp)
		if err != nil {
			return out, err
		}
		cmd := &ingest.AddMessage{UserIdentifier: c.user, SessionID: in.SessionID, Role: msg.Role,
			Content: msg.Content, Timestamp: ts, Metadata: msg.Metadata}
		o := []client.WriteOption{client.WithMetadata(msg.Metadata)}
		if ts != nil {
			o = append(o, client.WithTimestamp(*ts))
		}
		if i == 0 && in.Title != "" {
			cmd.Title = in.Title
			o = append(o, client.WithTitle(in.Title))
		}
		if _, _, err := ingest.Build(cmd, c.m.settings()); err != nil {
			return out, toolError(err, messageField(i))
		}
		opts[i] = c.writeOpts(o...)
	}
	receipts := make([]client.Receipt, 0, len(in.Messages))
	for i, msg := range in.Messages {
		m, err := c.c.ShortTerm.AddMessage(ctx, in.SessionID, msg.Role, msg.Content, opts[i]...)
		if err != nil {
			return out, partial(out.Messages, i, toolError(err, messageField(i)))
		}
		out.ConversationID = m.ConversationID
		out.Messages = append(out.Messages, StoredMessage{MessageID: m.ID, Write: Write{EventID: m.Receipt.EventID, Sequence: m.Receipt.Sequence, Status: StatusStored}})
		receipts = append(receipts, m.Receipt)
	}
	for i, r := range receipts {
		w, err := c.settle(ctx, r)
		if err != nil {
			return out, fmt.Errorf("messages[%d]: %w", i, toolError(err, same))
		}
		out.Messages[i].Write = w
	}
	return out, nil
}

// messageField places the fields of one message under messages[i]; the others (the user,
// the session, the title) are arguments of their own.
func messageField(i int) rename {
	return func(f string) string {
		for _, own := range []string{"role", "content", "timestamp", "metadata", "message_id"} {
			if f == own || strings.HasPrefix(f, own+".") {
				return fmt.Sprintf("messages[%d].%s", i, f)
			}
		}
		return f
	}
}

// PartialError is a multi-write tool call that failed after some of its writes were stored.
type PartialError struct {
	Stored []string // ids of what was stored
	Failed int      // the index that failed; the ones after it were not sent
	Err    error
}

func (e *PartialError) Error() string {
	switch len(e.Stored) {
	case 0:
		return e.Err.Error() + " (nothing was stored)"
	case 1:
		return fmt.Sprintf("%v (messages[0] was stored, id %s; messages[1] and after were not)", e.Err, e.Stored[0])
	}
	return fmt.Sprintf("%v (messages[0] to messages[%d] were stored, ids %s; messages[%d] and after were not)",
		e.Err, e.Failed-1, strings.Join(e.Stored, ", "), e.Failed)
}

func (e *PartialError) Unwrap() error { return e.Err }

func partial(stored []StoredMessage, failed int, err error) error {
	ids := make([]string, 0, len(stored))
	for _, s := range stored {
		ids = append(ids, s.MessageID)
	}
	return &PartialError{Stored: ids, Failed: failed, Err: err}
}

func getConversation(ctx context.Context, c *call, in GetConversationIn) (ConversationOut, error) {
	out := ConversationOut{SessionID: in.SessionID, Messages: []Message{}}
	var opts []client.ReadOption
	if in.Limit != 0 {
		opts = append(opts, client.Limit(in.Limit))
	}
	if in.Order == "desc" {
		opts = append(opts, client.NewestFirst())
	}
	if in.Cursor != "" {
		opts = append(opts, client.After(in.Cursor))
	}
	since, err := parseTime("since", in.Since)
	if err != nil {
		return out, err
	}
	if since != nil {
		opts = append(opts, client.Since(*since))
	}
	before, err := parseTime("before", in.Before)
	if err != nil {
		return out, err
	}
	if before != nil {
		opts = append(opts, client.Before(*before))
	}
	page, err := c.c.ShortTerm.GetMessages(ctx, c.user, in.SessionID, c.readOpts(opts...)...)
	if err != nil {
		return out, err
	}
	out.Messages, out.NextCursor = fromMessages(page.Messages), page.NextCursor
	return out, nil
}

func listSessions(ctx context.Context, c *call, in ListSessionsIn) (SessionsOut, error) {
	var opts []client.ReadOption
	if in.Limit != 0 {
		opts = append(opts, client.Limit(in.Limit))
	}
	cs, err := c.c.ShortTerm.GetConversations(ctx, c.user, c.readOpts(opts...)...)
	if err != nil {
		return SessionsOut{Conversations: []Conversation{}}, err
	}
	return SessionsOut{Conversations: fromConversations(cs)}, nil
}

func getContext(ctx context.Context, c *call, in ContextIn) (ContextOut, error) {
	n := in.MaxItems
	if n == 0 {
		n = 10
	}
	return loadContext(ctx, c, in.SessionID, n)
}

// loadContext reads the user's memory at a glance: the tool memory_get_context and the
// prompt memory-conversation.
func loadContext(ctx context.Context, c *call, session string, n int) (ContextOut, error) {
	out := ContextOut{Preferences: []Preference{}, Conversations: []Conversation{}, Messages: []Message{}, Traces: []Trace{}}
	u, err := c.c.Users.GetUser(ctx, c.user, c.readOpts()...)
	switch {
	case errors.Is(err, client.ErrNotFound):
	case err != nil:
		return out, err
	default:
		out.User = fromUser(u)
	}
	ps, err := c.c.LongTerm.GetPreferencesFor(ctx, c.user, c.readOpts()...)
	if err != nil {
		return out, err
	}
	out.Preferences = fromPreferences(ps)
	cs, err := c.c.ShortTerm.GetConversations(ctx, c.user, c.readOpts(client.Limit(n))...)
	if err != nil {
		return out, err
	}
	out.Conversations = fromConversations(cs)
	if session != "" {
		page, err := c.c.ShortTerm.GetMessages(ctx, c.user, session, c.readOpts(client.Limit(n), client.NewestFirst())...)
		if err != nil {
			return out, toolError(err, same)
		}
		ms := fromMessages(page.Messages)
		slices.Reverse(ms)
		out.Messages = ms
	}
	ts, err := c.c.Reasoning.ListTraces(ctx, c.user, c.readOpts(client.Limit(n))...)
	if err != nil {
		return out, err
	}
	out.Traces = fromTraces(ts)
	return out, nil
}
