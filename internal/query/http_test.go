package query

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

type testServer struct {
	url   string
	group string
}

// newServer serves the reads of d with a checkpoint group of its own, a 200ms consistency wait
// and pages of at most 50.
func newServer(t *testing.T, d neo4j.DriverWithContext) testServer {
	t.Helper()
	group := testGroup(t, d)
	r, err := NewReader(d, "", WithCheckpointGroup(group), WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	// A one-second consistency wait: on a loaded machine a shorter one can end before Neo4j
	// answers the first checkpoint read, which is a 503 (unanswered), not the 504 a test of a
	// projection that is behind expects.
	NewHandler(r, time.Second, 50, nil, m).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return testServer{url: srv.URL, group: group}
}

// get fetches path (already escaped) and decodes a JSON answer into out when out is not nil.
func get(t *testing.T, target string, header http.Header, out any) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
	}
	return resp.StatusCode, body
}

func userURL(base, identifier string) string {
	return base + "/v1/users/" + url.PathEscape(identifier)
}

func TestHTTPReads(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	srv := newServer(t, d)
	s := writeSeedPrefs(t, d, "sara")
	base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	m1 := s.f.message("sara-2026-05-01", "user", "Find me a healthcare team", base, nil)
	m2 := s.f.message("sara-2026-05-01", "assistant", "Here are three", base.Add(time.Minute), nil)
	tr := s.f.trace("sara-2026-05-01", "consultant search", base)
	s.f.step(tr, 1, "look", base)
	u := userURL(srv.url, s.f.id)

	var user User
	if code, body := get(t, u, nil, &user); code != 200 || user.Identifier != s.f.id || string(user.Attributes) != `{"role":"manager"}` {
		t.Fatalf("user: %d %s", code, body)
	}

	prefCases := []struct {
		query string
		want  []string
	}{
		{"", sorted(s.senior, s.senior2, s.golang)},
		{"?active_only=false", sorted(s.senior, s.junior, s.senior2, s.golang)},
		{"?applies_to_name=Healthcare&applies_to_type=Industry", sorted(s.senior)},
		{"?applies_to_id=" + events.EntityID(s.f.id, "Healthcare", "Industry"), sorted(s.senior)},
		{"?applies_to_name=Healthcare&active_only=false", sorted(s.senior, s.junior)},
		{"?as_of=2026-05-01T11:00:00Z&active_only=false", sorted(s.senior, s.junior)},
		{"?as_of=2026-05-01T13:00:00%2B02:00&active_only=false", sorted(s.senior, s.junior)},
		{"?as_of=2026-05-01T13:00:00+02:00&active_only=false", sorted(s.senior, s.junior)}, // '+' arrived as a space
		{"?known_at=" + url.QueryEscape(s.r3.Add(time.Second).Format(time.RFC3339Nano)), sorted(s.senior, s.junior, s.senior2)},
	}
	for _, tc := range prefCases {
		var body struct{ Preferences []Preference }
		code, raw := get(t, u+"/preferences"+tc.query, nil, &body)
		if code != 200 {
			t.Fatalf("preferences%s: %d %s", tc.query, code, raw)
		}
		if got := ids(body.Preferences); !slices.Equal(got, tc.want) {
			t.Errorf("preferences%s: %v, want %v", tc.query, names(s, got), names(s, tc.want))
		}
	}

	var hist struct{ Preferences []Preference }
	if code, raw := get(t, u+"/preferences/history", nil, &hist); code != 200 || len(hist.Preferences) != 4 || hist.Preferences[1].SupersededBy == nil {
		t.Fatalf("history: %d %s", code, raw)
	}
	var convs struct{ Conversations []Conversation }
	if code, raw := get(t, u+"/conversations", nil, &convs); code != 200 || len(convs.Conversations) != 1 {
		t.Fatalf("conversations: %d %s", code, raw)
	}
	var page MessagePage
	if code, raw := get(t, u+"/conversations/sara-2026-05-01/messages?order=desc&limit=1", nil, &page); code != 200 ||
		len(page.Messages) != 1 || page.Messages[0].ID != m2 || page.NextCursor == "" {
		t.Fatalf("messages: %d %s", code, raw)
	}
	var next MessagePage
	if code, raw := get(t, u+"/conversations/sara-2026-05-01/messages?order=desc&limit=1&cursor="+page.NextCursor, nil, &next); code != 200 ||
		len(next.Messages) != 1 || next.Messages[0].ID != m1 || next.NextCursor != "" {
		t.Fatalf("messages page 2: %d %s", code, raw)
	}
	var traces struct{ Traces []TraceSummary }
	if code, raw := get(t, u+"/traces?session_id=sara-2026-05-01", nil, &traces); code != 200 || len(traces.Traces) != 1 || traces.Traces[0].ID != tr {
		t.Fatalf("traces: %d %s", code, raw)
	}
	var trace Trace
	if code, raw := get(t, u+"/traces/"+tr, nil, &trace); code != 200 || trace.ID != tr || len(trace.Steps) != 1 {
		t.Fatalf("trace: %d %s", code, raw)
	}
	// JSON shape the client relies on: nulls and empty lists, not missing keys.
	_, raw := get(t, u+"/preferences?applies_to_name=Healthcare&applies_to_type=Industry", nil, nil)
	for _, key := range []string{`"valid_until":null`, `"superseded_by":null`, `"supersedes":[]`, `"context":null`, `"applies_to":[{"id":`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("preferences JSON lacks %s: %s", key, raw)
		}
	}
}

func TestHTTPUnknownUser(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	srv := newServer(t, d)
	u := userURL(srv.url, testenv.User(t, "nobody"))
	if code, body := get(t, u, nil, nil); code != 404 || !strings.Contains(string(body), "not found") {
		t.Fatalf("user: %d %s", code, body)
	}
	if code, body := get(t, u+"/traces/0190a0a0-0000-7000-8000-000000000000", nil, nil); code != 404 {
		t.Fatalf("trace: %d %s", code, body)
	}
	for path, want := range map[string]string{
		"/preferences":                   `{"preferences":[]}`,
		"/preferences/history":           `{"preferences":[]}`,
		"/conversations":                 `{"conversations":[]}`,
		"/conversations/s-1/messages":    `{"messages":[]}`,
		"/traces":                        `{"traces":[]}`,
		"/traces?session_id=s-1&limit=5": `{"traces":[]}`,
	} {
		if code, body := get(t, u+path, nil, nil); code != 200 || strings.TrimSpace(string(body)) != want {
			t.Errorf("%s: %d %s, want 200 %s", path, code, body, want)
		}
	}
}

func TestHTTPIsolation(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	srv := newServer(t, d)
	s := writeSeedPrefs(t, d, "sara")
	base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	s.f.message("sara-2026-05-01", "user", "Find me a healthcare team", base, nil)
	tr := s.f.trace("sara-2026-05-01", "consultant search", base)
	liam := newFixture(t, d, "liam")
	liam.user(nil, base)
	u := userURL(srv.url, liam.id)
	for _, path := range []string{
		"/preferences?active_only=false&applies_to_id=" + events.EntityID(s.f.id, "Healthcare", "Industry"),
		"/preferences?active_only=false&applies_to_name=Healthcare",
		"/preferences/history",
		"/conversations/sara-2026-05-01/messages",
		"/traces?session_id=sara-2026-05-01",
		"/conversations",
	} {
		code, body := get(t, u+path, nil, nil)
		if code != 200 || strings.Contains(string(body), `"id"`) {
			t.Errorf("liam %s: %d %s", path, code, body)
		}
	}
	if code, body := get(t, u+"/traces/"+tr, nil, nil); code != 404 || strings.Contains(string(body), "consultant") {
		t.Errorf("liam reading sara's trace: %d %s", code, body)
	}
}

func TestHTTPBadInput(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	srv := newServer(t, d)
	u := userURL(srv.url, "sara@omg.com")
	tests := []struct {
		name, target, field string
	}{
		{"identifier with control character", srv.url + "/v1/users/a%00b", "identifier"},
		{"identifier too long", srv.url + "/v1/users/" + strings.Repeat("a", 300), "identifier"},
		{"identifier not UTF-8", srv.url + "/v1/users/%ff%fe/preferences", "identifier"},
		{"as_of not RFC 3339", u + "/preferences?as_of=yesterday", "as_of"},
		{"as_of date only", u + "/preferences?as_of=2026-05-01", "as_of"},
		{"as_of without zone", u + "/preferences?as_of=2026-05-01T10:00:00", "as_of"},
		{"known_at malformed", u + "/preferences?known_at=2026-13-01T00:00:00Z", "known_at"},
		{"known_at on history malformed", u + "/preferences/history?known_at=now", "known_at"},
		{"active_only not boolean", u + "/preferences?active_only=yes", "active_only"},
		{"type without name", u + "/preferences?applies_to_type=Industry", "applies_to_type"},
		{"id with name", u + "/preferences?applies_to_id=x&applies_to_name=Healthcare", "applies_to_id"},
		{"empty name", u + "/preferences?applies_to_name=", "applies_to_name"},
		{"empty type", u + "/preferences?applies_to_name=Healthcare&applies_to_type=", "applies_to_type"},
		{"name too long", u + "/preferences?applies_to_name=" + strings.Repeat("x", 257), "applies_to_name"},
		{"unknown parameter", u + "/preferences?applies_to=Healthcare", "applies_to"},
		{"repeated parameter", u + "/preferences?as_of=2026-05-01T10:00:00Z&as_of=2026-05-02T10:00:00Z", "as_of"},
		{"limit zero", u + "/conversations?limit=0", "limit"},
		{"limit above max", u + "/conversations/s/messages?limit=51", "limit"},
		{"limit negative", u + "/traces?limit=-3", "limit"},
		{"limit not a number", u + "/conversations/s/messages?limit=ten", "limit"},
		{"bad order", u + "/conversations/s/messages?order=newest", "order"},
		{"bad since", u + "/conversations/s/messages?since=1714550400", "since"},
		{"bad before", u + "/conversations/s/messages?before=2026-05-01T25:00:00Z", "before"},
		{"bad cursor", u + "/conversations/s/messages?cursor=abc", "cursor"},
		{"session id too long", u + "/conversations/" + strings.Repeat("s", 257) + "/messages", "session_id"},
		{"trace session id with control character", u + "/traces?session_id=a%01", "session_id"},
		{"trace id with control character", u + "/traces/a%7f", "trace_id"},
		{"parameter on the user", u + "?limit=3", "limit"},
		{"consistency not a number", u + "/preferences?consistency=latest", "consistency"},
		{"consistency zero", u + "/preferences?consistency=0", "consistency"},
		{"consistency negative", u + "/preferences?consistency=-1", "consistency"},
		{"consistency too large", u + "/preferences?consistency=9223372036854775808", "consistency"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, body := get(t, tc.target, nil, nil)
			var p app.Problem
			if err := json.Unmarshal(body, &p); err != nil || code != http.StatusBadRequest || p.Field != tc.field || p.Error == "" {
				t.Fatalf("%s: %d %s, want 400 naming %s", tc.target, code, body, tc.field)
			}
		})
	}
	t.Run("header and parameter differ", func(t *testing.T) {
		t.Parallel()
		code, body := get(t, u+"/preferences?consistency=5", http.Header{ConsistencyHeader: {"6"}}, nil)
		if code != 400 || !strings.Contains(string(body), `"field":"consistency"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("bad header", func(t *testing.T) {
		t.Parallel()
		code, body := get(t, u+"/preferences", http.Header{ConsistencyHeader: {"abc"}}, nil)
		if code != 400 || !strings.Contains(string(body), `"field":"consistency"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
}

// TestHTTPIdentifierEscaping: identifiers with '/', '?', '#', '%' or spaces travel
// percent-encoded in one path segment.
func TestHTTPIdentifierEscaping(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	srv := newServer(t, d)
	f := newFixture(t, d, "a/b?c#d%e f")
	f.user(map[string]any{"odd": true}, time.Now())
	var user User
	if code, body := get(t, userURL(srv.url, f.id), nil, &user); code != 200 || user.Identifier != f.id {
		t.Fatalf("%d %s", code, body)
	}
	f.message("s/1", "user", "hello", time.Now(), nil)
	var page MessagePage
	if code, body := get(t, userURL(srv.url, f.id)+"/conversations/"+url.PathEscape("s/1")+"/messages", nil, &page); code != 200 || len(page.Messages) != 1 {
		t.Fatalf("%d %s", code, body)
	}
}

func TestHTTPConsistency(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	srv := newServer(t, d)
	f := newFixture(t, d, "ryw")
	f.user(map[string]any{"role": "manager"}, time.Now())
	tok, _ := events.TenantToken(f.id)
	partition := events.Partition(tok, natsdeploy.Partitions)
	name := srv.group + "-p" + strconv.Itoa(partition)
	u := userURL(srv.url, f.id)

	// No checkpoint has reached 42: 504 naming the token and the checkpoint.
	code, body := get(t, u+"/preferences?consistency=42", nil, nil)
	var p struct {
		Error, Field, Checkpoint string
		Token                    uint64
	}
	if err := json.Unmarshal(body, &p); err != nil || code != http.StatusGatewayTimeout || p.Token != 42 ||
		p.Checkpoint != name || p.Field != "consistency" || !strings.Contains(p.Error, "42") || !strings.Contains(p.Error, name) {
		t.Fatalf("behind: %d %s", code, body)
	}
	setCheckpoint(t, d, name, partition, 41)
	// The 504 names the token and the checkpoint, never the stream position the checkpoint
	// reached: that is global across tenants (issue 12 finding 13).
	if code, body := get(t, u, http.Header{ConsistencyHeader: {"42"}}, nil); code != http.StatusGatewayTimeout ||
		strings.Contains(string(body), `"reached"`) || strings.Contains(string(body), "sequence 41") {
		t.Fatalf("at 41: %d %s", code, body)
	}
	setCheckpoint(t, d, name, partition, 42)
	var user User
	if code, body := get(t, u+"?consistency=42", nil, &user); code != 200 || user.Identifier != f.id {
		t.Fatalf("covered: %d %s", code, body)
	}
	if code, body := get(t, u+"/conversations", http.Header{ConsistencyHeader: {"40"}}, nil); code != 200 {
		t.Fatalf("header, covered: %d %s", code, body)
	}
	// Server-Timing says how long the wait and the read took; without a token, the read alone.
	timing := func(target string) string {
		resp, err := http.Get(target)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return strings.Join(resp.Header.Values("Server-Timing"), ", ")
	}
	durs := regexp.MustCompile(`^consistency;dur=\d+\.\d{3}, read;dur=\d+\.\d{3}$`)
	if got := timing(u + "?consistency=42"); !durs.MatchString(got) {
		t.Errorf("Server-Timing with a token: %q", got)
	}
	if got := timing(u); !regexp.MustCompile(`^read;dur=\d+\.\d{3}$`).MatchString(got) {
		t.Errorf("Server-Timing without a token: %q", got)
	}
	// Bad parameters answer 400 before any wait.
	if code, _ := get(t, u+"/preferences?consistency=100&as_of=x", nil, nil); code != 400 {
		t.Fatalf("bad parameter with a token: %d", code)
	}
}

func TestHTTPOpenAPI(t *testing.T) {
	t.Parallel()
	srv := newServer(t, neo4jDriver(t))
	code, body := get(t, srv.url+"/v1/openapi-query.yaml", nil, nil)
	if code != 200 || !strings.HasPrefix(string(body), "openapi: 3.1") {
		t.Fatalf("%d %.80s", code, body)
	}
	for _, want := range []string{
		"/v1/users/{identifier}:", "/v1/users/{identifier}/preferences:", "/v1/users/{identifier}/preferences/history:",
		"/v1/users/{identifier}/conversations:", "/v1/users/{identifier}/conversations/{session_id}/messages:",
		"/v1/users/{identifier}/traces:", "/v1/users/{identifier}/traces/{trace_id}:",
		"/v1/users/{identifier}/events/{event_id}:", "dead_lettered", "sequence",
		"/v1/shared/preferences:", "/v1/shared/preferences/history:", "/v1/shared/conversations:",
		"/v1/shared/conversations/{session_id}/messages:", "/v1/shared/traces:", "/v1/shared/traces/{trace_id}:",
		"/v1/shared/events/{event_id}:", "SharedTenantOff",
		"/v1/users/{identifier}/tools:", "/v1/shared/tools:", "/v1/tools:", "/v1/users:", "tool_name", "success_rate",
		"avg_duration_ms", "last_used_at", "NotAdmin",
		"applies_to_id", "applies_to_name", "applies_to_type", "active_only", "as_of", "known_at", "consistency",
		"Engram-Consistency", "next_cursor", "superseded_recorded_at", "'504'",
		"/v1/users/{identifier}/search/messages:", "/v1/users/{identifier}/search/preferences:",
		"/v1/users/{identifier}/search/entities:", "/v1/users/{identifier}/search/steps:",
		"/v1/shared/search/messages:", "/v1/shared/search/preferences:", "/v1/shared/search/entities:",
		"/v1/shared/search/steps:", "success_only", "MessageHits", "StepHits",
		"/v1/users/{identifier}/entities:", "/v1/users/{identifier}/entities/by-name:", "/v1/users/{identifier}/entities/{entity_id}:",
		"/v1/users/{identifier}/entities/{entity_id}/related:", "/v1/users/{identifier}/facts:",
		"/v1/shared/entities:", "/v1/shared/entities/by-name:", "/v1/shared/entities/{entity_id}:",
		"/v1/shared/entities/{entity_id}/related:", "/v1/shared/facts:", "EntityDetail", "resolved_from", "merged_ids",
		"truncated", "direction",
		"/v1/users/{identifier}/entities/{entity_id}/mentions:", "/v1/users/{identifier}/messages/{message_id}/entities:",
		"/v1/users/{identifier}/traces/{trace_id}/entities:", "/v1/shared/entities/{entity_id}/mentions:",
		"/v1/shared/messages/{message_id}/entities:", "/v1/shared/traces/{trace_id}/entities:", "EntityMentions", "MentionedEntities",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("OpenAPI document lacks %s", want)
		}
	}
}
