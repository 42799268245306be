package mcp

import (
	"context"
	"slices"

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

// SearchIn is the input of memory_search.
type SearchIn struct {
	UserArg
	Query       string   `json:"query" jsonschema:"the words to look for: any of them matches, whole words, case-insensitive, no stemming"`
	MemoryTypes []string `json:"memory_types,omitempty" jsonschema:"what to search (default messages, preferences, entities)"`
	Limit       int      `json:"limit,omitempty" jsonschema:"most results per kind"`
	SessionID   string   `json:"session_id,omitempty" jsonschema:"messages: only this session's"`
	Category    string   `json:"category,omitempty" jsonschema:"preferences: only this category (exact)"`
	EntityType  string   `json:"entity_type,omitempty" jsonschema:"entities: only this type (exact, case-sensitive)"`
	SuccessOnly bool     `json:"success_only,omitempty" jsonschema:"steps: only steps of traces that succeeded"`
}

// MessageHit is a message a search found.
type MessageHit struct {
	Message
	Score float64 `json:"score"`
}

// PreferenceHit is a preference a search found (superseded ones too).
type PreferenceHit struct {
	Preference
	Score float64 `json:"score"`
}

// EntityHit is an entity a search found.
type EntityHit struct {
	Entity
	Description *string `json:"description"`
	Score       float64 `json:"score"`
}

// StepHit is a reasoning step a search found, with its trace.
type StepHit struct {
	Step
	TraceID   string  `json:"trace_id"`
	SessionID string  `json:"session_id"`
	Task      string  `json:"task"`
	Outcome   *string `json:"outcome"`
	Success   *bool   `json:"success"`
	Score     float64 `json:"score"`
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
	Query     string `json:"query" jsonschema:"the words to look for: any of them matches, whole words, case-insensitive, no stemming"`
	SessionID string `json:"session_id,omitempty" jsonschema:"only this session's messages"`
	Limit     int    `json:"limit,omitempty" jsonschema:"most results"`
}

// MessageHitsOut is what memory_search_messages answers.
type MessageHitsOut struct {
	Messages []MessageHit `json:"messages" jsonschema:"best match first"`
}

// SearchEntitiesIn is the input of memory_search_entities.
type SearchEntitiesIn struct {
	UserArg
	Query string `json:"query" jsonschema:"the words to look for in the entities' names and descriptions"`
	Type  string `json:"type,omitempty" jsonschema:"only entities of this type (exact, case-sensitive)"`
	Limit int    `json:"limit,omitempty" jsonschema:"most results"`
}

// EntityHitsOut is what memory_search_entities answers.
type EntityHitsOut struct {
	Entities []EntityHit `json:"entities" jsonschema:"best match first"`
}

// SearchPreferencesIn is the input of memory_search_preferences.
type SearchPreferencesIn struct {
	UserArg
	Query    string `json:"query" jsonschema:"the words to look for in the preferences and their context: any of them matches, whole words, case-insensitive, no stemming"`
	Category string `json:"category,omitempty" jsonschema:"only preferences of this category (exact)"`
	Limit    int    `json:"limit,omitempty" jsonschema:"most results"`
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

func addSearchTools(r *registry) {
	query := length([]string{"query"}, 1, 1000)
	add(r, &sdk.Tool{
		Name: "memory_search",
		Description: "Search the user's memory by full text: messages, preferences (superseded ones too), entities and reasoning steps. " +
			"Any word of query matches; more and rarer words rank higher; words match whole and case-insensitively, without stemming " +
			"(\"consultant\" does not find \"consultants\"). memory_types picks what to search (default messages, preferences, " +
			"entities); each kind's filter (session_id, category, entity_type, success_only) applies to that kind only. Returns the " +
			"best hits of each kind searched, with scores.",
		Annotations: readOnly,
	}, schemaFor[SearchIn](
		query, limit(10, 1000),
		enum([]string{"memory_types", "[]"}, kindMessages, kindPreferences, kindEntities, kindSteps),
		items([]string{"memory_types"}, 1, 4),
		func(s *jsonschema.Schema) { prop(s, "memory_types").UniqueItems = true },
	), search)

	add(r, &sdk.Tool{
		Name: "memory_search_messages",
		Description: "Search the user's messages by full text (any word matches, whole words, best match first); session_id keeps one " +
			"conversation's. Returns the messages with their session and score.",
		Annotations: readOnly,
	}, schemaFor[SearchMessagesIn](query, limit(10, 1000)), searchMessages)

	add(r, &sdk.Tool{
		Name: "memory_search_entities",
		Description: "Search the entities of the user's memory (what preferences apply to, e.g. Healthcare of type Industry) by name or " +
			"description; type keeps one type. Returns id, name, type and score, best match first: an id can filter " +
			"memory_get_preferences by applies_to.",
		Annotations: readOnly,
	}, schemaFor[SearchEntitiesIn](query, limit(10, 1000)), searchEntities)

	add(r, &sdk.Tool{
		Name: "memory_search_preferences",
		Description: "Search the user's preferences by full text over their text and context (any word matches, whole words, best match " +
			"first); category keeps one category. Superseded preferences are found too (superseded_by says by which): use " +
			"memory_get_preferences for the ones that hold now. Returns each preference with its score.",
		Annotations: readOnly,
	}, schemaFor[SearchPreferencesIn](query, limit(10, 1000), length([]string{"category"}, 1, 256)), searchPreferences)

	add(r, &sdk.Tool{
		Name: "memory_search_steps",
		Description: "Search the steps of the user's reasoning traces by full text over their thoughts, actions and observations (any " +
			"word matches, whole words, best match first); success_only keeps the steps of traces that succeeded. Returns each step " +
			"with its tool calls, its trace's id, session, task, outcome and success, and its score: use it to reuse what worked before.",
		Annotations: readOnly,
	}, schemaFor[SearchStepsIn](query, limit(10, 1000)), searchSteps)
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
	name := searchParam("entity_type")
	for _, k := range kinds {
		q := client.SearchQuery{Text: in.Query, Limit: in.Limit}
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
			return SearchOut{}, toolError(err, name)
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
	hits, err := c.c.ShortTerm.SearchMessages(ctx, c.user, client.SearchQuery{Text: in.Query, SessionID: in.SessionID, Limit: in.Limit}, c.readOpts()...)
	if err != nil {
		return MessageHitsOut{Messages: []MessageHit{}}, toolError(err, searchParam("type"))
	}
	return MessageHitsOut{Messages: messageHits(hits)}, nil
}

func searchEntities(ctx context.Context, c *call, in SearchEntitiesIn) (EntityHitsOut, error) {
	hits, err := c.c.LongTerm.SearchEntities(ctx, c.user, client.SearchQuery{Text: in.Query, Type: in.Type, Limit: in.Limit}, c.readOpts()...)
	if err != nil {
		return EntityHitsOut{Entities: []EntityHit{}}, toolError(err, searchParam("type"))
	}
	return EntityHitsOut{Entities: entityHits(hits)}, nil
}

func searchPreferences(ctx context.Context, c *call, in SearchPreferencesIn) (PreferenceHitsOut, error) {
	hits, err := c.c.LongTerm.SearchPreferences(ctx, c.user, client.SearchQuery{Text: in.Query, Category: in.Category, Limit: in.Limit}, c.readOpts()...)
	if err != nil {
		return PreferenceHitsOut{Preferences: []PreferenceHit{}}, toolError(err, searchParam("type"))
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
