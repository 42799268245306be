package query

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Tool statistics: the library's reasoning.get_tool_stats. Its Tool counters are global,
// every tenant's calls summed, so a user's statistics are computed from the user's own
// ToolCall nodes instead (ToolStats), and the counters are read only by the admin's global
// read (GlobalToolStats, admin.go).

// ToolStats is the usage of one tool: the library's fields plus when it was last used.
type ToolStats struct {
	Name            string  `json:"name"`
	Description     *string `json:"description"` // Engram records none: null unless the graph was written otherwise
	TotalCalls      int64   `json:"total_calls"`
	SuccessfulCalls int64   `json:"successful_calls"` // status success
	FailedCalls     int64   `json:"failed_calls"`     // TotalCalls - SuccessfulCalls, as the library's get_tool_stats derives it
	// SuccessRate is SuccessfulCalls / TotalCalls, 0 without calls.
	SuccessRate float64 `json:"success_rate"`
	// AvgDurationMS is the summed duration_ms (a call without one counts 0, as in the Tool
	// counters) over TotalCalls, null without calls.
	AvgDurationMS *float64   `json:"avg_duration_ms"`
	LastUsedAt    *time.Time `json:"last_used_at"`
}

// ToolQuery selects tool statistics. Its zero value is every tool, at most DefaultLimit.
type ToolQuery struct {
	ToolName string // only this tool when set
	Limit    int    // 1..the Reader's max limit; 0 means DefaultLimit
}

// The user's calls are found through the ToolCall(owner) index, joined to the user by u.owner
// after the user's unique seek: an aggregate over every call of the user reads exactly those
// calls, where expanding HAS_TRACE, HAS_STEP and USES_TOOL would also read every trace and
// step.
const (
	userToolStats = `
MATCH (u:User {identifier: $identifier})
USING INDEX SEEK u:User(identifier)
WHERE u.owner = $owner
MATCH (c:ToolCall {owner: u.owner})
USING INDEX SEEK c:ToolCall(owner)` + toolTally
	toolTally = `
WHERE $tool_name IS NULL OR c.tool_name = $tool_name
WITH c.tool_name AS name, count(c) AS total,
     sum(CASE WHEN c.status = 'success' THEN 1 ELSE 0 END) AS successful,
     sum(coalesce(c.duration_ms, 0)) AS duration,
     max(CASE WHEN c.timestamp IS NOT NULL THEN datetime({datetime: c.timestamp, timezone: 'Z'}) END) AS last
RETURN {name: name, total_calls: total, successful_calls: successful,
        total_duration_ms: duration, last_used_at: last} AS tool
ORDER BY total DESC, name
LIMIT $limit
`
	sharedToolStats = `
MATCH (c:ToolCall {owner: $owner})
USING INDEX SEEK c:ToolCall(owner)` + toolTally
)

// ToolStats returns the user's tool statistics from the user's own calls, most called first,
// then by name; another user's calls of the same tool never count. An unknown user has none;
// "" is the shared tenant.
func (r *Reader) ToolStats(ctx context.Context, identifier string, q ToolQuery) ([]ToolStats, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	params, err := r.toolParams(q)
	if err != nil {
		return nil, err
	}
	params["identifier"], params["owner"] = identifier, owner
	return r.toolStats(ctx, "tool stats", pick(identifier, userToolStats, sharedToolStats), params)
}

// toolParams validates q into the parameters every tool statistics read takes.
func (r *Reader) toolParams(q ToolQuery) (map[string]any, error) {
	var name any
	if q.ToolName != "" {
		if err := checkText("tool_name", q.ToolName, maxTextRunes); err != nil {
			return nil, err
		}
		name = q.ToolName
	}
	n, err := limit(q.Limit, r.maxLimit)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tool_name": name, "limit": int64(n)}, nil
}

func (r *Reader) toolStats(ctx context.Context, op, cypher string, params map[string]any) ([]ToolStats, error) {
	rows, err := r.read(ctx, op, cypher, params)
	if err != nil {
		return nil, err
	}
	out := make([]ToolStats, 0, len(rows))
	for _, m := range rows {
		out = append(out, toolStatsOf(m))
	}
	return out, nil
}

// toolStatsOf derives the library's rates from the counts, as its get_tool_stats does:
// failed_calls is every call that did not succeed (failure, error, timeout, and pending or
// cancelled ones too), not the Tool node's failed_calls counter, which counts error and
// timeout only (the library's write path keeps it so; its read does not use it, and neither
// does this one, so that the answer is the library's).
func toolStatsOf(m map[string]any) ToolStats {
	count := func(k string) int64 {
		if n := int64p(m, k); n != nil {
			return *n
		}
		return 0
	}
	s := ToolStats{
		Name:            str(m, "name"),
		Description:     strp(m, "description"),
		TotalCalls:      count("total_calls"),
		SuccessfulCalls: count("successful_calls"),
		LastUsedAt:      timep(m, "last_used_at"),
	}
	s.FailedCalls = s.TotalCalls - s.SuccessfulCalls
	if s.TotalCalls > 0 {
		s.SuccessRate = float64(s.SuccessfulCalls) / float64(s.TotalCalls)
		avg := float64(count("total_duration_ms")) / float64(s.TotalCalls)
		s.AvgDurationMS = &avg
	}
	return s
}

// toolParamNames are the query parameters of the tool statistics reads.
var toolParamNames = []string{"tool_name", "limit"}

// parseToolQuery reads the parameters of GET .../tools and GET /v1/tools.
func parseToolQuery(v url.Values, maxLimit int) (ToolQuery, error) {
	var q ToolQuery
	if err := checkParams(v, toolParamNames); err != nil {
		return q, err
	}
	if v.Has("tool_name") {
		q.ToolName = v.Get("tool_name")
		if err := checkText("tool_name", q.ToolName, maxTextRunes); err != nil {
			return q, err
		}
	}
	var err error
	q.Limit, err = parseLimit(v, maxLimit)
	return q, err
}

type toolsBody struct {
	Tools []ToolStats `json:"tools"`
}

// tools answers the user's (or the shared tenant's) tool statistics.
func (h *Handler) tools(r *http.Request, identifier string) (readFunc, error) {
	q, err := parseToolQuery(r.URL.Query(), h.maxLimit)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		ts, err := h.reader.ToolStats(ctx, identifier, q)
		return toolsBody{Tools: ts}, err
	}, nil
}
