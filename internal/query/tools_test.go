package query

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/schemas"
)

// call is a tool call the test records: its status and duration (nil: none recorded).
type call struct {
	tool   string
	status string
	ms     any
	at     time.Time
}

// toolCalls records calls in one step of a new trace of f's user, and adds them to the Tool
// counters as the projector does (failed: error and timeout; a call without a duration adds 0).
func (f *fixture) toolCalls(calls ...call) {
	f.t.Helper()
	trace := f.trace("s-tools", "use tools", calls[0].at)
	step := f.step(trace, 1, "call tools", calls[0].at)
	for _, c := range calls {
		f.tools = append(f.tools, c.tool)
		f.write(`
MATCH (s:ReasoningStep {id: $step_id}) WHERE s.owner = $owner
CREATE (c:ToolCall {id: $id, tool_name: $tool, arguments: '{}', status: $status, duration_ms: $ms,
                    timestamp: $at, owner: $owner, recorded_at: $at, recorded_seq: $seq})
CREATE (s)-[:USES_TOOL]->(c)
MERGE (tool:Tool {name: $tool})
  ON CREATE SET tool.total_calls = 0, tool.successful_calls = 0, tool.failed_calls = 0, tool.total_duration_ms = 0
SET tool.total_calls = tool.total_calls + 1,
    tool.successful_calls = tool.successful_calls + CASE WHEN $status = 'success' THEN 1 ELSE 0 END,
    tool.failed_calls = tool.failed_calls + CASE WHEN $status IN ['error', 'timeout'] THEN 1 ELSE 0 END,
    tool.total_duration_ms = tool.total_duration_ms + coalesce($ms, 0),
    tool.last_used_at = CASE WHEN tool.last_used_at IS NULL OR $at > tool.last_used_at THEN $at ELSE tool.last_used_at END
CREATE (c)-[:INSTANCE_OF]->(tool)
`, map[string]any{"step_id": step, "id": events.NewID(), "tool": c.tool, "status": c.status, "ms": c.ms,
			"at": c.at, "seq": f.next()})
	}
}

// toolWorld is two users calling tools of names unique to the test: both call a, sara also b,
// liam also c as often as a (a tie broken by name).
type toolWorld struct {
	sara, liam *fixture
	a, b, c    string
	last       time.Time // sara's last call of a
}

func newToolWorld(t *testing.T) toolWorld {
	t.Helper()
	d := neo4jDriver(t)
	base := "tool-" + events.NewID()[24:]
	w := toolWorld{sara: newFixture(t, d, "sara"), liam: newFixture(t, d, "liam"), a: base + "-a", b: base + "-b", c: base + "-c"}
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	w.last = t0.Add(3 * time.Minute)
	w.sara.user(nil, t0)
	w.sara.toolCalls(
		call{w.a, "success", int64(10), t0.Add(time.Minute)},
		call{w.a, "error", int64(20), t0.Add(2 * time.Minute)},
		call{w.a, "timeout", nil, w.last},
		call{w.b, "success", int64(5), t0},
	)
	w.liam.user(nil, t0)
	w.liam.toolCalls(
		call{w.a, "success", int64(100), t0.Add(time.Hour)},
		call{w.a, "cancelled", int64(100), t0.Add(time.Hour)},
		call{w.c, "success", int64(1), t0},
		call{w.c, "success", int64(3), t0},
	)
	return w
}

func TestToolStatsArePerUser(t *testing.T) {
	t.Parallel()
	w := newToolWorld(t)
	r, err := NewReader(w.sara.d, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, c := range []struct {
		name string
		user string
		q    ToolQuery
		want []ToolStats
	}{
		{"sara, most called first", w.sara.id, ToolQuery{}, []ToolStats{
			{Name: w.a, TotalCalls: 3, SuccessfulCalls: 1, FailedCalls: 2, SuccessRate: 1.0 / 3, AvgDurationMS: ptr(10.0), LastUsedAt: &w.last},
			{Name: w.b, TotalCalls: 1, SuccessfulCalls: 1, SuccessRate: 1, AvgDurationMS: ptr(5.0), LastUsedAt: ptr(w.last.Add(-3 * time.Minute))},
		}},
		{"liam: sara's calls of a never count, a tie ordered by name; cancelled is not a success", w.liam.id, ToolQuery{}, []ToolStats{
			{Name: w.a, TotalCalls: 2, SuccessfulCalls: 1, FailedCalls: 1, SuccessRate: 0.5, AvgDurationMS: ptr(100.0), LastUsedAt: ptr(w.last.Add(57 * time.Minute))},
			{Name: w.c, TotalCalls: 2, SuccessfulCalls: 2, SuccessRate: 1, AvgDurationMS: ptr(2.0), LastUsedAt: ptr(w.last.Add(-3 * time.Minute))},
		}},
		{"one tool", w.sara.id, ToolQuery{ToolName: w.b}, []ToolStats{
			{Name: w.b, TotalCalls: 1, SuccessfulCalls: 1, SuccessRate: 1, AvgDurationMS: ptr(5.0), LastUsedAt: ptr(w.last.Add(-3 * time.Minute))},
		}},
		{"a tool of another user only", w.sara.id, ToolQuery{ToolName: w.c}, []ToolStats{}},
		{"limit", w.liam.id, ToolQuery{Limit: 1}, []ToolStats{
			{Name: w.a, TotalCalls: 2, SuccessfulCalls: 1, FailedCalls: 1, SuccessRate: 0.5, AvgDurationMS: ptr(100.0), LastUsedAt: ptr(w.last.Add(57 * time.Minute))},
		}},
		{"unknown user", "nobody+" + events.NewID()[24:] + "@test.engram", ToolQuery{}, []ToolStats{}},
	} {
		got, err := r.ToolStats(ctx, c.user, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !equalStats(got, c.want) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, statsString(got), statsString(c.want))
		}
	}
	for _, c := range []struct {
		q     ToolQuery
		field string
	}{
		{ToolQuery{Limit: -1}, "limit"},
		{ToolQuery{Limit: DefaultMaxLimit + 1}, "limit"},
		{ToolQuery{ToolName: "a\x00b"}, "tool_name"},
		{ToolQuery{ToolName: strings.Repeat("x", 257)}, "tool_name"},
	} {
		_, err := r.ToolStats(ctx, w.sara.id, c.q)
		var arg *ArgumentError
		if !errors.As(err, &arg) || arg.Field != c.field {
			t.Errorf("ToolStats(%+v) = %v, want an ArgumentError on %s", c.q, err, c.field)
		}
	}
}

// TestGlobalToolStats: the Tool counters, every tenant's calls together, as the library's
// get_tool_stats answers them.
func TestGlobalToolStats(t *testing.T) {
	t.Parallel()
	w := newToolWorld(t)
	r, err := NewReader(w.sara.d, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	got, err := r.GlobalToolStats(ctx, ToolQuery{ToolName: w.a})
	if err != nil {
		t.Fatal(err)
	}
	want := []ToolStats{{Name: w.a, TotalCalls: 5, SuccessfulCalls: 2, FailedCalls: 3, SuccessRate: 0.4,
		AvgDurationMS: ptr(46.0), LastUsedAt: ptr(w.last.Add(57 * time.Minute))}}
	if !equalStats(got, want) {
		t.Errorf("global a:\n got %s\nwant %s", statsString(got), statsString(want))
	}
	// The whole list is shared with other tests: check its order and limit only.
	all, err := r.GlobalToolStats(ctx, ToolQuery{Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || len(all) > 20 {
		t.Fatalf("%d tools, want 1 to 20", len(all))
	}
	if !slices.IsSortedFunc(all, func(x, y ToolStats) int {
		if x.TotalCalls != y.TotalCalls {
			return int(y.TotalCalls - x.TotalCalls)
		}
		return strings.Compare(x.Name, y.Name)
	}) {
		t.Errorf("not most called first, then by name: %s", statsString(all))
	}
}

// adminServer serves the reads behind an HS256 authenticator and returns its URL and a
// function minting a bearer header.
func adminServer(t *testing.T) (string, func(users []string, scopes ...auth.Scope) http.Header) {
	t.Helper()
	secret := bytes.Repeat([]byte("admin-secret-"), 3)
	file := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Enabled: true, HS256SecretFile: file})
	if err != nil {
		t.Fatal(err)
	}
	d := neo4jDriver(t)
	r, err := NewReader(d, "", WithCheckpointGroup(testGroup(t, d)), WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	NewHandler(r, time.Second, 50, nil, nil, WithAuthenticator(a)).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, func(users []string, scopes ...auth.Scope) http.Header {
		tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: "p", Users: users, Scopes: scopes, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return http.Header{"Authorization": {"Bearer " + tok}}
	}
}

// TestToolAndUserRoutesAuthorization: a user's tool statistics are read like the user's other
// reads; the reads across tenants need the admin scope for every user.
func TestToolAndUserRoutesAuthorization(t *testing.T) {
	t.Parallel()
	w := newToolWorld(t)
	base, token := adminServer(t)
	every := []string{"*"}
	reader := token(every, auth.ScopeRead)
	saraAgent := token([]string{w.sara.id}, auth.ScopeRead)
	adminOfSome := token([]string{"*@test.engram"}, auth.ScopeAdmin)
	admin := token(every, auth.ScopeAdmin)

	var body toolsBody
	if code, raw := get(t, userURL(base, w.sara.id)+"/tools", saraAgent, &body); code != 200 || len(body.Tools) != 2 {
		t.Errorf("sara's agent reading sara's tools: %d %s", code, raw)
	}
	if code, raw := get(t, userURL(base, w.liam.id)+"/tools", saraAgent, nil); code != http.StatusForbidden {
		t.Errorf("sara's agent reading liam's tools: %d %s", code, raw)
	}
	for _, path := range []string{"/v1/tools", "/v1/users"} {
		if code, raw := get(t, base+path, nil, nil); code != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d %s", path, code, raw)
		}
		code, raw := get(t, base+path, reader, nil)
		if code != http.StatusForbidden || !strings.Contains(string(raw), `lacks scope \"admin\"`) {
			t.Errorf("%s with the read scope for every user: %d %s", path, code, raw)
		}
		code, raw = get(t, base+path, adminOfSome, nil)
		if code != http.StatusForbidden || !strings.Contains(string(raw), "may not read across tenants") {
			t.Errorf("%s with the admin scope for some users: %d %s", path, code, raw)
		}
		if code, raw := get(t, base+path+"?limit=1", admin, nil); code != http.StatusOK {
			t.Errorf("%s with the admin scope for every user: %d %s", path, code, raw)
		}
	}
	body = toolsBody{}
	if code, raw := get(t, base+"/v1/tools?tool_name="+w.a, admin, &body); code != 200 || len(body.Tools) != 1 || body.Tools[0].TotalCalls != 5 {
		t.Errorf("global a: %d %s", code, raw)
	}
}

// TestToolAndUserRoutesBadInput: 400 naming the parameter, before anything is read.
func TestToolAndUserRoutesBadInput(t *testing.T) {
	t.Parallel()
	srv := newServer(t, neo4jDriver(t))
	sara := userURL(srv.url, "sara@omg.com")
	for target, field := range map[string]string{
		sara + "/tools?limit=0":                                                  "limit",
		sara + "/tools?limit=51":                                                 "limit",
		sara + "/tools?tool_name=":                                               "tool_name",
		sara + "/tools?tool=search":                                              "tool",
		sara + "/tools?limit=1&limit=2":                                          "limit",
		srv.url + "/v1/tools?limit=x":                                            "limit",
		srv.url + "/v1/tools?tool_name=%7F":                                      "tool_name",
		srv.url + "/v1/tools?consistency=1":                                      "consistency",
		srv.url + "/v1/users?consistency=1":                                      "consistency",
		srv.url + "/v1/users?cursor=nope":                                        "cursor",
		srv.url + "/v1/users?limit=-1":                                           "limit",
		srv.url + "/v1/users?identifier=sara":                                    "identifier",
		srv.url + "/v1/users?cursor=" + cursor{ts: time.Now(), id: "x"}.encode(): "cursor",
	} {
		code, body := get(t, target, nil, nil)
		if code != http.StatusBadRequest || !strings.Contains(string(body), `"field":"`+field+`"`) {
			t.Errorf("%s: %d %s, want 400 on %s", strings.TrimPrefix(target, srv.url), code, body, field)
		}
	}
	code, body := get(t, srv.url+"/v1/tools", http.Header{ConsistencyHeader: {"1"}}, nil)
	if code != http.StatusBadRequest || !strings.Contains(string(body), `"field":"consistency"`) {
		t.Errorf("/v1/tools with a consistency header: %d %s", code, body)
	}
}

func equalStats(a, b []ToolStats) bool {
	return slices.EqualFunc(a, b, func(x, y ToolStats) bool {
		return x.Name == y.Name && x.TotalCalls == y.TotalCalls && x.SuccessfulCalls == y.SuccessfulCalls &&
			x.FailedCalls == y.FailedCalls && math.Abs(x.SuccessRate-y.SuccessRate) < 1e-9 &&
			equalPtr(x.AvgDurationMS, y.AvgDurationMS) && equalPtr(x.Description, y.Description) &&
			(x.LastUsedAt == nil) == (y.LastUsedAt == nil) && (x.LastUsedAt == nil || x.LastUsedAt.Equal(*y.LastUsedAt))
	})
}

func equalPtr[T comparable](a, b *T) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func statsString(ts []ToolStats) string {
	var b strings.Builder
	for _, s := range ts {
		var avg, last any = "null", "null"
		if s.AvgDurationMS != nil {
			avg = *s.AvgDurationMS
		}
		if s.LastUsedAt != nil {
			last = s.LastUsedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "{%s total=%d ok=%d failed=%d rate=%.3f avg=%v last=%v} ",
			s.Name, s.TotalCalls, s.SuccessfulCalls, s.FailedCalls, s.SuccessRate, avg, last)
	}
	return b.String()
}

// TestOpenAPIPathsAreRoutes: every path of the OpenAPI document is served (none answers the
// mux's own 404), so the document cannot list a route the handler lost.
func TestOpenAPIPathsAreRoutes(t *testing.T) {
	t.Parallel()
	srv := newServer(t, neo4jDriver(t))
	fill := strings.NewReplacer("{identifier}", "sara@omg.com", "{session_id}", "s", "{trace_id}", "t",
		"{event_id}", "01a2320c-7ca5-7447-8bb8-8c4e68040d11")
	paths := regexp.MustCompile(`(?m)^  (/v1/\S+):$`).FindAllStringSubmatch(string(schemas.QueryOpenAPI), -1)
	if len(paths) < 20 {
		t.Fatalf("found %d paths in the document", len(paths))
	}
	for _, m := range paths {
		code, body := get(t, srv.url+fill.Replace(m[1])+"?sequence=1", nil, nil)
		if code == http.StatusNotFound && strings.HasPrefix(string(body), "404 page not found") {
			t.Errorf("%s is in the document but not served", m[1])
		}
	}
}
