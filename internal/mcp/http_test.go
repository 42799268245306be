package mcp_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/mcp"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestStreamableHTTP runs the built server with the http transport in front of a stack with
// authentication on, and drives it with the Go SDK's Streamable HTTP client: each request's
// bearer token is what Engram authorizes, per user and scope, exactly as on its own routes.
func TestStreamableHTTP(t *testing.T) {
	t.Parallel()
	secret := bytes.Repeat([]byte("mcp-secret-"), 4)
	secretFile := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	stack := testenv.StartStack(t, "AUTH_ENABLED=true", "AUTH_HS256_SECRET_FILE="+secretFile)
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), sara, liam) })
	mint := func(name string, users []string, scopes ...auth.Scope) string {
		tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: name, Users: users, Scopes: scopes, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	saraAgent := mint("sara-agent", []string{sara}, auth.ScopeRead, auth.ScopeWrite)
	writeOnly := mint("sara-writer", []string{sara}, auth.ScopeWrite)
	admin := mint("ops", []string{"*"}, auth.ScopeRead, auth.ScopeWrite, auth.ScopeAdmin)
	forged, err := auth.SignHS256(bytes.Repeat([]byte("other-secret-"), 4), auth.TokenSpec{Subject: "x", Users: []string{"*"}, Scopes: auth.AllScopes, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	base, _ := startHTTP(t, serverEnv(stack, "MCP_ERASURE=true"))
	endpoint := base + mcp.Path
	connect := func(token string) *session {
		t.Helper()
		s, err := connectHTTP(t, endpoint, token, "")
		if err != nil {
			t.Fatalf("connect over Streamable HTTP: %v", err)
		}
		return s
	}

	s := connect(saraAgent)
	if _, ok := s.tools()["memory_erase_user"]; !ok {
		t.Error("memory_erase_user not offered with MCP_ERASURE=true")
	}
	var p mcp.AddPreferenceOut
	s.call("memory_add_preference", map[string]any{"user_identifier": sara, "category": "consultants", "preference": "Senior",
		"applies_to": []any{map[string]any{"name": "Healthcare", "type": "Industry"}}}, &p)
	if p.Status != mcp.StatusApplied {
		t.Errorf("add preference: %+v", p)
	}
	var prefs mcp.PreferencesOut
	s.call("memory_get_preferences", map[string]any{"user_identifier": sara}, &prefs)
	if len(prefs.Preferences) != 1 || prefs.Preferences[0].ID != p.PreferenceID {
		t.Errorf("sara's preferences: %+v", prefs)
	}
	var res mcp.PreferencesOut
	readResource(t, s, mcp.PreferencesURI(sara), &res)
	if len(res.Preferences) != 1 {
		t.Errorf("sara's preferences resource: %+v", res)
	}

	// Outside the token's reach: Engram's 403 names the principal, the user and the scope,
	// and nothing is written.
	before := storedEvents(t, stack)
	for _, tc := range []struct {
		name  string
		s     *session
		tool  string
		args  map[string]any
		wants []string
	}{
		{"write for another user", s, "memory_add_preference", map[string]any{"user_identifier": liam, "category": "c", "preference": "p"},
			[]string{`principal "sara-agent"`, `may not act for user "` + liam + `"`, `scope "write"`}},
		{"read another user", s, "memory_get_preferences", map[string]any{"user_identifier": liam},
			[]string{`principal "sara-agent"`, `may not act for user "` + liam + `"`, `scope "read"`}},
		{"messages of another user", s, "memory_add_messages", map[string]any{"user_identifier": liam, "session_id": "x",
			"messages": []any{map[string]any{"role": "user", "content": "hi"}}}, []string{`may not act for user "` + liam + `"`}},
		{"erase without the admin scope", s, "memory_erase_user", map[string]any{"user_identifier": sara, "confirm": sara},
			[]string{`principal "sara-agent" lacks scope "admin"`}},
		{"read with a write-only token", connect(writeOnly), "memory_get_preferences", map[string]any{"user_identifier": sara},
			[]string{`principal "sara-writer" lacks scope "read"`}},
		{"no token", connect(""), "memory_add_preference", map[string]any{"user_identifier": sara, "category": "c", "preference": "p"},
			[]string{"unauthenticated", "missing Authorization header"}},
		{"a token of another issuer", connect(forged), "memory_get_preferences", map[string]any{"user_identifier": sara},
			[]string{"unauthenticated", "signature"}},
	} {
		if msg := tc.s.callErr(tc.tool, tc.args); !containsAll(msg, tc.wants...) {
			t.Errorf("%s: %q, want it to contain %q", tc.name, msg, tc.wants)
		}
	}
	if _, err := s.cs.ReadResource(t.Context(), &sdk.ReadResourceParams{URI: mcp.PreferencesURI(liam)}); err == nil || !strings.Contains(err.Error(), `may not act for user`) {
		t.Errorf("another user's resource: %v", err)
	}
	if after := storedEvents(t, stack); after != before {
		t.Errorf("refused calls stored %d events", after-before)
	}

	// A client of the previous protocol (initialize handshake, 2025-11-25), as most hosts
	// still are, is served and authorized the same way.
	legacy, err := connectHTTP(t, endpoint, saraAgent, "2025-11-25")
	if err != nil {
		t.Fatalf("connect with protocol 2025-11-25: %v", err)
	}
	if v := legacy.cs.InitializeResult().ProtocolVersion; v != "2025-11-25" {
		t.Errorf("negotiated %q", v)
	}
	var msgs mcp.AddMessagesOut
	legacy.call("memory_add_messages", map[string]any{"user_identifier": sara, "session_id": "http-1",
		"messages": []any{map[string]any{"role": "user", "content": "over the previous protocol"}}}, &msgs)
	var conv mcp.ConversationOut
	legacy.call("memory_get_conversation", map[string]any{"user_identifier": sara, "session_id": "http-1"}, &conv)
	if len(conv.Messages) != 1 || conv.Messages[0].ID != msgs.Messages[0].MessageID {
		t.Errorf("legacy protocol read back: %+v", conv)
	}
	if msg := legacy.callErr("memory_get_conversation", map[string]any{"user_identifier": liam, "session_id": "http-1"}); !strings.Contains(msg, `may not act for user "`+liam+`"`) {
		t.Errorf("legacy protocol, another user: %s", msg)
	}

	// A write-only credential still writes; the projector's decision it cannot read is
	// answered "stored".
	var w mcp.AddPreferenceOut
	connect(writeOnly).call("memory_add_preference", map[string]any{"user_identifier": sara, "category": "tone", "preference": "brief"}, &w)
	if w.Status != mcp.StatusStored || w.PreferenceID == "" {
		t.Errorf("write-only add: %+v", w)
	}

	// Erasure with an admin's token, confirmed.
	a := connect(admin)
	if msg := a.callErr("memory_erase_user", map[string]any{"user_identifier": sara, "confirm": liam}); !strings.Contains(msg, `"confirm"`) {
		t.Errorf("erase with a wrong confirmation: %s", msg)
	}
	var erased mcp.EraseUserOut
	a.call("memory_erase_user", map[string]any{"user_identifier": sara, "confirm": sara, "reason": "the user asked"}, &erased)
	if erased.Status != mcp.StatusApplied {
		t.Errorf("erase: %+v", erased)
	}
	var after mcp.PreferencesOut
	a.call("memory_get_preferences", map[string]any{"user_identifier": sara, "active_only": false}, &after)
	if len(after.Preferences) != 0 {
		t.Errorf("preferences after the erasure: %+v", after)
	}
	if msg := s.callErr("memory_add_preference", map[string]any{"user_identifier": sara, "category": "c", "preference": "p"}); !strings.Contains(msg, "erased") {
		t.Errorf("a write for the erased user: %s", msg)
	}

	// The metrics count the refusals by outcome.
	body := get(t, base+"/metrics")
	for _, want := range []string{
		`engram_mcp_tool_calls_total{outcome="forbidden",tool="memory_add_preference"}`,
		`engram_mcp_tool_calls_total{outcome="unauthenticated",tool="memory_add_preference"}`,
		`engram_mcp_tool_calls_total{outcome="ok",tool="memory_erase_user"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// With MCP_HTTP_REQUIRE_TOKEN the endpoint itself answers 401 without a token, so a host
	// asks for one before the first call.
	strict, _ := startHTTP(t, serverEnv(stack, "MCP_HTTP_REQUIRE_TOKEN=true"))
	if _, err := connectHTTP(t, strict+mcp.Path, "", ""); err == nil {
		t.Error("connected without a token to a server that requires one")
	}
	req, _ := http.NewRequest(http.MethodPost, strict+mcp.Path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	var ok mcp.PreferencesOut
	st, err := connectHTTP(t, strict+mcp.Path, saraAgent, "")
	if err != nil {
		t.Fatal(err)
	}
	st.call("memory_get_preferences", map[string]any{"user_identifier": sara}, &ok)
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
