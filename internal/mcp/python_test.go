package mcp_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/mcp"
	"github.com/engram-memory/engram/internal/testenv"
)

// pythonClients are the releases of the Python `mcp` package the third-party test runs: the
// last 1.x (protocol 2025-11-25, what most hosts ship) and a 2.x (which also speaks the
// sessionless 2026-07-28 protocol).
var pythonClients = []string{"mcp==1.30.0", "mcp==2.3.0"}

// TestPythonClient drives the built server with a client that is not ours: the Python SDK
// from PyPI, installed into a virtualenv of its own. It starts the server over stdio, lists
// its tools, calls them, reads back what it wrote, and checks the refusals.
func TestPythonClient(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	bin := mcpBinary(t)
	for _, requirement := range pythonClients {
		t.Run(requirement, func(t *testing.T) {
			python := testenv.PythonVenv(t, requirement)
			user := testenv.User(t, "py")
			t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), user) })
			env := map[string]string{}
			for _, kv := range serverEnv(stack) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			envJSON, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			out := testenv.RunPython(t, python, "testdata/python_client.py", bin, string(envJSON), user, "py-1")
			var r pythonReport
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("the client's report: %v\n%s", err, out)
			}
			checkPythonReport(t, r, user)
			if strings.HasPrefix(requirement, "mcp==2.") {
				checkModern(t, r)
			}
		})
	}
}

type pythonCall struct {
	IsError    bool            `json:"is_error"`
	Structured json.RawMessage `json:"structured"`
	Text       string          `json:"text"`
}

func (c pythonCall) decode(t *testing.T, name string, out any) {
	t.Helper()
	if c.IsError {
		t.Fatalf("%s: tool error %s", name, c.Text)
	}
	if err := json.Unmarshal(c.Structured, out); err != nil {
		t.Fatalf("%s: structured content %s: %v", name, c.Structured, err)
	}
}

type pythonReport struct {
	Server, Protocol, Instructions string
	Tools                          []string
	Schemas                        map[string]struct {
		Input struct {
			Required []string `json:"required"`
		} `json:"input"`
		Output json.RawMessage `json:"output"`
	}
	AddPreference   pythonCall `json:"add_preference"`
	AddMessages     pythonCall `json:"add_messages"`
	GetPreferences  pythonCall `json:"get_preferences"`
	GetConversation pythonCall `json:"get_conversation"`
	Search          pythonCall `json:"search"`
	BadConfidence   pythonCall `json:"bad_confidence"`
	NoUser          pythonCall `json:"no_user"`
	AfterRefusals   pythonCall `json:"after_refusals"`
	Templates       []string
	Resource        struct{ URI, Mime, Text string }
	Prompts         []string
	Prompt          string
	Modern          *struct {
		Protocol       string
		AddPreference  pythonCall `json:"add_preference"`
		GetPreferences pythonCall `json:"get_preferences"`
	}
}

func checkPythonReport(t *testing.T, r pythonReport, user string) {
	t.Helper()
	if r.Server != mcp.Name || r.Protocol == "" || !strings.Contains(r.Instructions, "memory_get_context") {
		t.Errorf("handshake: server %q, protocol %q, instructions %q", r.Server, r.Protocol, r.Instructions)
	}
	t.Logf("negotiated protocol %s", r.Protocol)
	if want := slices.Sorted(slices.Values(wantTools)); !slices.Equal(r.Tools, want) {
		t.Errorf("tools %v, want %v", r.Tools, want)
	}
	for _, name := range wantTools {
		s := r.Schemas[name]
		if !slices.Contains(s.Input.Required, "user_identifier") || len(s.Output) == 0 {
			t.Errorf("%s: required %v, output schema %s", name, s.Input.Required, s.Output)
		}
	}

	var added mcp.AddPreferenceOut
	r.AddPreference.decode(t, "memory_add_preference", &added)
	if added.PreferenceID == "" || added.Status != mcp.StatusApplied {
		t.Errorf("add preference: %+v", added)
	}
	var msgs mcp.AddMessagesOut
	r.AddMessages.decode(t, "memory_add_messages", &msgs)
	if len(msgs.Messages) != 2 {
		t.Errorf("add messages: %+v", msgs)
	}
	var prefs mcp.PreferencesOut
	r.GetPreferences.decode(t, "memory_get_preferences", &prefs)
	if len(prefs.Preferences) != 1 || prefs.Preferences[0].ID != added.PreferenceID || len(prefs.Preferences[0].AppliesTo) != 1 ||
		prefs.Preferences[0].AppliesTo[0].Name != "Healthcare" {
		t.Errorf("read back the preference: %+v", prefs)
	}
	var conv mcp.ConversationOut
	r.GetConversation.decode(t, "memory_get_conversation", &conv)
	if len(conv.Messages) != 2 || conv.Messages[0].Content != "Find me a healthcare team" || conv.Messages[1].ID != msgs.Messages[1].MessageID {
		t.Errorf("read back the conversation: %+v", conv)
	}
	var found mcp.SearchOut
	r.Search.decode(t, "memory_search", &found)
	if len(found.Preferences) != 1 || len(found.Messages) != 1 || len(found.Entities) != 1 {
		t.Errorf("search: %+v", found)
	}

	if !r.BadConfidence.IsError || !strings.Contains(r.BadConfidence.Text, `"confidence"`) {
		t.Errorf("confidence 7: %+v", r.BadConfidence)
	}
	if !r.NoUser.IsError || !strings.Contains(r.NoUser.Text, `"user_identifier"`) {
		t.Errorf("no user: %+v", r.NoUser)
	}
	var all mcp.PreferencesOut
	r.AfterRefusals.decode(t, "memory_get_preferences", &all)
	if len(all.Preferences) != 1 {
		t.Errorf("the refused calls wrote: %+v", all)
	}

	if want := []string{mcp.ConversationTemplate, mcp.PreferencesTemplate}; !slices.Equal(r.Templates, want) {
		t.Errorf("resource templates %q", r.Templates)
	}
	var res mcp.PreferencesOut
	if err := json.Unmarshal([]byte(r.Resource.Text), &res); err != nil || r.Resource.Mime != "application/json" || len(res.Preferences) != 1 {
		t.Errorf("preferences resource %s: %+v (%v)", r.Resource.URI, r.Resource, err)
	}
	if !slices.Equal(r.Prompts, []string{mcp.PromptName}) {
		t.Errorf("prompts %q", r.Prompts)
	}
	for _, want := range []string{user, "Senior on healthcare clients", "Find me a healthcare team"} {
		if !strings.Contains(r.Prompt, want) {
			t.Errorf("prompt lacks %q:\n%s", want, r.Prompt)
		}
	}
}

// checkModern: the 2.x client's own negotiation reaches the sessionless protocol, and the
// tools work on it as on the handshake's.
func checkModern(t *testing.T, r pythonReport) {
	t.Helper()
	if r.Modern == nil {
		t.Fatal("no report of the high-level client")
	}
	t.Logf("the high-level client negotiated %s", r.Modern.Protocol)
	if r.Modern.Protocol != "2026-07-28" {
		t.Errorf("high-level client: protocol %q", r.Modern.Protocol)
	}
	var added mcp.AddPreferenceOut
	r.Modern.AddPreference.decode(t, "memory_add_preference", &added)
	var prefs mcp.PreferencesOut
	r.Modern.GetPreferences.decode(t, "memory_get_preferences", &prefs)
	if !slices.ContainsFunc(prefs.Preferences, func(p mcp.Preference) bool { return p.ID == added.PreferenceID }) || len(prefs.Preferences) != 2 {
		t.Errorf("high-level client reads back %+v, want %s among 2", prefs.Preferences, added.PreferenceID)
	}
}
