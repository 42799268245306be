package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ToolStats is the usage of one tool (the seed's reasoning.get_tool_stats), plus when it was
// last used.
type ToolStats struct {
	Name            string  `json:"name"`
	Description     *string `json:"description"`
	TotalCalls      int64   `json:"total_calls"`
	SuccessfulCalls int64   `json:"successful_calls"`
	FailedCalls     int64   `json:"failed_calls"` // total_calls - successful_calls: every status but success
	// SuccessRate is SuccessfulCalls / TotalCalls, 0 without calls.
	SuccessRate float64 `json:"success_rate"`
	// AvgDurationMS is nil without calls.
	AvgDurationMS *float64   `json:"avg_duration_ms"`
	LastUsedAt    *time.Time `json:"last_used_at"`
}

// UserPage is a page of ListUsers; pass NextCursor to After for the next one.
type UserPage struct {
	Users      []User `json:"users"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// GetToolStats returns the user's tool statistics, computed from the user's own tool calls
// (another user's calls of the same tool never count), most called first; ForTool keeps one
// tool, Limit bounds the list. "" is the shared tenant.
func (r *Reasoning) GetToolStats(ctx context.Context, identifier string, opts ...ReadOption) ([]ToolStats, error) {
	ro := collectRead(opts)
	q := consistency(ro)
	setToolQuery(q, ro)
	var out struct {
		Tools []ToolStats `json:"tools"`
	}
	err := r.c.read(ctx, "get_tool_stats", identifier, readPath(identifier)+"/tools", q, &out)
	return out.Tools, err
}

// GetGlobalToolStats returns every tenant's tool statistics from the global Tool counters,
// as the seed's get_tool_stats does; ForTool and Limit as for GetToolStats. With
// authentication on it needs the admin scope for every user ("*"): the answer tells of all
// tenants' activity. It takes no consistency token.
func (r *Reasoning) GetGlobalToolStats(ctx context.Context, opts ...ReadOption) ([]ToolStats, error) {
	q := url.Values{}
	setToolQuery(q, collectRead(opts))
	var out struct {
		Tools []ToolStats `json:"tools"`
	}
	err := r.c.readAcross(ctx, "get_global_tool_stats", "/v1/tools", q, &out)
	return out.Tools, err
}

// ListUsers returns a page of every user, newest created first (the seed's list_users);
// Limit sets the page size, After(page.NextCursor) continues. With authentication on it needs
// the admin scope for every user ("*").
func (u *Users) ListUsers(ctx context.Context, opts ...ReadOption) (*UserPage, error) {
	ro := collectRead(opts)
	q := url.Values{}
	if ro.limit != 0 {
		q.Set("limit", strconv.Itoa(ro.limit))
	}
	if ro.cursor != "" {
		q.Set("cursor", ro.cursor)
	}
	var out UserPage
	if err := u.c.readAcross(ctx, "list_users", "/v1/users", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func setToolQuery(q url.Values, ro readOpts) {
	if ro.toolName != "" {
		q.Set("tool_name", ro.toolName)
	}
	if ro.limit != 0 {
		q.Set("limit", strconv.Itoa(ro.limit))
	}
}

// readAcross GETs a read across tenants: no user, so no consistency token.
func (c *Client) readAcross(ctx context.Context, op, path string, q url.Values, out any) error {
	u := c.o.queryURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return c.do(ctx, op, http.MethodGet, u, nil, out, 0)
}
