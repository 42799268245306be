package mcp

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
)

// The kinds memory_search searches.
const (
	kindMessages    = "messages"
	kindPreferences = "preferences"
	kindEntities    = "entities"
	kindSteps       = "steps"
)

// defaultKinds are what memory_search searches without memory_types, as the library's
// memory_search does.
var defaultKinds = []string{kindMessages, kindPreferences, kindEntities}

// The modes of a search (docs/query.md, "Vector search").
const (
	modeText   = "text"
	modeVector = "vector"
)

// ModeArgs are the arguments that choose how a search compares: by the words (full text, the
// default) or by meaning (query embedded by Engram's embedder and compared with the vectors
// of the user's memories, which the ingestor's embedder computed when they were written).
type ModeArgs struct {
	Mode      string  `json:"mode,omitempty" jsonschema:"text (default): the words of query, matched whole and case-insensitively; vector: by meaning, query embedded by Engram's embedder and compared with the memories' vectors, nearest first: for when the memory may be worded differently (needs an embedder on Engram's side)"`
	Threshold float64 `json:"threshold,omitempty" jsonschema:"mode vector only: the lowest score kept, 0 to 1 (default 0: every memory with a vector is ranked); raise it to keep only close matches"`
}

// apply sets the mode of q. A threshold of a full-text search is refused: its scores have no
// fixed scale.
func (a ModeArgs) apply(q *client.SearchQuery) error {
	switch a.Mode {
	case "", modeText:
		if a.Threshold != 0 {
			return &ArgError{Arg: "threshold", Reason: "only with mode vector: full-text scores have no fixed scale"}
		}
	case modeVector:
		q.ByVector, q.Threshold = true, a.Threshold
	default:
		return &ArgError{Arg: "mode", Reason: "want text or vector, got " + a.Mode}
	}
	return nil
}

// modeSchema bounds mode and threshold.
func modeSchema(s *jsonschema.Schema) {
	enum([]string{"mode"}, modeText, modeVector)(s)
	prop(s, "mode").Default = []byte(`"text"`)
	bounds([]string{"threshold"}, 0, 1)(s)
}

// noEmbedder rewords Engram's refusal of a search by meaning when its query service has no
// embedder for the tools: naming the argument arg, or none for a tool that only searches by
// meaning. Engram's 400 names mode and tells HTTP callers to POST a vector, which a tool
// cannot. The tools send mode only as vector and the trace search none, so a 400 naming mode
// is this refusal.
func noEmbedder(err error, arg string) error {
	var ae *ArgError
	if !errors.As(err, &ae) || ae.Arg != "mode" {
		return err
	}
	const why = "Engram has no embedder (EMBEDDER on its ingestor and query service), so it cannot search by meaning"
	if arg == "" {
		return &RefusedError{Status: http.StatusBadRequest, Msg: why + "; find traces with memory_list_traces or memory_search_steps instead"}
	}
	return &ArgError{Arg: arg, Reason: "vector: " + why + "; search by text (mode text, the default)"}
}

// SearchIn is the input of memory_search.
type SearchIn struct {
	UserArg
	Query       string   `json:"query" jsonschema:"what to look for: mode text, the words (any of them matches, whole words, case-insensitive, no stemming); mode vector, a phrase of what you mean"`
	MemoryTypes []string `json:"memory_types,omitempty" jsonschema:"what to search (default messages, preferences, entities; steps by text only)"`
	Limit       int      `json:"limit,omitempty" jsonschema:"most results per kind"`
	SessionID   string   `json:"session_id,omitempty" jsonschema:"messages: only this session's"`
	Category    string   `json:"category,omitempty" jsonschema:"preferences: only this category (exact)"`
	EntityType  string   `json:"entity_type,omitempty" jsonschema:"entities: only this type (exact, case-sensitive)"`
	SuccessOnly bool     `json:"success_only,omitempty" jsonschema:"steps: only steps of traces that succeeded"`
	ModeArgs
}

// MessageHit is a message a search found.
type MessageHit struct {
	Message
	Score float64 `json:"score" jsonschema:"higher is better; mode text: full-text relevance, no fixed scale; mode vector: cosine similarity (1 + cos) / 2, from 0 to 1"`
}

// PreferenceHit is a preference a search found (superseded ones too).
type PreferenceHit struct {
	Preference
	Score float64 `json:"score" jsonschema:"higher is better; mode text: full-text relevance, no fixed scale; mode vector: cosine similarity (1 + cos) / 2, from 0 to 1"`
}

// EntityHit is an entity a search found.
type EntityHit struct {
	Entity
	Description *string `json:"description"`
	Score       float64 `json:"score" jsonschema:"higher is better; mode text: full-text relevance, no fixed scale; mode vector: cosine similarity (1 + cos) / 2, from 0 to 1"`
}

// StepHit is a reasoning step a search found, with its trace.
type StepHit struct {
	Step
	TraceID   string  `json:"trace_id"`
	SessionID string  `json:"session_id"`
	Task      string  `json:"task"`
	Outcome   *string `json:"outcome"`
	Success   *bool   `json:"success"`
	Score     float64 `json:"score" jsonschema:"full-text relevance, higher is better, no fixed scale"`
}

// SearchOut is what memory_search answers: the hits of each kind searched, best first; the
// kinds not searched are absent.
type SearchOut struct {
	Messages    []MessageHit    `json:"messages,omitzero"`
	Preferences []PreferenceHit `json:"preferences,omitzero"`
	Entities    []EntityHit     `json:"entities,omitzero"`
	Steps       []StepHit       `json:"steps,omitzero"`
}

// SearchMessagesIn is the input of memory_search_messages.
type SearchMessagesIn struct {
	UserArg
	Query     string `json:"query" jsonschema:"what to look for: mode text, the words (any of them matches, whole words, case-insensitive, no stemming); mode vector, a phrase of what you mean"`
	SessionID string `json:"session_id,omitempty" jsonschema:"only this session's messages"`
	Limit     int    `json:"limit,omitempty" jsonschema:"most results"`
	ModeArgs
}

// MessageHitsOut is what memory_search_messages answers.
type MessageHitsOut struct {
	Messages []MessageHit `json:"messages" jsonschema:"best match first"`
}

// SearchEntitiesIn is the input of memory_search_entities.
type SearchEntitiesIn struct {
	UserArg
	Query string `json:"query" jsonschema:"what to look for in the entities' names and descriptions: words (mode text) or a phrase of what you mean (mode vector)"`
	Type  string `json:"type,omitempty" jsonschema:"only entities of this type (exact, case-sensitive)"`
	Limit int    `json:"limit,omitempty" jsonschema:"most results"`
	ModeArgs
}

// EntityHitsOut is what memory_search_entities answers.
type EntityHitsOut struct {
	Entities []EntityHit `json:"entities" jsonschema:"best match first"`
}

// SearchPreferencesIn is the input of memory_search_preferences.
type SearchPreferencesIn struct {
	UserArg
	Query    string `json:"query" jsonschema:"what to look for in the preferences and their context: mode text, the words (any of them matches, whole words, case-insensitive, no stemming); mode vector, a phrase of what you mean"`
	Category string `json:"category,omitempty" jsonschema:"only preferences of this category (exact)"`
	Limit    int    `json:"limit,omitempty" jsonschema:"most results"`
	ModeArgs
}

// PreferenceHitsOut is what memory_search_preferences answers.
type PreferenceHitsOut struct {
	Preferences []PreferenceHit `json:"preferences" jsonschema:"best match first; superseded ones too (superseded_by set)"`
}

// SearchStepsIn is the input of memory_search_steps.
type SearchStepsIn struct {
	UserArg
	Query       string `json:"query" jsonschema:"the words to look for in the steps' thoughts, actions and observations: any of them matches, whole words, case-insensitive, no stemming"`
	SuccessOnly bool   `json:"success_only,omitempty" jsonschema:"only steps of traces that succeeded"`
	Limit       int    `json:"limit,omitempty" jsonschema:"most results"`
}

// StepHitsOut is what memory_search_steps answers.
type StepHitsOut struct {
	Steps []StepHit `json:"steps" jsonschema:"best match first, each with its trace"`
}

// SimilarTracesIn is the input of memory_get_similar_traces.
type SimilarTracesIn struct {
	UserArg
	Task        string  `json:"task" jsonschema:"the task you are about to work on, in a phrase: compared by meaning with the tasks of the user's past traces"`
	SuccessOnly bool    `json:"success_only,omitempty" jsonschema:"only traces completed with success"`
	Threshold   float64 `json:"threshold,omitempty" jsonschema:"the lowest score kept, 0 to 1 (default 0: every trace is ranked); raise it to keep only close tasks"`
	Limit       int     `json:"limit,omitempty" jsonschema:"most traces"`
}

// TraceHit is a trace whose task a search found near the one given.
type TraceHit struct {
	ID          string         `json:"trace_id" jsonschema:"read its steps with memory_get_trace"`
	SessionID   string         `json:"session_id"`
	Task        string         `json:"task"`
	Outcome     *string        `json:"outcome"`
	Success     *bool          `json:"success"`
	StartedAt   *time.Time     `json:"started_at"`
	CompletedAt *time.Time     `json:"completed_at" jsonschema:"null while the trace is open"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	Score       float64        `json:"score" jsonschema:"cosine similarity of the tasks, (1 + cos) / 2, from 0 to 1: higher is nearer"`
}

// TraceHitsOut is what memory_get_similar_traces answers.
type TraceHitsOut struct {
	Traces []TraceHit `json:"traces" jsonschema:"nearest first, without steps"`
}

func addSearchTools(r *registry) {
	query := length([]string{"query"}, 1, 1000)
	add(r, &sdk.Tool{
		Name: "memory_search",
		Description: "Search the user's memory: messages, preferences (superseded ones too), entities and reasoning steps. By default " +
			"(mode text) by full text: any word of query matches; more and rarer words rank higher; words match whole and " +
			"case-insensitively, without stemming (\"consultant\" does not find \"consultants\"). mode vector searches by meaning " +
			"instead: query is embedded by Engram's embedder and compared with the memories' vectors, nearest first (scores 0 to 1, " +
			"threshold drops lower ones; steps are searched by text only). Use text for names and exact words, vector when the memory " +
			"may be worded differently. memory_types picks what to search (default messages, preferences, entities); each kind's " +
			"filter (session_id, category, entity_type, success_only) applies to that kind only. Returns the best hits of each kind " +
			"searched, with scores.",
		Annotations: readOnly,
	}, schemaFor[SearchIn](
		query, limit(10, 1000),
		enum([]string{"memory_types", "[]"}, kindMessages, kindPreferences, kindEntities, kindSteps),
		items([]string{"memory_types"}, 1, 4),
		func(s *jsonschema.Schema) { prop(s, "memory_types").UniqueItems = true },
		modeSchema,
	), search)

	add(r, &sdk.Tool{
		Name: "memory_search_messages",
		Description: "Search the user's messages: by full text by default (any word matches, whole words, best match first), or by " +
			"meaning with mode vector (query embedded by Engram's embedder, nearest first, scores 0 to 1, threshold drops lower " +
			"ones): use vector when the message may be worded differently. session_id keeps one conversation's. Returns the " +
			"messages with their session and score.",
		Annotations: readOnly,
	}, schemaFor[SearchMessagesIn](query, limit(10, 1000), modeSchema), searchMessages)

	add(r, &sdk.Tool{
		Name: "memory_search_entities",
		Description: "Search the entities of the user's memory (what preferences apply to, e.g. Healthcare of type Industry) by name or " +
			"description: by full text by default, or by meaning with mode vector (nearest first, scores 0 to 1, threshold drops " +
			"lower ones); type keeps one type. Returns id, name, type and score, best match first: an id can filter " +
			"memory_get_preferences by applies_to.",
		Annotations: readOnly,
	}, schemaFor[SearchEntitiesIn](query, limit(10, 1000), modeSchema), searchEntities)

	add(r, &sdk.Tool{
		Name: "memory_search_preferences",
		Description: "Search the user's preferences over their text and context: by full text by default (any word matches, whole " +
			"words, best match first), or by meaning with mode vector (nearest first, scores 0 to 1, threshold drops lower ones): " +
			"use vector when the preference may be worded differently. category keeps one category. Superseded preferences are " +
			"found too (superseded_by says by which): use memory_get_preferences for the ones that hold now. Returns each " +
			"preference with its score.",
		Annotations: readOnly,
	}, schemaFor[SearchPreferencesIn](query, limit(10, 1000), length([]string{"category"}, 1, 256), modeSchema), searchPreferences)

	add(r, &sdk.Tool{
		Name: "memory_search_steps",
		Description: "Search the steps of the user's reasoning traces by full text over their thoughts, actions and observations (any " +
			"word matches, whole words, best match first); success_only keeps the steps of traces that succeeded. Returns each step " +
			"with its tool calls, its trace's id, session, task, outcome and success, and its score: use it to reuse what worked before.",
		Annotations: readOnly,
	}, schemaFor[SearchStepsIn](query, limit(10, 1000)), searchSteps)

	add(r, &sdk.Tool{
		Name: "memory_get_similar_traces",
		Description: "Find the user's past reasoning traces whose task is nearest in meaning to task (the library's get_similar_traces): " +
			"call it before starting a task to learn from how similar ones went. Compared by Engram's embedder, nearest first " +
			"(scores 0 to 1, threshold drops lower ones); success_only keeps traces that succeeded. Returns each trace's id, task, " +
			"outcome, success and score, without steps: read one with memory_get_trace. Needs an embedder on Engram's side.",
		Annotations: readOnly,
	}, schemaFor[SimilarTracesIn](length([]string{"task"}, 1, 1000), limit(10, 1000), bounds([]string{"threshold"}, 0, 1)), similarTraces)
}

// searchParam maps the query service's search parameters onto the tools' arguments.
func searchParam(typeArg string) rename {
	return func(f string) string {
		switch f {
		case "q":
			return "query"
		case "type":
			return typeArg
		}
		return f
	}
}

func search(ctx context.Context, c *call, in SearchIn) (SearchOut, error) {
	var out SearchOut
	kinds := in.MemoryTypes
	if len(kinds) == 0 {
		kinds = defaultKinds
	}
	for _, f := range []struct {
		arg, kind string
		given     bool
	}{
		{"session_id", kindMessages, in.SessionID != ""},
		{"category", kindPreferences, in.Category != ""},
		{"entity_type", kindEntities, in.EntityType != ""},
		{"success_only", kindSteps, in.SuccessOnly},
	} {
		if f.given && !slices.Contains(kinds, f.kind) {
			return out, &ArgError{Arg: f.arg, Reason: "filters " + f.kind + ", which memory_types does not search"}
		}
	}
	base := client.SearchQuery{Text: in.Query, Limit: in.Limit}
	if err := in.apply(&base); err != nil {
		return out, err
	}
	if base.ByVector && slices.Contains(kinds, kindSteps) {
		return out, &ArgError{Arg: "memory_types", Reason: "steps have no vectors: search them by text (mode text, or memory_search_steps), or leave steps out"}
	}
	name := searchParam("entity_type")
	for _, k := range kinds {
		q := base
		var err error
		switch k {
		case kindMessages:
			q.SessionID = in.SessionID
			var hits []client.MessageHit
			hits, err = c.c.ShortTerm.SearchMessages(ctx, c.user, q, c.readOpts()...)
			out.Messages = messageHits(hits)
		case kindPreferences:
			q.Category = in.Category
			var hits []client.PreferenceHit
			hits, err = c.c.LongTerm.SearchPreferences(ctx, c.user, q, c.readOpts()...)
			out.Preferences = preferenceHits(hits)
		case kindEntities:
			q.Type = in.EntityType
			var hits []client.EntityHit
			hits, err = c.c.LongTerm.SearchEntities(ctx, c.user, q, c.readOpts()...)
			out.Entities = entityHits(hits)
		case kindSteps:
			q.SuccessOnly = in.SuccessOnly
			var hits []client.StepHit
			hits, err = c.c.Reasoning.SearchSteps(ctx, c.user, q, c.readOpts()...)
			out.Steps = stepHits(hits)
		default:
			return out, &ArgError{Arg: "memory_types", Reason: "unknown kind " + k}
		}
		if err != nil {
			return SearchOut{}, noEmbedder(toolError(err, name), "mode")
		}
	}
	return out, nil
}

func messageHits(hits []client.MessageHit) []MessageHit {
	out := make([]MessageHit, 0, len(hits))
	for _, h := range hits {
		out = append(out, MessageHit{Message: fromMessage(h.Message), Score: h.Score})
	}
	return out
}

func preferenceHits(hits []client.PreferenceHit) []PreferenceHit {
	out := make([]PreferenceHit, 0, len(hits))
	for _, h := range hits {
		out = append(out, PreferenceHit{Preference: fromPreference(h.Preference), Score: h.Score})
	}
	return out
}

func stepHits(hits []client.StepHit) []StepHit {
	out := make([]StepHit, 0, len(hits))
	for _, h := range hits {
		out = append(out, StepHit{Step: fromStep(h.Step), TraceID: h.TraceID, SessionID: h.SessionID,
			Task: h.Task, Outcome: h.Outcome, Success: h.Success, Score: h.Score})
	}
	return out
}

func entityHits(hits []client.EntityHit) []EntityHit {
	out := make([]EntityHit, 0, len(hits))
	for _, h := range hits {
		out = append(out, EntityHit{Entity: Entity(h.Entity), Description: h.Description, Score: h.Score})
	}
	return out
}

func searchMessages(ctx context.Context, c *call, in SearchMessagesIn) (MessageHitsOut, error) {
	q := client.SearchQuery{Text: in.Query, SessionID: in.SessionID, Limit: in.Limit}
	if err := in.apply(&q); err != nil {
		return MessageHitsOut{}, err
	}
	hits, err := c.c.ShortTerm.SearchMessages(ctx, c.user, q, c.readOpts()...)
	if err != nil {
		return MessageHitsOut{Messages: []MessageHit{}}, noEmbedder(toolError(err, searchParam("type")), "mode")
	}
	return MessageHitsOut{Messages: messageHits(hits)}, nil
}

func searchEntities(ctx context.Context, c *call, in SearchEntitiesIn) (EntityHitsOut, error) {
	q := client.SearchQuery{Text: in.Query, Type: in.Type, Limit: in.Limit}
	if err := in.apply(&q); err != nil {
		return EntityHitsOut{}, err
	}
	hits, err := c.c.LongTerm.SearchEntities(ctx, c.user, q, c.readOpts()...)
	if err != nil {
		return EntityHitsOut{Entities: []EntityHit{}}, noEmbedder(toolError(err, searchParam("type")), "mode")
	}
	return EntityHitsOut{Entities: entityHits(hits)}, nil
}

func searchPreferences(ctx context.Context, c *call, in SearchPreferencesIn) (PreferenceHitsOut, error) {
	q := client.SearchQuery{Text: in.Query, Category: in.Category, Limit: in.Limit}
	if err := in.apply(&q); err != nil {
		return PreferenceHitsOut{}, err
	}
	hits, err := c.c.LongTerm.SearchPreferences(ctx, c.user, q, c.readOpts()...)
	if err != nil {
		return PreferenceHitsOut{Preferences: []PreferenceHit{}}, noEmbedder(toolError(err, searchParam("type")), "mode")
	}
	return PreferenceHitsOut{Preferences: preferenceHits(hits)}, nil
}

func searchSteps(ctx context.Context, c *call, in SearchStepsIn) (StepHitsOut, error) {
	hits, err := c.c.Reasoning.SearchSteps(ctx, c.user, client.SearchQuery{Text: in.Query, SuccessOnly: in.SuccessOnly, Limit: in.Limit}, c.readOpts()...)
	if err != nil {
		return StepHitsOut{Steps: []StepHit{}}, toolError(err, searchParam("type"))
	}
	return StepHitsOut{Steps: stepHits(hits)}, nil
}

func similarTraces(ctx context.Context, c *call, in SimilarTracesIn) (TraceHitsOut, error) {
	q := client.SearchQuery{Text: in.Task, SuccessOnly: in.SuccessOnly, Threshold: in.Threshold, Limit: in.Limit}
	hits, err := c.c.Reasoning.SearchTraces(ctx, c.user, q, c.readOpts()...)
	if err != nil {
		return TraceHitsOut{Traces: []TraceHit{}}, noEmbedder(toolError(err, traceSearchParam), "")
	}
	out := TraceHitsOut{Traces: make([]TraceHit, 0, len(hits))}
	for _, h := range hits {
		out.Traces = append(out.Traces, TraceHit{ID: h.ID, SessionID: h.SessionID, Task: h.Task, Outcome: h.Outcome, Success: h.Success,
			StartedAt: h.StartedAt, CompletedAt: h.CompletedAt, Metadata: object(h.Metadata), Score: h.Score})
	}
	return out, nil
}

// traceSearchParam maps the trace search's parameters onto memory_get_similar_traces's
// arguments: its q is the task.
func traceSearchParam(f string) string {
	if f == "q" {
		return "task"
	}
	return f
}
