package migrate

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
)

// Issue is one thing of the source that Engram cannot represent as the library holds it, and
// what the import does with it instead (Detail).
type Issue struct {
	Code   string `json:"code"`
	User   string `json:"user,omitempty"` // the user it concerns; "" for the source as a whole
	ID     string `json:"id"`             // the library's id (or label, or relationship type)
	Detail string `json:"detail"`
}

// Issue codes. docs/migration.md says what is imported for each.
const (
	CodeInvalidUser        = "invalid_user"            // identifier Engram refuses: the user is not imported
	CodeInvalid            = "invalid_event"           // Engram's validation refuses the event: not imported
	CodeDependsOnSkipped   = "depends_on_skipped"      // refers to something not imported: not imported
	CodeInvalidJSON        = "invalid_json"            // a JSON-string property that does not parse: imported without it
	CodeNoTime             = "missing_time"            // a time the library always writes is missing
	CodeNoValidFrom        = "missing_valid_from"      // preference whose valid_from the library never wrote
	CodeValidUntilOnly     = "valid_until_only"        // valid_until without SUPERSEDED_BY: imported as valid
	CodeSecondSupersede    = "second_supersede"        // superseded twice: only the first imported
	CodeForeignSupersede   = "foreign_supersede"       // superseded by another user's preference: not imported
	CodeSupersedeCycle     = "supersede_cycle"         // supersedes in a cycle: not imported
	CodeSharedConversation = "shared_conversation"     // one conversation of several users: imported for one
	CodeSharedPreference   = "shared_preference"       // one preference of several users: imported for one
	CodeSharedTrace        = "shared_trace"            // one trace of several users: imported for one
	CodeEmptyConversation  = "empty_conversation"      // no messages: not imported
	CodeDanglingEntity     = "unnamed_entity"          // APPLIES_TO an Entity without a name: reference dropped
	CodeDroppedField       = "dropped_field"           // a property Engram's events do not carry: dropped
	CodeNoUser             = "no_user"                 // a conversation, preference or trace no user owns: not imported
	CodeDangling           = "dangling"                // a message, step or tool call outside its parent: not imported
	CodeUnmodelledLabel    = "unmodelled_label"        // nodes of kinds Engram does not model: not imported
	CodeUnmodelledRel      = "unmodelled_relationship" // relationships Engram does not model: not imported
	CodeEmbedding          = "embedding"               // an embedding not imported: of a node kind Engram does not import with it, or not a valid vector
	CodeUnreferencedEntity = "unreferenced_entity"     // an Entity no preference applies to: not imported
)

// modelledLabels and modelledRels are the graph Engram projects (docs/graph.md).
var (
	modelledLabels = []string{"User", "Conversation", "Message", "Preference", "Entity", "ReasoningTrace",
		"ReasoningStep", "ToolCall", "Tool"}
	modelledRels = []string{"HAS_CONVERSATION", "HAS_MESSAGE", "FIRST_MESSAGE", "NEXT_MESSAGE",
		"HAS_PREFERENCE", "APPLIES_TO", "SUPERSEDED_BY", "HAS_TRACE", "HAS_STEP", "USES_TOOL", "INSTANCE_OF"}
)

// maxIDs bounds the ids one global query returns per issue.
const maxIDs = 1000

// sourceChecks find what belongs to no user. Each returns rows of (id, detail).
var sourceChecks = []struct {
	code, cypher string
}{
	{CodeNoUser, `MATCH (c:Conversation) WHERE NOT (:User)-[:HAS_CONVERSATION]->(c)
		RETURN c.id AS id, 'conversation of session ' + coalesce(c.session_id, '?') + ' with ' +
		       toString(COUNT { (c)-[:HAS_MESSAGE]->(:Message) }) + ' messages and no User: not imported (Engram needs the user a message belongs to)' AS detail
		ORDER BY id LIMIT $max`},
	{CodeNoUser, `MATCH (p:Preference) WHERE NOT (:User)-[:HAS_PREFERENCE]->(p)
		RETURN p.id AS id, 'preference without a User: not imported' AS detail ORDER BY id LIMIT $max`},
	{CodeNoUser, `MATCH (t:ReasoningTrace) WHERE NOT (:User)-[:HAS_TRACE]->(t)
		RETURN t.id AS id, 'trace without a User: not imported (nor its steps and tool calls)' AS detail ORDER BY id LIMIT $max`},
	{CodeDangling, `MATCH (m:Message) WHERE NOT (:Conversation)-[:HAS_MESSAGE]->(m)
		RETURN m.id AS id, 'message in no conversation: not imported' AS detail ORDER BY id LIMIT $max`},
	{CodeDangling, `MATCH (s:ReasoningStep) WHERE NOT (:ReasoningTrace)-[:HAS_STEP]->(s)
		RETURN s.id AS id, 'step of no trace: not imported' AS detail ORDER BY id LIMIT $max`},
	{CodeDangling, `MATCH (c:ToolCall) WHERE NOT (:ReasoningStep)-[:USES_TOOL]->(c)
		RETURN c.id AS id, 'tool call of no step: not imported' AS detail ORDER BY id LIMIT $max`},
	{CodeUnreferencedEntity, `MATCH (e:Entity) WHERE NOT (:Preference)-[:APPLIES_TO]->(e)
		RETURN coalesce(e.id, elementId(e)) AS id,
		       'Entity ' + coalesce(e.name, '?') + ' no preference applies to: not imported (Engram creates entities only as what preferences apply to)' AS detail
		ORDER BY id LIMIT $max`},
	{CodeUnmodelledLabel, `MATCH (n) WHERE none(l IN labels(n) WHERE l IN $labels)
		WITH labels(n) AS labels, count(*) AS n
		RETURN reduce(s = '', l IN labels | s + ':' + l) AS id, toString(n) + ' nodes: not imported (Engram does not model them)' AS detail
		ORDER BY id LIMIT $max`},
	{CodeUnmodelledRel, `MATCH ()-[r]->() WHERE NOT type(r) IN $rels
		WITH type(r) AS t, count(*) AS n
		RETURN t AS id, toString(n) + ' relationships: not imported (Engram does not model them)' AS detail
		ORDER BY id LIMIT $max`},
	// Messages', preferences' and traces' (task_embedding) vectors are imported with them;
	// the others' (entities, which are not imported as such, reasoning steps) are not.
	{CodeEmbedding, `MATCH (n) WHERE (n.embedding IS NOT NULL OR n.task_embedding IS NOT NULL)
		AND NOT n:Message AND NOT n:Preference AND NOT n:ReasoningTrace
		WITH labels(n)[0] AS label, count(*) AS n
		RETURN label AS id, toString(n) + ' nodes with an embedding: not imported (Engram imports the vectors of messages, preferences and traces only)' AS detail
		ORDER BY id LIMIT $max`},
}

// SourceIssues reports what the source holds outside every user's graph, and the kinds of
// nodes and relationships Engram does not model.
func (s *Source) SourceIssues(ctx context.Context) ([]Issue, error) {
	var out []Issue
	params := map[string]any{"max": maxIDs, "labels": modelledLabels, "rels": modelledRels}
	for _, c := range sourceChecks {
		rows, err := s.read(ctx, c.cypher, params)
		if err != nil {
			return nil, fmt.Errorf("check the source (%s): %w", c.code, err)
		}
		for _, r := range rows {
			out = append(out, Issue{Code: c.code, ID: str(r["id"]), Detail: str(r["detail"])})
		}
	}
	return out, nil
}

// WriteIssues prints issues grouped by code: a count, then each id with its detail, at most
// limit per code (all when limit is 0).
func WriteIssues(w io.Writer, issues []Issue, limit int) {
	by := map[string][]Issue{}
	for _, i := range issues {
		by[i.Code] = append(by[i.Code], i)
	}
	for _, code := range slices.Sorted(maps.Keys(by)) {
		list := by[code]
		fmt.Fprintf(w, "  %s: %d\n", code, len(list))
		for n, i := range list {
			if limit > 0 && n == limit {
				fmt.Fprintf(w, "    … and %d more (-v lists all)\n", len(list)-limit)
				break
			}
			who := ""
			if i.User != "" {
				who = " (" + i.User + ")"
			}
			fmt.Fprintf(w, "    %s%s: %s\n", i.ID, who, i.Detail)
		}
	}
}
