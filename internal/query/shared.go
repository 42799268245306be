package query

import (
	"net/http"

	"github.com/engram-memory/engram/internal/app"
)

// The shared tenant: with multi-tenant mode off, a write without a user belongs to it (token
// _shared, docs/events.md). The projector stores its nodes with owner "_shared" and no User
// node, so none of the user reads can reach them; these reads start at the owner index (or
// at the unique id of the conversation or trace asked for) and check the owner of everything
// they return, as the user reads do. No identifier encodes to "_shared", so the shared tenant
// and a user never see each other's nodes. In the Reader the shared tenant is the identifier
// "" (as in events.TenantToken and auth.Authorize); over HTTP its reads are under /v1/shared.

const (
	sharedPreferenceHead = `
MATCH (p:Preference {owner: $owner})
USING INDEX SEEK p:Preference(owner)`
	sharedPreferencesFor    = sharedPreferenceHead + preferenceBody + byCreation
	sharedPreferenceHistory = sharedPreferenceHead + preferenceBody + byRecording

	sharedConversations = `
MATCH (c:Conversation {owner: $owner})
USING INDEX SEEK c:Conversation(owner)
RETURN c {.id, .session_id, .title, .created_at, .updated_at, .recorded_at,
          message_count: COUNT { (c)-[:HAS_MESSAGE]->() }} AS conversation
ORDER BY c.updated_at DESC, c.id DESC
LIMIT $limit
`
	// The conversation of a session is found by its derived id (events.ConversationID of ""
	// and the session), a unique seek.
	sharedMessagesHead = `
MATCH (c:Conversation {id: $conversation_id})
USING INDEX SEEK c:Conversation(id)
WHERE c.owner = $owner AND c.session_id = $session_id` + messagesOfConversation
	sharedMessagesAsc  = sharedMessagesHead + afterCursorAsc
	sharedMessagesDesc = sharedMessagesHead + afterCursorDesc

	sharedTraces = `
MATCH (t:ReasoningTrace {owner: $owner})
USING INDEX SEEK t:ReasoningTrace(owner)
WHERE t.owner = $owner` + tracesOrdered
	sharedTraceByID = `
MATCH (t:ReasoningTrace {id: $trace_id})
USING INDEX SEEK t:ReasoningTrace(id)
WHERE t.owner = $owner` + traceDetail
)

// pick returns the read of a user, or of the shared tenant for identifier "".
func pick(identifier, user, shared string) string {
	if identifier == "" {
		return shared
	}
	return user
}

// SharedPrefix is the root of the shared tenant's reads.
const SharedPrefix = "/v1/shared"

// WithSharedTenant serves the shared tenant's reads under SharedPrefix: turn it on when
// multi-tenant mode is off (MULTI_TENANT=false), the only mode in which the shared tenant is
// written. Otherwise those routes answer 404 saying why. They need the read scope for every
// user ("*"), as writing to the shared tenant needs the write scope for every user.
func WithSharedTenant(on bool) HandlerOption {
	return func(h *Handler) { h.shared = on }
}

// registerShared mounts the shared tenant's reads: the user reads but the user itself, with
// the same parameters, under SharedPrefix instead of /v1/users/{identifier}.
func (h *Handler) registerShared(mux *http.ServeMux) {
	routes := []struct {
		path, name string
		ep         endpoint
	}{
		{"/preferences", "shared_preferences", h.preferences},
		{"/preferences/history", "shared_preference_history", h.history},
		{"/conversations", "shared_conversations", h.conversations},
		{"/conversations/{session_id}/messages", "shared_messages", h.messages},
		{"/traces", "shared_traces", h.traces},
		{"/traces/{trace_id}", "shared_trace", h.trace},
		{"/events/{event_id}", "shared_fate", h.fate},
		{"/tools", "shared_tools", h.tools},
		{"/search/messages", "shared_search_messages", h.searchMessages},
		{"/search/preferences", "shared_search_preferences", h.searchPreferences},
		{"/search/entities", "shared_search_entities", h.searchEntities},
		{"/search/steps", "shared_search_steps", h.searchSteps},
		{"/search/traces", "shared_search_traces", h.searchTraces},
	}
	// The vector searches' POST form (vector.go), on the same paths.
	posts := map[string]bool{"/search/messages": true, "/search/preferences": true, "/search/entities": true, "/search/traces": true}
	for _, rt := range routes {
		var next http.Handler = h.route(rt.name, rt.ep)
		if !h.shared {
			next = http.HandlerFunc(multiTenantOn)
		}
		mux.Handle("GET "+SharedPrefix+rt.path, h.guard(next))
		if posts[rt.path] {
			mux.Handle("POST "+SharedPrefix+rt.path, h.guard(next))
		}
	}
}

// multiTenantOn answers a shared-tenant read while multi-tenant mode is on.
func multiTenantOn(w http.ResponseWriter, _ *http.Request) {
	app.WriteError(w, http.StatusNotFound, "",
		"the shared tenant is not readable: multi-tenant mode is on (MULTI_TENANT=true), so every write names its user; read under /v1/users/{identifier}")
}
