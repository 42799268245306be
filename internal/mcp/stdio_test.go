package mcp_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/mcp"
	"github.com/engram-memory/engram/internal/testenv"
)

// wantTools is the server's tool list (memory_erase_user only with MCP_ERASURE=true).
var wantTools = []string{
	"memory_add_entity", "memory_get_entity", "memory_list_entities", "memory_merge_entities",
	"memory_create_relationship", "memory_get_related_entities", "memory_add_fact", "memory_get_facts",
	"memory_get_entity_mentions", "memory_get_message_entities", "memory_get_trace_entities",
	"memory_delete_message", "memory_clear_session", "memory_delete_entity",
	"memory_add_messages", "memory_get_conversation", "memory_list_sessions", "memory_get_context",
	"memory_add_preference", "memory_get_preferences", "memory_supersede_preference", "memory_get_preference_history",
	"memory_start_trace", "memory_record_step", "memory_record_tool_call", "memory_complete_trace",
	"memory_get_trace", "memory_list_traces", "memory_get_tool_stats",
	"memory_search", "memory_search_messages", "memory_search_entities", "memory_search_preferences", "memory_search_steps",
	"memory_get_similar_traces",
	"memory_upsert_user",
}

// TestStdio runs the built server as an MCP host does (a subprocess on stdio) against the
// real stack, and drives it with the Go SDK's client: first acting for one configured user,
// then for the user each call names.
func TestStdio(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), sara, liam) })

	t.Run("one user per process", func(t *testing.T) {
		s := connectStdio(t, serverEnv(stack, "ENGRAM_USER="+sara))
		oneUser(t, stack, s, sara, liam)
	})
	t.Run("user per call", func(t *testing.T) {
		// No wait for the projector: read-your-writes across calls rests on the consistency
		// tokens the server keeps.
		s := connectStdio(t, serverEnv(stack, "MCP_APPLY_WAIT=0"))
		userPerCall(t, stack, s, sara, liam)
	})
}

func oneUser(t *testing.T, stack *testenv.Stack, s *session, sara, liam string) {
	tools := s.tools()
	if got := slices.Sorted(maps.Keys(tools)); !slices.Equal(got, slices.Sorted(slices.Values(wantTools))) {
		t.Fatalf("tools %v, want %v", got, slices.Sorted(slices.Values(wantTools)))
	}
	for name, tool := range tools {
		props, _ := schemaProps(t, tool)
		if props["user_identifier"] {
			t.Errorf("%s takes user_identifier although the process acts for one user", name)
		}
		if tool.OutputSchema == nil || tool.Description == "" || tool.Annotations == nil {
			t.Errorf("%s: output schema %v, description %q, annotations %v", name, tool.OutputSchema, tool.Description, tool.Annotations)
		}
	}

	var user mcp.UpsertUserOut
	s.call("memory_upsert_user", map[string]any{"attributes": map[string]any{"role": "manager"}}, &user)
	if user.UserID != events.UserID(sara) || user.Identifier != sara || user.Status != mcp.StatusApplied {
		t.Errorf("upsert: %+v", user)
	}

	// Messages, in order, read back.
	var added mcp.AddMessagesOut
	s.call("memory_add_messages", map[string]any{"session_id": "sara-2026-05-01", "title": "Team search", "messages": []any{
		map[string]any{"role": "user", "content": "Find me a healthcare team"},
		map[string]any{"role": "assistant", "content": "Here are three senior consultants.", "metadata": map[string]any{"model": "m-1"}},
	}}, &added)
	if len(added.Messages) != 2 || added.ConversationID != events.ConversationID(sara, "sara-2026-05-01") {
		t.Fatalf("add messages: %+v", added)
	}
	var conv mcp.ConversationOut
	s.call("memory_get_conversation", map[string]any{"session_id": "sara-2026-05-01"}, &conv)
	if len(conv.Messages) != 2 || conv.Messages[0].Content != "Find me a healthcare team" || conv.Messages[0].ID != added.Messages[0].MessageID ||
		conv.Messages[1].Role != "assistant" || conv.Messages[1].Metadata["model"] != "m-1" {
		t.Errorf("conversation: %+v", conv.Messages)
	}
	var sessions mcp.SessionsOut
	s.call("memory_list_sessions", nil, &sessions)
	if len(sessions.Conversations) != 1 || sessions.Conversations[0].SessionID != "sara-2026-05-01" ||
		sessions.Conversations[0].Title == nil || *sessions.Conversations[0].Title != "Team search" || sessions.Conversations[0].MessageCount != 2 {
		t.Errorf("sessions: %+v", sessions)
	}

	// The seed's preferences: applies_to, supersede, active only, as_of, history.
	var healthcare, junior, senior mcp.AddPreferenceOut
	s.call("memory_add_preference", map[string]any{"category": "consultants", "preference": "Senior on healthcare clients",
		"applies_to": []any{map[string]any{"name": "Healthcare", "type": "Industry"}}}, &healthcare)
	s.call("memory_add_preference", map[string]any{"category": "consultants", "preference": "Junior"}, &junior)
	s.call("memory_add_preference", map[string]any{"category": "consultants", "preference": "Senior", "confidence": 0.9}, &senior)
	if len(healthcare.AppliesTo) != 1 || healthcare.AppliesTo[0].ID != events.EntityID(sara, "Healthcare", "Industry") || healthcare.Status != mcp.StatusApplied {
		t.Errorf("add preference: %+v", healthcare)
	}
	beforeSupersede := time.Now().UTC()
	var sup mcp.SupersedeOut
	s.call("memory_supersede_preference", map[string]any{"old_id": junior.PreferenceID, "new_id": senior.PreferenceID}, &sup)
	if sup.Status != mcp.StatusApplied {
		t.Errorf("supersede: %+v", sup)
	}
	prefs := func(args map[string]any) []string {
		t.Helper()
		var out mcp.PreferencesOut
		s.call("memory_get_preferences", args, &out)
		var got []string
		for _, p := range out.Preferences {
			got = append(got, p.Text)
		}
		slices.Sort(got)
		return got
	}
	for _, tc := range []struct {
		name string
		args map[string]any
		want []string
	}{
		{"active", nil, []string{"Senior", "Senior on healthcare clients"}},
		{"applies_to", map[string]any{"applies_to": map[string]any{"name": "Healthcare", "type": "Industry"}}, []string{"Senior on healthcare clients"}},
		{"applies_to by id", map[string]any{"applies_to": map[string]any{"id": healthcare.AppliesTo[0].ID}}, []string{"Senior on healthcare clients"}},
		{"active_only false", map[string]any{"active_only": false}, []string{"Junior", "Senior", "Senior on healthcare clients"}},
		{"as_of before the supersede", map[string]any{"as_of": beforeSupersede.Format(time.RFC3339Nano), "active_only": false}, []string{"Junior", "Senior", "Senior on healthcare clients"}},
		{"as_of after the supersede", map[string]any{"as_of": time.Now().UTC().Add(time.Minute).Format(time.RFC3339Nano), "active_only": false}, []string{"Senior", "Senior on healthcare clients"}},
		{"known_at before the supersede", map[string]any{"known_at": beforeSupersede.Format(time.RFC3339Nano)}, []string{"Junior", "Senior", "Senior on healthcare clients"}},
	} {
		if got := prefs(tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("get preferences %s: %q, want %q", tc.name, got, tc.want)
		}
	}
	var history mcp.PreferencesOut
	s.call("memory_get_preference_history", nil, &history)
	if len(history.Preferences) != 3 {
		t.Errorf("history: %+v", history)
	}
	for _, p := range history.Preferences {
		if p.ID == junior.PreferenceID && (p.SupersededBy == nil || *p.SupersededBy != senior.PreferenceID || p.ValidUntil == nil) {
			t.Errorf("junior in the history: superseded_by %v, valid_until %v", p.SupersededBy, p.ValidUntil)
		}
	}
	// A supersede of a preference that does not exist is stored, then refused by the
	// projector: the tool says so.
	if msg := s.callErr("memory_supersede_preference", map[string]any{"old_id": events.NewID(), "new_id": senior.PreferenceID}); !strings.Contains(msg, "projector refused it") {
		t.Errorf("supersede of an unknown preference: %s", msg)
	}

	// A trace with a step, its tool calls, and the statistics they feed.
	var trace mcp.StartTraceOut
	s.call("memory_start_trace", map[string]any{"session_id": "sara-2026-05-01", "task": "consultant search"}, &trace)
	var step mcp.RecordStepOut
	s.call("memory_record_step", map[string]any{"trace_id": trace.TraceID, "thought": "search healthcare consultants", "action": "consultant_search",
		"tool_call": map[string]any{"tool_name": "consultant_search", "arguments": map[string]any{"industry": "Healthcare"}, "result": []any{"ann", "bo"}, "duration_ms": 12}}, &step)
	if step.StepID == "" || step.ToolCallID == "" || step.Status != mcp.StatusApplied {
		t.Errorf("record step: %+v", step)
	}
	var tc mcp.RecordToolCallOut
	s.call("memory_record_tool_call", map[string]any{"trace_id": trace.TraceID, "step_id": step.StepID, "tool_name": "consultant_search",
		"status": "timeout", "duration_ms": 30000, "error": "upstream timed out"}, &tc)
	var done mcp.CompleteTraceOut
	s.call("memory_complete_trace", map[string]any{"trace_id": trace.TraceID, "outcome": "3 consultants proposed", "success": true}, &done)
	var got mcp.Trace
	s.call("memory_get_trace", map[string]any{"trace_id": trace.TraceID}, &got)
	if got.Task != "consultant search" || got.Success == nil || !*got.Success || len(got.Steps) != 1 || len(got.Steps[0].ToolCalls) != 2 {
		t.Fatalf("trace: %+v", got)
	}
	if first := got.Steps[0].ToolCalls[0]; first.ID != step.ToolCallID || first.Arguments.(map[string]any)["industry"] != "Healthcare" || first.Status != "success" {
		t.Errorf("first tool call: %+v", first)
	}
	var traces mcp.TracesOut
	s.call("memory_list_traces", map[string]any{"session_id": "sara-2026-05-01"}, &traces)
	if len(traces.Traces) != 1 || traces.Traces[0].ID != trace.TraceID || traces.Traces[0].StepCount != 1 {
		t.Errorf("traces: %+v", traces)
	}
	var stats mcp.ToolStatsOut
	s.call("memory_get_tool_stats", nil, &stats)
	if len(stats.Tools) != 1 || stats.Tools[0].Name != "consultant_search" || stats.Tools[0].TotalCalls != 2 || stats.Tools[0].SuccessfulCalls != 1 || stats.Tools[0].FailedCalls != 1 {
		t.Errorf("tool stats: %+v", stats)
	}

	// Search over everything written above.
	var found mcp.SearchOut
	s.call("memory_search", map[string]any{"query": "healthcare", "memory_types": []any{"messages", "preferences", "entities", "steps"}}, &found)
	if len(found.Messages) != 1 || found.Messages[0].ID != added.Messages[0].MessageID ||
		len(found.Preferences) != 1 || found.Preferences[0].ID != healthcare.PreferenceID ||
		len(found.Entities) != 1 || found.Entities[0].ID != healthcare.AppliesTo[0].ID ||
		len(found.Steps) != 1 || found.Steps[0].TraceID != trace.TraceID {
		t.Errorf("search: %+v", found)
	}
	var onlyPrefs mcp.SearchOut
	s.call("memory_search", map[string]any{"query": "junior", "memory_types": []any{"preferences"}}, &onlyPrefs)
	if onlyPrefs.Messages != nil || len(onlyPrefs.Preferences) != 1 || onlyPrefs.Preferences[0].SupersededBy == nil {
		t.Errorf("search of preferences only: %+v", onlyPrefs)
	}
	var msgHits mcp.MessageHitsOut
	s.call("memory_search_messages", map[string]any{"query": "consultants", "session_id": "sara-2026-05-01"}, &msgHits)
	if len(msgHits.Messages) != 1 || msgHits.Messages[0].ID != added.Messages[1].MessageID || msgHits.Messages[0].Score <= 0 {
		t.Errorf("search messages: %+v", msgHits)
	}
	var entHits mcp.EntityHitsOut
	s.call("memory_search_entities", map[string]any{"query": "healthcare", "type": "Industry"}, &entHits)
	if len(entHits.Entities) != 1 || entHits.Entities[0].Name != "Healthcare" {
		t.Errorf("search entities: %+v", entHits)
	}
	var prefHits mcp.PreferenceHitsOut
	s.call("memory_search_preferences", map[string]any{"query": "junior"}, &prefHits)
	if len(prefHits.Preferences) != 1 || prefHits.Preferences[0].ID != junior.PreferenceID || prefHits.Preferences[0].SupersededBy == nil ||
		*prefHits.Preferences[0].SupersededBy != senior.PreferenceID || prefHits.Preferences[0].Score <= 0 {
		t.Errorf("search preferences: %+v", prefHits)
	}
	s.call("memory_search_preferences", map[string]any{"query": "senior healthcare", "category": "consultants", "limit": 1}, &prefHits)
	if len(prefHits.Preferences) != 1 || prefHits.Preferences[0].ID != healthcare.PreferenceID ||
		len(prefHits.Preferences[0].AppliesTo) != 1 || prefHits.Preferences[0].AppliesTo[0].Name != "Healthcare" {
		t.Errorf("search preferences, best of the category: %+v", prefHits)
	}
	s.call("memory_search_preferences", map[string]any{"query": "senior", "category": "food"}, &prefHits)
	if len(prefHits.Preferences) != 0 {
		t.Errorf("search preferences of another category: %+v", prefHits)
	}
	var stepHits mcp.StepHitsOut
	s.call("memory_search_steps", map[string]any{"query": "healthcare consultants", "success_only": true}, &stepHits)
	if len(stepHits.Steps) != 1 || stepHits.Steps[0].ID != step.StepID || stepHits.Steps[0].TraceID != trace.TraceID ||
		stepHits.Steps[0].Task != "consultant search" || stepHits.Steps[0].Success == nil || !*stepHits.Steps[0].Success ||
		stepHits.Steps[0].SessionID != "sara-2026-05-01" || len(stepHits.Steps[0].ToolCalls) != 2 || stepHits.Steps[0].Score <= 0 {
		t.Errorf("search steps: %+v", stepHits)
	}
	s.call("memory_search_steps", map[string]any{"query": "fintech"}, &stepHits)
	if len(stepHits.Steps) != 0 {
		t.Errorf("search steps for a word of no step: %+v", stepHits)
	}

	// Everything at once, as a session starts.
	var ctx mcp.ContextOut
	s.call("memory_get_context", map[string]any{"session_id": "sara-2026-05-01"}, &ctx)
	if ctx.User == nil || ctx.User.Attributes["role"] != "manager" || len(ctx.Preferences) != 2 || len(ctx.Messages) != 2 ||
		ctx.Messages[0].Content != "Find me a healthcare team" || len(ctx.Conversations) != 1 || len(ctx.Traces) != 1 {
		t.Errorf("context: %+v", ctx)
	}

	// Resources: the configured user's preferences are listed; the conversation by template.
	var listed []string
	for r, err := range s.cs.Resources(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, r.URI)
	}
	if !slices.Equal(listed, []string{mcp.PreferencesURI(sara)}) {
		t.Errorf("resources %q", listed)
	}
	var templates []string
	for r, err := range s.cs.ResourceTemplates(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		templates = append(templates, r.URITemplate)
	}
	slices.Sort(templates)
	if !slices.Equal(templates, []string{mcp.ConversationTemplate, mcp.PreferencesTemplate}) {
		t.Errorf("resource templates %q", templates)
	}
	var resPrefs mcp.PreferencesOut
	readResource(t, s, mcp.PreferencesURI(sara), &resPrefs)
	if len(resPrefs.Preferences) != 2 {
		t.Errorf("preferences resource: %+v", resPrefs)
	}
	var resConv mcp.ConversationOut
	readResource(t, s, mcp.ConversationURI(sara, "sara-2026-05-01"), &resConv)
	if len(resConv.Messages) != 2 || resConv.Messages[1].Content != "Here are three senior consultants." {
		t.Errorf("conversation resource: %+v", resConv)
	}
	if _, err := s.cs.ReadResource(t.Context(), &sdk.ReadResourceParams{URI: mcp.PreferencesURI(liam)}); err == nil || !strings.Contains(err.Error(), "one configured user") {
		t.Errorf("another user's preferences resource: %v", err)
	}

	// The prompt loads the memory into the session.
	pr, err := s.cs.GetPrompt(t.Context(), &sdk.GetPromptParams{Name: mcp.PromptName, Arguments: map[string]string{"session_id": "sara-2026-05-01"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Messages) != 1 {
		t.Fatalf("prompt messages: %+v", pr.Messages)
	}
	body := pr.Messages[0].Content.(*sdk.TextContent).Text
	for _, want := range []string{sara, "Senior on healthcare clients", "applies to Healthcare (Industry)", "Find me a healthcare team", `"role":"manager"`, "consultant search"} {
		if !strings.Contains(body, want) {
			t.Errorf("prompt lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "[consultants] Junior") {
		t.Errorf("prompt lists the superseded preference:\n%s", body)
	}

	// Refused calls name the argument and write nothing.
	before := storedEvents(t, stack)
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"memory_add_preference", map[string]any{"category": "c", "preference": "p", "user_identifier": liam}, `"user_identifier"`},
		{"memory_add_preference", map[string]any{"category": "c", "preference": "p", "confidence": 2}, `"confidence"`},
		{"memory_add_preference", map[string]any{"category": "c"}, `"preference"`},
		{"memory_add_preference", map[string]any{"category": "c", "preference": "p", "valid_from": "yesterday"}, `"valid_from"`},
		{"memory_add_preference", map[string]any{"category": "c", "preference": "p", "metadata": manyMembers(257)}, `"metadata"`},
		{"memory_add_messages", map[string]any{"session_id": "s-bad", "messages": []any{
			map[string]any{"role": "user", "content": "fine"}, map[string]any{"role": "narrator", "content": "not a role"}}}, `"messages[].role"`},
		{"memory_add_messages", map[string]any{"session_id": "s-bad", "messages": []any{
			map[string]any{"role": "user", "content": "fine"}, map[string]any{"role": "user", "content": "x", "timestamp": "2026-13-01T00:00:00Z"}}}, `"messages[1].timestamp"`},
		{"memory_add_messages", map[string]any{"session_id": " s-bad", "messages": []any{map[string]any{"role": "user", "content": "x"}}}, `"session_id"`},
		{"memory_add_messages", map[string]any{"session_id": "s-bad", "messages": []any{}}, `"messages"`},
		{"memory_record_step", map[string]any{"trace_id": trace.TraceID, "thought": "t", "tool_call": map[string]any{"tool_name": "x", "status": "maybe"}}, `"tool_call.status"`},
		// Refused by the command's validation, not the schema: the step is not stored either.
		{"memory_record_step", map[string]any{"trace_id": trace.TraceID, "thought": "t", "tool_call": map[string]any{"tool_name": "x", "error": strings.Repeat("e", 65537)}}, `"tool_call.error"`},
		{"memory_get_preferences", map[string]any{"applies_to": map[string]any{"id": healthcare.AppliesTo[0].ID, "name": "Healthcare"}}, `"applies_to"`},
		{"memory_search", map[string]any{"query": "x", "memory_types": []any{"messages"}, "category": "c"}, `"category"`},
		{"memory_search", map[string]any{"query": "*"}, `"query"`},
		{"memory_search_preferences", map[string]any{"query": "*"}, `"query"`},
		{"memory_search_preferences", map[string]any{"query": "x", "session_id": "s"}, `"session_id": not an argument`},
		{"memory_search_steps", map[string]any{"query": "x", "limit": 0}, `"limit"`},
		{"memory_search_steps", map[string]any{"query": "x", "success_only": "yes"}, `"success_only"`},
		// Search by meaning on a stack without an embedder (TestVectorSearch has one).
		{"memory_search_messages", map[string]any{"query": "healthcare", "mode": "vector"}, `"mode": vector: Engram has no embedder`},
		{"memory_search", map[string]any{"query": "healthcare", "mode": "vector", "threshold": 0.5}, `"mode": vector: Engram has no embedder`},
		{"memory_get_similar_traces", map[string]any{"task": "consultant search"}, "Engram has no embedder"},
		{"memory_search_preferences", map[string]any{"query": "junior", "threshold": 0.5}, `"threshold": only with mode vector`},
		{"memory_get_trace", map[string]any{"trace_id": events.NewID()}, "not found"},
		{"memory_upsert_user", map[string]any{"attributes": map[string]any{"a": 1}, "clear_attributes": true}, `"clear_attributes"`},
	} {
		if msg := s.callErr(tc.tool, tc.args); !strings.Contains(msg, tc.want) {
			t.Errorf("%s(%v): %q, want it to name %s", tc.tool, tc.args, msg, tc.want)
		}
	}
	if after := storedEvents(t, stack); after != before {
		t.Errorf("refused calls stored %d events", after-before)
	}
	var none mcp.ConversationOut
	s.call("memory_get_conversation", map[string]any{"session_id": "s-bad"}, &none)
	if len(none.Messages) != 0 {
		t.Errorf("a refused memory_add_messages stored %+v", none.Messages)
	}

	// Entities, a relationship and facts: written, then read back by id, by name and by the
	// relationship.
	var acme mcp.AddEntityOut
	s.call("memory_add_entity", map[string]any{"name": "Acme", "type": "ORGANIZATION", "description": "the user's employer",
		"aliases": []any{"Acme Corp"}, "attributes": map[string]any{"size": 40}}, &acme)
	if acme.ID != events.EntityID(sara, "Acme", "ORGANIZATION") || acme.Status != mcp.StatusApplied {
		t.Errorf("add entity: %+v", acme)
	}
	var byName mcp.EntityOut
	s.call("memory_get_entity", map[string]any{"name": "Acme Corp"}, &byName)
	if byName.ID != acme.ID || byName.Description == nil || *byName.Description != "the user's employer" || byName.Attributes["size"] != 40.0 {
		t.Errorf("entity by alias: %+v", byName)
	}
	var rel mcp.RelateOut
	s.call("memory_create_relationship", map[string]any{"source": map[string]any{"name": "Sara", "type": "PERSON"},
		"target": map[string]any{"id": acme.ID}, "relationship_type": "WORKS_AT"}, &rel)
	if rel.TargetID != acme.ID || rel.SourceID != events.EntityID(sara, "Sara", "PERSON") || rel.Status != mcp.StatusApplied {
		t.Errorf("relationship: %+v", rel)
	}
	var near mcp.RelatedOut
	s.call("memory_get_related_entities", map[string]any{"entity_id": rel.SourceID}, &near)
	if len(near.Related) != 1 || near.Related[0].Entity.ID != acme.ID || near.Related[0].RelationshipType != "WORKS_AT" || near.Related[0].Depth != 1 {
		t.Errorf("related: %+v", near)
	}
	var fact mcp.AddFactOut
	s.call("memory_add_fact", map[string]any{"subject": "Sara", "predicate": "works_at", "object": "Acme"}, &fact)
	var facts mcp.FactsOut
	s.call("memory_get_facts", map[string]any{"subject": "Sara"}, &facts)
	if fact.Status != mcp.StatusApplied || len(facts.Facts) != 1 || facts.Facts[0].ID != fact.FactID || facts.Facts[0].Object != "Acme" {
		t.Errorf("facts: %+v, %+v", fact, facts)
	}
	// A subject as long as Engram takes (1024 characters, more than a name's 256).
	long := strings.Repeat("s", 1024)
	s.call("memory_add_fact", map[string]any{"subject": long, "predicate": "is", "object": "long"}, &fact)
	s.call("memory_get_facts", map[string]any{"subject": long}, &facts)
	if fact.Status != mcp.StatusApplied || len(facts.Facts) != 1 || facts.Facts[0].ID != fact.FactID {
		t.Errorf("a fact of a long subject: %+v, %+v", fact, facts)
	}
	if msg := s.callErr("memory_get_entity", map[string]any{"entity_id": acme.ID, "name": "Acme"}); !strings.Contains(msg, "entity_id") {
		t.Errorf("entity by id and name: %q, want it to name entity_id", msg)
	}
	entityOptions(t, stack, s, rel.SourceID, acme.ID)
	mentionsAndMerges(t, stack, s, acme.ID, added.Messages[0].MessageID, added.Messages[1].MessageID, trace.TraceID)

	// Deletions: a message leaves its conversation (the others keep their order), a cleared
	// session is gone with its messages, a deleted entity no longer filters preferences; a
	// deletion of what is not there is no error.
	var three mcp.AddMessagesOut
	s.call("memory_add_messages", map[string]any{"session_id": "sara-forget", "messages": []any{
		map[string]any{"role": "user", "content": "first"}, map[string]any{"role": "assistant", "content": "second"},
		map[string]any{"role": "user", "content": "third"}}}, &three)
	var del mcp.DeletedOut
	s.call("memory_delete_message", map[string]any{"message_id": three.Messages[1].MessageID}, &del)
	if del.Status != mcp.StatusApplied || del.EventID == "" {
		t.Errorf("delete message: %+v", del)
	}
	var left mcp.ConversationOut
	s.call("memory_get_conversation", map[string]any{"session_id": "sara-forget"}, &left)
	if len(left.Messages) != 2 || left.Messages[0].Content != "first" || left.Messages[1].Content != "third" {
		t.Errorf("conversation after the deletion: %+v", left.Messages)
	}
	s.call("memory_delete_message", map[string]any{"message_id": events.NewID()}, &del)
	if del.Status != mcp.StatusApplied {
		t.Errorf("deleting a message that is not there: %+v", del)
	}
	s.call("memory_clear_session", map[string]any{"session_id": "sara-forget"}, &del)
	s.call("memory_get_conversation", map[string]any{"session_id": "sara-forget"}, &left)
	var remaining mcp.SessionsOut
	s.call("memory_list_sessions", nil, &remaining)
	if len(left.Messages) != 0 || slices.ContainsFunc(remaining.Conversations, func(c mcp.Conversation) bool { return c.SessionID == "sara-forget" }) {
		t.Errorf("after clearing the session: messages %+v, sessions %+v", left.Messages, remaining.Conversations)
	}
	s.call("memory_delete_entity", map[string]any{"entity_id": healthcare.AppliesTo[0].ID}, &del)
	var filtered mcp.PreferencesOut
	s.call("memory_get_preferences", map[string]any{"applies_to": map[string]any{"id": healthcare.AppliesTo[0].ID}}, &filtered)
	var hits mcp.EntityHitsOut
	s.call("memory_search_entities", map[string]any{"query": "Healthcare"}, &hits)
	if del.Status != mcp.StatusApplied || len(filtered.Preferences) != 0 || len(hits.Entities) != 0 {
		t.Errorf("after deleting the entity: %+v, preferences %+v, search %+v", del, filtered.Preferences, hits.Entities)
	}
}

func userPerCall(t *testing.T, stack *testenv.Stack, s *session, sara, liam string) {
	tools := s.tools()
	for _, name := range wantTools {
		props, required := schemaProps(t, tools[name])
		if !props["user_identifier"] || !required["user_identifier"] {
			t.Errorf("%s: user_identifier not a required argument under the multi-tenant guardrail", name)
		}
	}
	before := storedEvents(t, stack)
	if msg := s.callErr("memory_add_preference", map[string]any{"category": "c", "preference": "p"}); !strings.Contains(msg, `"user_identifier"`) {
		t.Errorf("write without a user: %s", msg)
	}
	if msg := s.callErr("memory_add_preference", map[string]any{"user_identifier": liam + " ", "category": "c", "preference": "p"}); !strings.Contains(msg, `"user_identifier"`) {
		t.Errorf("write for an invalid identifier: %s", msg)
	}
	if after := storedEvents(t, stack); after != before {
		t.Errorf("refused writes stored %d events", after-before)
	}

	var p mcp.AddPreferenceOut
	s.call("memory_add_preference", map[string]any{"user_identifier": liam, "category": "industries", "preference": "Fintech"}, &p)
	if p.Status != mcp.StatusStored || p.Sequence == 0 {
		t.Errorf("with MCP_APPLY_WAIT=0 the write answers stored: %+v", p)
	}
	// Read right after the write, in another call: the server's consistency token makes the
	// read wait for it.
	var liamPrefs, saraPrefs mcp.PreferencesOut
	s.call("memory_get_preferences", map[string]any{"user_identifier": liam}, &liamPrefs)
	if len(liamPrefs.Preferences) != 1 || liamPrefs.Preferences[0].ID != p.PreferenceID {
		t.Errorf("liam's preferences: %+v", liamPrefs)
	}
	s.call("memory_get_preferences", map[string]any{"user_identifier": sara, "active_only": false}, &saraPrefs)
	for _, sp := range saraPrefs.Preferences {
		if sp.ID == p.PreferenceID {
			t.Errorf("sara sees liam's preference")
		}
	}
	if len(saraPrefs.Preferences) != 3 {
		t.Errorf("sara's preferences (written by the other process): %d", len(saraPrefs.Preferences))
	}
	var liamConv mcp.ConversationOut
	s.call("memory_get_conversation", map[string]any{"user_identifier": liam, "session_id": "sara-2026-05-01"}, &liamConv)
	if len(liamConv.Messages) != 0 {
		t.Errorf("liam reads sara's session: %+v", liamConv.Messages)
	}
	var resConv mcp.ConversationOut
	readResource(t, s, mcp.ConversationURI(sara, "sara-2026-05-01"), &resConv)
	if len(resConv.Messages) != 2 {
		t.Errorf("sara's conversation resource: %+v", resConv)
	}

	// Sara's entities, messages and traces are not Liam's: reads do not find them, a merge
	// is refused by the projector, and Sara's entity stays as it was.
	acme := events.EntityID(sara, "Acme", "ORGANIZATION")
	var saraMentions mcp.EntityMentionsOut
	s.call("memory_get_entity_mentions", map[string]any{"user_identifier": sara, "entity_id": acme}, &saraMentions)
	if len(saraMentions.Messages) != 2 || len(saraMentions.Traces) != 1 {
		t.Fatalf("sara's mentions of acme: %+v", saraMentions)
	}
	for _, tc := range []struct {
		tool string
		args map[string]any
	}{
		{"memory_get_entity_mentions", map[string]any{"user_identifier": liam, "entity_id": acme}},
		{"memory_get_message_entities", map[string]any{"user_identifier": liam, "message_id": saraMentions.Messages[0].ID}},
		{"memory_get_trace_entities", map[string]any{"user_identifier": liam, "trace_id": saraMentions.Traces[0].ID}},
	} {
		if msg := s.callErr(tc.tool, tc.args); !strings.Contains(msg, "not found") {
			t.Errorf("%s of sara's for liam: %s", tc.tool, msg)
		}
	}
	var liamOrg mcp.AddEntityOut
	s.call("memory_add_entity", map[string]any{"user_identifier": liam, "name": "Globex", "type": "ORGANIZATION"}, &liamOrg)
	var liamMerge mcp.MergeEntitiesOut
	s.call("memory_merge_entities", map[string]any{"user_identifier": liam, "source_id": acme, "target_id": liamOrg.ID}, &liamMerge)
	if liamMerge.Status != mcp.StatusStored {
		t.Errorf("with MCP_APPLY_WAIT=0 the merge answers stored: %+v", liamMerge)
	}
	var liamOrgs, saraOrgs mcp.EntitiesOut
	s.call("memory_list_entities", map[string]any{"user_identifier": liam}, &liamOrgs)
	s.call("memory_list_entities", map[string]any{"user_identifier": sara, "type": "ORGANIZATION"}, &saraOrgs)
	if len(liamOrgs.Entities) != 1 || liamOrgs.Entities[0].ID != liamOrg.ID || len(liamOrgs.Entities[0].MergedIDs) != 0 ||
		len(saraOrgs.Entities) != 1 || saraOrgs.Entities[0].ID != acme {
		t.Errorf("after liam's merge of sara's entity: liam's %+v, sara's %+v", liamOrgs, saraOrgs)
	}
	var prefHits mcp.PreferenceHitsOut
	s.call("memory_search_preferences", map[string]any{"user_identifier": liam, "query": "senior"}, &prefHits)
	var stepHits mcp.StepHitsOut
	s.call("memory_search_steps", map[string]any{"user_identifier": liam, "query": "healthcare"}, &stepHits)
	if len(prefHits.Preferences) != 0 || len(stepHits.Steps) != 0 {
		t.Errorf("liam's searches find sara's: %+v, %+v", prefHits, stepHits)
	}
	if _, err := s.cs.GetPrompt(t.Context(), &sdk.GetPromptParams{Name: mcp.PromptName}); err == nil || !strings.Contains(err.Error(), "user_identifier") {
		t.Errorf("prompt without a user: %v", err)
	}
}

// entityOptions: what the entity, relationship and fact tools take beyond their names (a
// confidence, validity, attributes and metadata) is kept and read back; the related walk
// follows relationship_types and direction, and says when limit cut it.
func entityOptions(t *testing.T, stack *testenv.Stack, s *session, saraID, acmeID string) {
	t.Helper()
	var berlin mcp.AddEntityOut
	s.call("memory_add_entity", map[string]any{"name": "Berlin", "type": "LOCATION", "confidence": 0.5}, &berlin)
	var got mcp.EntityOut
	s.call("memory_get_entity", map[string]any{"entity_id": berlin.ID}, &got)
	if berlin.Status != mcp.StatusApplied || got.Confidence != 0.5 || got.Name != "Berlin" {
		t.Errorf("entity with a confidence: %+v, %+v", berlin, got)
	}
	var rel mcp.RelateOut
	s.call("memory_create_relationship", map[string]any{"source": map[string]any{"id": acmeID}, "target": map[string]any{"id": berlin.ID},
		"relationship_type": "LOCATED_IN", "description": "head office", "confidence": 0.75, "valid_from": "2020-01-01T00:00:00Z",
		"valid_until": "2030-01-01T00:00:00Z", "attributes": map[string]any{"floor": 3}}, &rel)
	if rel.Status != mcp.StatusApplied || rel.SourceID != acmeID || rel.TargetID != berlin.ID {
		t.Fatalf("relationship with its details: %+v", rel)
	}
	related := func(args map[string]any) mcp.RelatedOut {
		t.Helper()
		var out mcp.RelatedOut
		s.call("memory_get_related_entities", args, &out)
		return out
	}
	two := related(map[string]any{"entity_id": saraID, "depth": 2})
	if len(two.Related) != 2 || two.Truncated || two.Related[0].Entity.ID != acmeID || two.Related[0].Relationship.Direction != "out" ||
		two.Related[1].Entity.ID != berlin.ID || two.Related[1].Depth != 2 || two.Related[1].RelationshipType != "LOCATED_IN" {
		t.Fatalf("two hops from sara: %+v", two)
	}
	if r := two.Related[1].Relationship; r.ID != rel.RelationshipID || r.Type != "LOCATED_IN" || r.Direction != "out" || r.SourceID != acmeID ||
		r.TargetID != berlin.ID || r.Description == nil || *r.Description != "head office" || r.Confidence != 0.75 ||
		r.ValidFrom == nil || !r.ValidFrom.Equal(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) || r.ValidUntil == nil || r.Attributes["floor"] != 3.0 {
		t.Errorf("the relationship that reached berlin: %+v", r)
	}
	if r := related(map[string]any{"entity_id": saraID, "depth": 2, "relationship_types": []any{"WORKS_AT"}}); len(r.Related) != 1 || r.Related[0].Entity.ID != acmeID {
		t.Errorf("two hops of WORKS_AT: %+v", r)
	}
	if r := related(map[string]any{"entity_id": saraID, "depth": 2, "limit": 1}); len(r.Related) != 1 || !r.Truncated {
		t.Errorf("two hops, one entity: %+v", r)
	}
	if r := related(map[string]any{"entity_id": acmeID, "direction": "in"}); len(r.Related) != 1 || r.Related[0].Entity.ID != saraID ||
		r.Related[0].Relationship.Direction != "in" || r.Related[0].RelationshipType != "WORKS_AT" {
		t.Errorf("into acme: %+v", r)
	}
	if r := related(map[string]any{"entity_id": saraID, "direction": "in"}); len(r.Related) != 0 {
		t.Errorf("into sara: %+v", r)
	}

	beforeFact := time.Now().UTC()
	var fact mcp.AddFactOut
	s.call("memory_add_fact", map[string]any{"subject": "Acme", "predicate": "founded_in", "object": "1998", "confidence": 0.6,
		"valid_from": "1998-01-01T00:00:00Z", "valid_until": "2100-01-01T00:00:00Z", "metadata": map[string]any{"source": "crm"}}, &fact)
	var facts mcp.FactsOut
	s.call("memory_get_facts", map[string]any{"subject": "Acme"}, &facts)
	if fact.Status != mcp.StatusApplied || len(facts.Facts) != 1 {
		t.Fatalf("fact with its details: %+v, %+v", fact, facts)
	}
	if f := facts.Facts[0]; f.ID != fact.FactID || f.Confidence != 0.6 || f.ValidUntil == nil || !f.ValidUntil.Equal(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		f.Metadata["source"] != "crm" || f.RecordedAt == nil || f.RecordedAt.Before(beforeFact.Add(-time.Minute)) {
		t.Errorf("the fact read back: %+v", f)
	}
	s.call("memory_get_facts", map[string]any{"subject": "Acme", "known_at": beforeFact.Add(-time.Hour).Format(time.RFC3339Nano)}, &facts)
	if len(facts.Facts) != 0 {
		t.Errorf("facts known an hour before they were written: %+v", facts)
	}
	s.call("memory_get_facts", map[string]any{"subject": "Acme", "as_of": "1990-01-01T00:00:00Z"}, &facts)
	if len(facts.Facts) != 0 {
		t.Errorf("facts valid before they held: %+v", facts)
	}

	before := storedEvents(t, stack)
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"memory_add_entity", map[string]any{"name": "X", "type": "T", "confidence": 1.5}, `invalid argument "confidence"`},
		{"memory_create_relationship", map[string]any{"source": map[string]any{"id": acmeID}, "target": map[string]any{"id": berlin.ID},
			"relationship_type": "R", "valid_from": "2030-01-01T00:00:00Z", "valid_until": "2020-01-01T00:00:00Z"}, `invalid argument "valid_until": must be after valid_from`},
		{"memory_create_relationship", map[string]any{"source": map[string]any{"id": acmeID}, "target": map[string]any{"id": berlin.ID},
			"relationship_type": "R", "valid_from": "soon"}, `invalid argument "valid_from"`},
		{"memory_add_fact", map[string]any{"subject": "s", "predicate": "p", "object": "o", "valid_from": "2030-01-01T00:00:00Z",
			"valid_until": "2020-01-01T00:00:00Z"}, `invalid argument "valid_until": must be after valid_from`},
		{"memory_add_fact", map[string]any{"subject": "s", "predicate": "p", "object": "o", "confidence": -0.1}, `invalid argument "confidence"`},
		{"memory_get_facts", map[string]any{"known_at": "yesterday"}, `invalid argument "known_at"`},
		{"memory_get_related_entities", map[string]any{"entity_id": saraID, "direction": "sideways"}, `invalid argument "direction"`},
		{"memory_get_related_entities", map[string]any{"entity_id": saraID, "relationship_types": []any{""}}, `invalid argument "relationship_types[]"`},
	} {
		if msg := s.callErr(tc.tool, tc.args); !strings.Contains(msg, tc.want) {
			t.Errorf("%s(%v): %q, want %q", tc.tool, tc.args, msg, tc.want)
		}
	}
	if after := storedEvents(t, stack); after != before {
		t.Errorf("refused calls stored %d events", after-before)
	}
}

// mentionsAndMerges: entities recorded as mentioned by messages and a trace, read from both
// ends; listed by name and paged; a duplicate merged into acme, whose mentions, names and id
// then read as acme's; and the refusals of these tools, each naming what is wrong.
func mentionsAndMerges(t *testing.T, stack *testenv.Stack, s *session, acmeID, msg0, msg1, traceID string) {
	t.Helper()
	var dup, again mcp.AddEntityOut
	s.call("memory_add_entity", map[string]any{"name": "Acme Corporation", "type": "ORGANIZATION", "aliases": []any{"ACME Inc"},
		"message_ids": []any{msg0}, "trace_ids": []any{traceID}}, &dup)
	s.call("memory_add_entity", map[string]any{"name": "Acme", "type": "ORGANIZATION", "message_ids": []any{msg1}}, &again)
	if dup.Status != mcp.StatusApplied || again.ID != acmeID || again.Status != mcp.StatusApplied {
		t.Fatalf("add entities with mentions: %+v, %+v", dup, again)
	}
	names := func(es []mcp.EntityOut) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	var inMsg mcp.MessageEntitiesOut
	s.call("memory_get_message_entities", map[string]any{"message_id": msg0}, &inMsg)
	if inMsg.MessageID != msg0 || !slices.Equal(names(inMsg.Entities), []string{"Acme Corporation"}) || inMsg.Truncated ||
		!slices.Equal(inMsg.Entities[0].Aliases, []string{"ACME Inc"}) {
		t.Errorf("entities of message 0: %+v", inMsg)
	}
	var inTrace mcp.TraceEntitiesOut
	s.call("memory_get_trace_entities", map[string]any{"trace_id": traceID}, &inTrace)
	if inTrace.TraceID != traceID || !slices.Equal(names(inTrace.Entities), []string{"Acme Corporation"}) {
		t.Errorf("entities of the trace: %+v", inTrace)
	}
	var mentions mcp.EntityMentionsOut
	s.call("memory_get_entity_mentions", map[string]any{"entity_id": dup.ID}, &mentions)
	if mentions.EntityID != dup.ID || mentions.ResolvedFrom != nil || len(mentions.Messages) != 1 || mentions.Messages[0].ID != msg0 ||
		mentions.Messages[0].SessionID != "sara-2026-05-01" || len(mentions.Traces) != 1 || mentions.Traces[0].ID != traceID ||
		mentions.Traces[0].Task != "consultant search" || mentions.Truncated {
		t.Errorf("mentions of the duplicate: %+v", mentions)
	}

	// Listed by name, paged.
	var orgs, page1, page2, byAlias mcp.EntitiesOut
	s.call("memory_list_entities", map[string]any{"type": "ORGANIZATION"}, &orgs)
	if !slices.Equal(names(orgs.Entities), []string{"Acme", "Acme Corporation"}) || orgs.NextCursor != "" {
		t.Errorf("organizations: %+v", orgs)
	}
	s.call("memory_list_entities", map[string]any{"type": "ORGANIZATION", "limit": 1}, &page1)
	if !slices.Equal(names(page1.Entities), []string{"Acme"}) || page1.NextCursor == "" {
		t.Fatalf("first page: %+v", page1)
	}
	s.call("memory_list_entities", map[string]any{"type": "ORGANIZATION", "limit": 1, "cursor": page1.NextCursor}, &page2)
	if !slices.Equal(names(page2.Entities), []string{"Acme Corporation"}) || page2.NextCursor != "" {
		t.Errorf("second page: %+v", page2)
	}
	s.call("memory_list_entities", map[string]any{"name": "ACME Inc"}, &byAlias)
	if len(byAlias.Entities) != 1 || byAlias.Entities[0].ID != dup.ID {
		t.Errorf("entities by alias: %+v", byAlias)
	}

	// The duplicate merged into acme: its mentions, names and id are acme's now.
	var merged mcp.MergeEntitiesOut
	s.call("memory_merge_entities", map[string]any{"source_id": dup.ID, "target_id": acmeID}, &merged)
	if merged.SourceID != dup.ID || merged.TargetID != acmeID || merged.Status != mcp.StatusApplied || merged.EventID == "" || merged.Sequence == 0 {
		t.Errorf("merge: %+v", merged)
	}
	s.call("memory_get_entity_mentions", map[string]any{"entity_id": dup.ID}, &mentions)
	var msgIDs []string
	for _, m := range mentions.Messages {
		msgIDs = append(msgIDs, m.ID)
	}
	if mentions.EntityID != acmeID || mentions.ResolvedFrom == nil || *mentions.ResolvedFrom != dup.ID ||
		!slices.Equal(msgIDs, []string{msg1, msg0}) || len(mentions.Traces) != 1 || mentions.Truncated {
		t.Errorf("mentions through the merged id (messages %v, newest first): %+v", msgIDs, mentions)
	}
	s.call("memory_get_entity_mentions", map[string]any{"entity_id": acmeID, "limit": 1}, &mentions)
	if len(mentions.Messages) != 1 || mentions.Messages[0].ID != msg1 || !mentions.Truncated {
		t.Errorf("mentions, one of each: %+v", mentions)
	}
	var survivor mcp.EntityOut
	s.call("memory_get_entity", map[string]any{"entity_id": dup.ID}, &survivor)
	if survivor.ID != acmeID || !slices.Contains(survivor.Aliases, "Acme Corporation") || !slices.Contains(survivor.Aliases, "ACME Inc") ||
		!slices.Equal(survivor.MergedIDs, []string{dup.ID}) {
		t.Errorf("the merged id reads as its survivor: %+v", survivor)
	}
	s.call("memory_get_message_entities", map[string]any{"message_id": msg0}, &inMsg)
	if len(inMsg.Entities) != 1 || inMsg.Entities[0].ID != acmeID {
		t.Errorf("entities of message 0 after the merge: %+v", inMsg)
	}
	s.call("memory_list_entities", map[string]any{"type": "ORGANIZATION"}, &orgs)
	if !slices.Equal(names(orgs.Entities), []string{"Acme"}) {
		t.Errorf("organizations after the merge: %+v", orgs)
	}
	// Merging again changes nothing and is no error.
	s.call("memory_merge_entities", map[string]any{"source_id": dup.ID, "target_id": acmeID}, &merged)
	if merged.Status != mcp.StatusApplied {
		t.Errorf("merge again: %+v", merged)
	}

	// Refusals before anything is sent: the argument is named and the log is unchanged.
	before := storedEvents(t, stack)
	unknown := events.NewID()
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"memory_merge_entities", map[string]any{"source_id": acmeID, "target_id": acmeID}, `invalid argument "target_id": must differ from source_id`},
		{"memory_merge_entities", map[string]any{"source_id": "acme", "target_id": acmeID}, `invalid argument "source_id"`},
		{"memory_merge_entities", map[string]any{"source_id": dup.ID}, `invalid argument "target_id": required`},
		{"memory_add_entity", map[string]any{"name": "X", "type": "T", "message_ids": []any{"m-1"}}, `invalid argument "message_ids[]"`},
		{"memory_add_entity", map[string]any{"name": "X", "type": "T", "trace_ids": []any{"01A2320C-7CA5-7447-8BB8-8C4E68040D11"}}, `invalid argument "trace_ids[0]"`},
		{"memory_list_entities", map[string]any{"limit": 1001}, `invalid argument "limit"`},
		{"memory_list_entities", map[string]any{"cursor": "not-a-cursor"}, `invalid argument "cursor"`},
		{"memory_get_entity_mentions", map[string]any{"entity_id": "acme"}, `invalid argument "entity_id"`},
		{"memory_get_message_entities", map[string]any{}, `invalid argument "message_id": required`},
		{"memory_get_trace_entities", map[string]any{"trace_id": traceID, "limit": 0}, `invalid argument "limit"`},
		// Unknown ids: Engram's 404, naming what it did not find.
		{"memory_get_entity_mentions", map[string]any{"entity_id": unknown}, `entity "` + unknown + `" not found`},
		{"memory_get_message_entities", map[string]any{"message_id": unknown}, `message "` + unknown + `" not found`},
		{"memory_get_trace_entities", map[string]any{"trace_id": unknown}, `trace "` + unknown + `" not found`},
	} {
		if msg := s.callErr(tc.tool, tc.args); !strings.Contains(msg, tc.want) {
			t.Errorf("%s(%v): %q, want %q", tc.tool, tc.args, msg, tc.want)
		}
	}
	if after := storedEvents(t, stack); after != before {
		t.Errorf("refused calls stored %d events", after-before)
	}
	// Writes naming what the user does not have are stored, then refused by the projector:
	// the tool says so, naming the ids, and nothing is applied.
	if msg := s.callErr("memory_merge_entities", map[string]any{"source_id": unknown, "target_id": acmeID}); !strings.Contains(msg, "projector refused it (missing_reference)") ||
		!strings.Contains(msg, unknown) {
		t.Errorf("merge of an unknown entity: %s", msg)
	}
	var other mcp.AddEntityOut
	s.call("memory_add_entity", map[string]any{"name": "Initech", "type": "COMPANY"}, &other)
	if msg := s.callErr("memory_merge_entities", map[string]any{"source_id": dup.ID, "target_id": other.ID}); !strings.Contains(msg, "projector refused it (conflict)") ||
		!strings.Contains(msg, "already merged") {
		t.Errorf("merge of an entity merged into another already: %s", msg)
	}
	if msg := s.callErr("memory_add_entity", map[string]any{"name": "Ghost", "type": "PERSON", "message_ids": []any{unknown}}); !strings.Contains(msg, "projector refused it (missing_reference)") {
		t.Errorf("an entity mentioned by an unknown message: %s", msg)
	}
	if msg := s.callErr("memory_get_entity", map[string]any{"name": "Ghost", "type": "PERSON"}); !strings.Contains(msg, "not found") {
		t.Errorf("the refused entity: %s", msg)
	}
}

func manyMembers(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[fmt.Sprint("k", i)] = i
	}
	return m
}

func readResource(t *testing.T, s *session, uri string, out any) {
	t.Helper()
	res, err := s.cs.ReadResource(t.Context(), &sdk.ReadResourceParams{URI: uri})
	if err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	if len(res.Contents) != 1 || res.Contents[0].MIMEType != "application/json" {
		t.Fatalf("read %s: %+v", uri, res.Contents)
	}
	if err := json.Unmarshal([]byte(res.Contents[0].Text), out); err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
}
