package query

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/auth"
)

// The admin's reads across tenants: the library's global get_tool_stats (the Tool counters,
// which sum every tenant's calls) and list_users. What they answer is every tenant's
// activity, so with authentication on they need the admin scope for every user ("*"), and
// they take no consistency token: a read of all tenants would have to wait for every
// partition. Each reads one index in order and stops at its page (TestReadsAreIndexBacked).

const (
	globalToolsByCalls = `
MATCH (t:Tool)
USING INDEX SEEK t:Tool(total_calls)
WHERE t.total_calls >= 0` + globalToolFields + `
ORDER BY t.total_calls DESC, t.name
LIMIT $limit
`
	// One tool by its unique name: at most one row, nothing to order.
	globalToolByName = `
MATCH (t:Tool {name: $tool_name})
USING INDEX SEEK t:Tool(name)` + globalToolFields
	globalToolFields = `
RETURN t {.name, .description, .total_calls, .successful_calls, .total_duration_ms,
          .last_used_at} AS tool`
)

// GlobalToolStats returns the Tool counters, every tenant's calls together, most called first
// and then by name: the library's get_tool_stats. It is not scoped to a user: serve it to
// admins only. Tools without counters (a graph the projector did not write) are listed only
// by name.
func (r *Reader) GlobalToolStats(ctx context.Context, q ToolQuery) ([]ToolStats, error) {
	params, err := r.toolParams(q)
	if err != nil {
		return nil, err
	}
	cypher := globalToolsByCalls
	if q.ToolName != "" {
		cypher = globalToolByName
	}
	return r.toolStats(ctx, "global tool stats", cypher, params)
}

// registerAdmin mounts the reads across tenants, outside /v1/users/{identifier}.
func (h *Handler) registerAdmin(mux *http.ServeMux) {
	for _, rt := range []struct {
		path, name string
		ep         adminEndpoint
	}{
		{"/v1/tools", "global_tools", h.globalTools},
		{"/v1/users", "list_users", h.listUsers},
	} {
		mux.Handle("GET "+rt.path, h.adminGuard(h.adminRoute(rt.name, rt.ep)))
	}
}

// adminGuard authenticates the caller and requires the admin scope for every user: "*" is
// the only pattern that reaches the shared tenant (auth.Principal.CanActFor), so that is the
// check. An admin for some users only is refused, since the answer is about all of them.
func (h *Handler) adminGuard(next http.Handler) http.Handler {
	if h.auth == nil {
		return next
	}
	everyUser := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		if !p.CanActFor("") {
			app.WriteError(w, http.StatusForbidden, "", fmt.Sprintf(
				"forbidden: principal %q may not read across tenants: that needs the admin scope for every user (\"*\")", p.Name))
			return
		}
		h.logger.Info("read across tenants", "route", r.Pattern, "principal", p.Name)
		next.ServeHTTP(w, r)
	})
	return auth.Handler(h.auth, h.logger, auth.ScopeAdmin, everyUser)
}

// adminEndpoint validates a read across tenants' parameters and returns the read to run.
type adminEndpoint func(r *http.Request) (readFunc, error)

// adminRoute is route for a read that names no user and takes no consistency token.
func (h *Handler) adminRoute(name string, ep adminEndpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		code := h.serveAdmin(w, r, ep)
		if h.metrics != nil {
			h.metrics.requests.WithLabelValues(name, strconv.Itoa(code)).Inc()
			h.metrics.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		}
	})
}

func (h *Handler) serveAdmin(w http.ResponseWriter, r *http.Request, ep adminEndpoint) int {
	if r.URL.Query().Has(consistencyParam) || r.Header.Get(ConsistencyHeader) != "" {
		return h.writeError(w, r, badArg(consistencyParam,
			"a read across tenants takes no consistency token: it would wait for every partition; pass it to the user's own reads"))
	}
	read, err := ep(r)
	if err != nil {
		return h.writeError(w, r, err)
	}
	return h.answer(w, r, read)
}

func (h *Handler) globalTools(r *http.Request) (readFunc, error) {
	q, err := parseToolQuery(r.URL.Query(), h.maxLimit)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		ts, err := h.reader.GlobalToolStats(ctx, q)
		return toolsBody{Tools: ts}, err
	}, nil
}

// userListParams are the query parameters of GET /v1/users.
var userListParams = []string{"limit", "cursor"}

// parseUserListQuery reads the parameters of GET /v1/users.
func parseUserListQuery(v url.Values, maxLimit int) (UserQuery, error) {
	var q UserQuery
	if err := checkParams(v, userListParams); err != nil {
		return q, err
	}
	var err error
	if q.Limit, err = parseLimit(v, maxLimit); err != nil {
		return q, err
	}
	if v.Has("cursor") {
		q.Cursor = v.Get("cursor")
		if _, err := decodeUserCursor(q.Cursor); err != nil {
			return q, err
		}
	}
	return q, nil
}

func (h *Handler) listUsers(r *http.Request) (readFunc, error) {
	q, err := parseUserListQuery(r.URL.Query(), h.maxLimit)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		return h.reader.ListUsers(ctx, q)
	}, nil
}
