package client

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestToolAndUserReadsAsk: what the tool statistics and list_users calls send. A user's read
// carries the user's consistency token; the reads across tenants carry none.
func TestToolAndUserReadsAsk(t *testing.T) {
	t.Parallel()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"tools": [{"name": "search", "total_calls": 2, "successful_calls": 1, "failed_calls": 1,
			"success_rate": 0.5, "avg_duration_ms": 7.5, "last_used_at": "2026-05-01T09:00:00Z", "description": null}],
			"users": [{"id": "u1", "identifier": "sara@omg.com", "attributes": {"role": "manager"}}], "next_cursor": "c2"}`))
	}))
	t.Cleanup(srv.Close)
	c, err := New(WithHTTP(srv.URL, srv.URL), WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	c.noteToken("sara@omg.com", 7)
	ctx := context.Background()
	stats, err := c.Reasoning.GetToolStats(ctx, "sara@omg.com", ForTool("search"), Limit(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Name != "search" || stats[0].TotalCalls != 2 || stats[0].AvgDurationMS == nil ||
		*stats[0].AvgDurationMS != 7.5 || stats[0].LastUsedAt == nil || stats[0].Description != nil {
		t.Errorf("GetToolStats = %+v", stats)
	}
	if _, err := c.Reasoning.GetGlobalToolStats(ctx, ForTool("search"), Limit(3)); err != nil {
		t.Fatal(err)
	}
	page, err := c.Users.ListUsers(ctx, Limit(2), After("c1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Users) != 1 || page.Users[0].Identifier != "sara@omg.com" || page.NextCursor != "c2" {
		t.Errorf("ListUsers = %+v", page)
	}
	want := []string{
		"/v1/users/sara@omg.com/tools?consistency=7&limit=3&tool_name=search",
		"/v1/tools?limit=3&tool_name=search",
		"/v1/users?cursor=c1&limit=2",
	}
	if len(got) != len(want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d = %s, want %s", i, got[i], want[i])
		}
	}
}
