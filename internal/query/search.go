package query

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
)

// Full-text search of a user's messages, preferences, entities and reasoning steps: the
// library's search_messages, search_preferences, search_entities and search_steps, over
// Neo4j's full-text indexes (graph.Schema: message_search, preference_search, entity_search,
// reasoning_step_search) instead of the library's embeddings.
//
// The indexes are global, so a search must not read the other tenants' matches. Each index
// also holds owner, and the Lucene query requires the user's owner as a phrase: the index
// returns only that owner's matches (plus those of owners the analyzer cannot tell apart from
// it, see luceneQuery), and the exact owner is checked on every node afterwards. The owner
// clause has boost 0, so the score is the text's alone, and a node matched by the owner clause
// only scores 0 and is dropped: a query whose words the analyzer reduced to nothing can never
// widen into "everything the user owns". docs/query.md, "Search", has the measured cost.

// Limits of a search.
const (
	// DefaultSearchLimit is the library's default limit of its searches.
	DefaultSearchLimit = 10
	// maxQueryRunes bounds q.
	maxQueryRunes = 1000
	// maxQueryWords bounds the words of q: each becomes a clause per searched property, and
	// Lucene refuses a query of more than 1024 clauses.
	maxQueryWords = 64
)

// The searches wait for the full-text indexes to hold every transaction committed before
// them (graph.AwaitFullText: the indexes are eventually consistent, graph.Schema), so a
// search that waited for a consistency token sees the write. They then start at the
// full-text index (a procedure call, the only start of each plan, over the wait), keep the
// user's own nodes (owner = $owner exactly: the Lucene owner phrase is
// case-insensitive) and expand from each match to what the answer needs, collecting the
// neighbours in pattern comprehensions and checking their owner afterwards (see
// conversationsOf: an owner predicate in the pattern offers the planner a second start). Results are ordered
// by score, then id, so equal scores come in a stable order.
const (
	searchMessagesCypher = `
` + graph.AwaitFullText + `
CALL db.index.fulltext.queryNodes('message_search', $lucene) YIELD node AS m, score
WHERE score > 0 AND m.owner = $owner
UNWIND [(c:Conversation)-[:HAS_MESSAGE]->(m) | c] AS c
WITH m, score, c WHERE c.owner = $owner AND ($session_id IS NULL OR c.session_id = $session_id)
RETURN m {.id, .role, .content, .timestamp, .metadata, .recorded_at, session_id: c.session_id, score: score} AS hit
ORDER BY score DESC, m.id
LIMIT $limit
`
	searchPreferencesCypher = `
` + graph.AwaitFullText + `
CALL db.index.fulltext.queryNodes('preference_search', $lucene) YIELD node AS p, score
WHERE score > 0 AND p.owner = $owner AND ($category IS NULL OR p.category = $category)
` + preferenceHit + `
`
	searchEntitiesCypher = `
` + graph.AwaitFullText + `
CALL db.index.fulltext.queryNodes('entity_search', $lucene) YIELD node AS e, score
WHERE score > 0 AND e.owner = $owner AND ($type IS NULL OR e.type = $type)
RETURN e {.id, .name, .type, .description, .created_at, .recorded_at, score: score} AS hit
ORDER BY score DESC, e.id
LIMIT $limit
`
	searchStepsCypher = `
` + graph.AwaitFullText + `
CALL db.index.fulltext.queryNodes('reasoning_step_search', $lucene) YIELD node AS s, score
WHERE score > 0 AND s.owner = $owner
UNWIND [(t:ReasoningTrace)-[hs:HAS_STEP]->(s) | {t: t, order: hs.order}] AS x
WITH s, score, x.t AS t, x.order AS order
WHERE t.owner = $owner AND (NOT $success_only OR t.success = true)
RETURN s {.id, .step_number, .thought, .action, .observation, .timestamp, order: order,
  trace_id: t.id, session_id: t.session_id, task: t.task, outcome: t.outcome, success: t.success,
  tool_calls: [c IN [(s)-[:USES_TOOL]->(c:ToolCall) | c {
    .id, .tool_name, .arguments, .result, .status, .duration_ms, .error, .timestamp, .owner}]
    WHERE c.owner = $owner | c {.id, .tool_name, .arguments, .result, .status, .duration_ms, .error, .timestamp}],
  score: score
} AS hit
ORDER BY score DESC, s.id
LIMIT $limit
`
)

// preferenceHit is how a preference search (full text or vector) answers a hit of p with its
// score, best first.
const preferenceHit = `RETURN p {
  .id, .category, .preference, .context, .confidence, .created_at, .valid_from, .valid_until, .metadata,
  .recorded_at, .recorded_seq, .superseded_recorded_at, .superseded_seq,
  superseded_by: [x IN [(p)-[s:SUPERSEDED_BY]->(n:Preference) |
    {id: n.id, owner: n.owner, recorded_at: coalesce(s.recorded_at, p.superseded_recorded_at)}]
    WHERE x.owner = $owner | x {.id, .recorded_at}],
  supersedes: [x IN [(o:Preference)-[:SUPERSEDED_BY]->(p) | o {.id, .owner}] WHERE x.owner = $owner | x.id],
  applies_to: [x IN [(p)-[:APPLIES_TO]->(e:Entity) | e {.id, .name, .type, .owner}] WHERE x.owner = $owner |
    x {.id, .name, .type}],
  score: score
} AS hit
ORDER BY score DESC, p.id
LIMIT $limit
`

// The properties each index searches (graph.Schema): the Lucene query names them, so that a
// word is never looked up in owner.
var (
	messageFields    = []string{"content"}
	preferenceFields = []string{"preference", "context"}
	entityFields     = []string{"name", "description"}
	stepFields       = []string{"thought", "action", "observation"}
)

// MessageSearch is a search of a user's messages (the library's search_messages).
type MessageSearch struct {
	Text      string // the words to look for: any of them, ranked by Lucene's BM25 score
	SessionID string // only the messages of this session when set
	Limit     int    // 1..the Reader's max limit; 0 means DefaultSearchLimit
	// Vector, when set, searches by vector instead of Text (vector.go).
	Vector *VectorQuery
}

// PreferenceSearch is a search of a user's preferences, superseded ones included (the
// library's search_preferences): preference and context are searched.
type PreferenceSearch struct {
	Text     string
	Category string // only this category when set (exact)
	Limit    int
	Vector   *VectorQuery // when set, by vector instead of Text
}

// EntitySearch is a search of a user's entities by name and description (the library's
// search_entities).
type EntitySearch struct {
	Text   string
	Type   string // only this type when set (exact, case-sensitive: the library keeps the caller's case)
	Limit  int
	Vector *VectorQuery // when set, by vector instead of Text
}

// StepSearch is a search of a user's reasoning steps by thought, action and observation (the
// library's search_steps).
type StepSearch struct {
	Text        string
	SuccessOnly bool // only the steps of traces completed with success = true
	Limit       int
}

// MessageHit is a message that matched, with its session and score.
type MessageHit struct {
	Message
	SessionID string  `json:"session_id"`
	Score     float64 `json:"score"`
}

// PreferenceHit is a preference that matched, with its score.
type PreferenceHit struct {
	Preference
	Score float64 `json:"score"`
}

// EntityHit is an entity that matched, with its score.
type EntityHit struct {
	Entity
	Description *string    `json:"description"`
	CreatedAt   *time.Time `json:"created_at"`
	RecordedAt  *time.Time `json:"recorded_at"`
	Score       float64    `json:"score"`
}

// StepHit is a reasoning step that matched, with its trace (the library's
// ReasoningStepWithContext: parent task and outcome) and score.
type StepHit struct {
	Step
	TraceID   string  `json:"trace_id"`
	SessionID string  `json:"session_id"`
	Task      string  `json:"task"`
	Outcome   *string `json:"outcome"`
	Success   *bool   `json:"success"`
	Score     float64 `json:"score"`
}

// SearchMessages returns the user's messages that contain any word of q.Text, best score
// first, then by id. An unknown user has none; "" is the shared tenant.
func (r *Reader) SearchMessages(ctx context.Context, identifier string, q MessageSearch) ([]MessageHit, error) {
	cypher := searchMessagesCypher
	params, vk, err := r.searchOrVector(identifier, q.Text, q.Vector, q.Limit, messageFields, vectorMessages)
	if err != nil {
		return nil, err
	}
	params["session_id"] = nil
	if q.SessionID != "" {
		if err := checkText("session_id", q.SessionID, maxTextRunes); err != nil {
			return nil, err
		}
		params["session_id"] = q.SessionID
		if vk != nil {
			vk = &vectorSessionMessages
			params["conversation_id"] = events.ConversationID(identifier, q.SessionID)
		}
	}
	rows, err := r.searchRead(ctx, "search messages", cypher, vk, params)
	if err != nil {
		return nil, err
	}
	out := make([]MessageHit, 0, len(rows))
	for _, m := range rows {
		out = append(out, MessageHit{
			Message: Message{
				ID:         str(m, "id"),
				Role:       str(m, "role"),
				Content:    str(m, "content"),
				Timestamp:  timep(m, "timestamp"),
				Metadata:   object(m, "metadata"),
				RecordedAt: timep(m, "recorded_at"),
			},
			SessionID: str(m, "session_id"),
			Score:     float(m, "score", 0),
		})
	}
	return out, nil
}

// SearchPreferences returns the user's preferences, superseded ones too (each says what
// superseded it), whose preference or context contains any word of q.Text, best score first.
func (r *Reader) SearchPreferences(ctx context.Context, identifier string, q PreferenceSearch) ([]PreferenceHit, error) {
	cypher := searchPreferencesCypher
	params, vk, err := r.searchOrVector(identifier, q.Text, q.Vector, q.Limit, preferenceFields, vectorPreferences)
	if err != nil {
		return nil, err
	}
	if params["category"], err = optText("category", q.Category); err != nil {
		return nil, err
	}
	rows, err := r.searchRead(ctx, "search preferences", cypher, vk, params)
	if err != nil {
		return nil, err
	}
	out := make([]PreferenceHit, 0, len(rows))
	for _, m := range rows {
		out = append(out, PreferenceHit{Preference: preferenceOf(m), Score: float(m, "score", 0)})
	}
	return out, nil
}

// SearchEntities returns the user's entities whose name or description contains any word of
// q.Text, best score first.
func (r *Reader) SearchEntities(ctx context.Context, identifier string, q EntitySearch) ([]EntityHit, error) {
	cypher := searchEntitiesCypher
	params, vk, err := r.searchOrVector(identifier, q.Text, q.Vector, q.Limit, entityFields, vectorEntities)
	if err != nil {
		return nil, err
	}
	if params["type"], err = optText("type", q.Type); err != nil {
		return nil, err
	}
	rows, err := r.searchRead(ctx, "search entities", cypher, vk, params)
	if err != nil {
		return nil, err
	}
	out := make([]EntityHit, 0, len(rows))
	for _, m := range rows {
		out = append(out, EntityHit{
			Entity:      Entity{ID: str(m, "id"), Name: str(m, "name"), Type: str(m, "type")},
			Description: strp(m, "description"),
			CreatedAt:   timep(m, "created_at"),
			RecordedAt:  timep(m, "recorded_at"),
			Score:       float(m, "score", 0),
		})
	}
	return out, nil
}

// SearchSteps returns the user's reasoning steps whose thought, action or observation
// contains any word of q.Text, each with its trace, best score first.
func (r *Reader) SearchSteps(ctx context.Context, identifier string, q StepSearch) ([]StepHit, error) {
	params, err := r.searchParams(identifier, q.Text, q.Limit, stepFields)
	if err != nil {
		return nil, err
	}
	params["success_only"] = q.SuccessOnly
	rows, err := r.read(ctx, "search steps", searchStepsCypher, params)
	if err != nil {
		return nil, err
	}
	out := make([]StepHit, 0, len(rows))
	for _, m := range rows {
		h := StepHit{
			Step: Step{
				ID:          str(m, "id"),
				StepNumber:  int64p(m, "step_number"),
				Order:       int64p(m, "order"),
				Thought:     strp(m, "thought"),
				Action:      strp(m, "action"),
				Observation: strp(m, "observation"),
				Timestamp:   timep(m, "timestamp"),
				ToolCalls:   toolCallsOf(m),
			},
			TraceID:   str(m, "trace_id"),
			SessionID: str(m, "session_id"),
			Task:      str(m, "task"),
			Outcome:   strp(m, "outcome"),
			Success:   boolp(m, "success"),
			Score:     float(m, "score", 0),
		}
		out = append(out, h)
	}
	return out, nil
}

// searchOrVector is searchParams for a full-text search, or vectorParams and the vector
// search of kind vk when v is set.
func (r *Reader) searchOrVector(identifier, text string, v *VectorQuery, n int, fields []string, vk vectorKind) (map[string]any, *vectorKind, error) {
	if v == nil {
		params, err := r.searchParams(identifier, text, n, fields)
		return params, nil, err
	}
	params, err := r.vectorParams(identifier, *v, n)
	return params, &vk, err
}

// searchRead runs a full-text search's cypher, or the vector search vk when set.
func (r *Reader) searchRead(ctx context.Context, op, cypher string, vk *vectorKind, params map[string]any) ([]map[string]any, error) {
	if vk != nil {
		return r.vectorRead(ctx, op, *vk, params)
	}
	return r.read(ctx, op, cypher, params)
}

// searchParams validates what every search takes and returns its parameters: the owner, the
// Lucene query over fields, the limit.
func (r *Reader) searchParams(identifier, text string, n int, fields []string) (map[string]any, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	words, err := searchWords(text)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		n = min(DefaultSearchLimit, r.maxLimit)
	}
	if n, err = limit(n, r.maxLimit); err != nil {
		return nil, err
	}
	return map[string]any{"owner": owner, "lucene": luceneQuery(owner, fields, words), "limit": int64(n)}, nil
}

// optText validates an optional filter: nil when empty.
func optText(field, v string) (any, error) {
	if v == "" {
		return nil, nil
	}
	if err := checkText(field, v, maxTextRunes); err != nil {
		return nil, err
	}
	return v, nil
}

// searchWords splits q into the words to search for: the runs between white space that hold
// at least one letter or digit, each once. Lucene's syntax is never interpreted (luceneQuery
// quotes every word); a run of punctuation alone is dropped, since the analyzer would reduce
// it to nothing. q may span lines, so tabs and line breaks are allowed in it.
func searchWords(q string) ([]string, error) {
	if err := queryText(q, maxQueryRunes, "the words to search for"); err != nil {
		return nil, err
	}
	var words []string
	seen := map[string]bool{}
	for _, w := range strings.FieldsFunc(q, unicode.IsSpace) {
		if seen[w] || strings.IndexFunc(w, func(c rune) bool { return unicode.IsLetter(c) || unicode.IsDigit(c) }) < 0 {
			continue
		}
		seen[w] = true
		words = append(words, w)
	}
	switch {
	case len(words) == 0:
		return nil, badArg("q", "%q has no word to search for: a word needs a letter or a digit", clip(q))
	case len(words) > maxQueryWords:
		return nil, badArg("q", "%d words: at most %d", len(words), maxQueryWords)
	}
	return words, nil
}

// queryText checks q of a search (what names what the caller should give when q is empty):
// UTF-8, 1 to maxRunes characters, no control characters but tabs and line breaks.
func queryText(q string, maxRunes int, what string) error {
	switch {
	case q == "":
		return badArg("q", "must not be empty: give %s", what)
	case !utf8.ValidString(q):
		return badArg("q", "not valid UTF-8")
	case utf8.RuneCountInString(q) > maxRunes:
		return badArg("q", "longer than %d characters", maxRunes)
	}
	for _, c := range q {
		if c != '\t' && c != '\n' && c != '\r' && (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
			return badArg("q", "control character U+%04X", c)
		}
	}
	return nil
}

// luceneQuery requires the owner and any of the words in any of the fields:
//
//	owner:"sara_40omg_2Ecom"^0 AND (content:"healthcare" OR content:"consultants")
//
// Every value is a quoted phrase with '\' and '"' escaped, so the rest of Lucene's syntax
// (field:, *, ?, ~, AND, OR, NOT, parentheses) is plain text to the analyzer, which splits
// and lower-cases it as it did the indexed text. The owner phrase is only a pre-filter: the
// analyzer lower-cases the token and splits it at '-', so owners equal but for case, or whose
// token contains this one between dashes (ann-lee in bob-ann-lee), match it too; the reads
// check owner exactly.
func luceneQuery(owner string, fields, words []string) string {
	var b strings.Builder
	b.WriteString(`owner:"` + lucenePhrase(owner) + `"^0 AND (`)
	for i, w := range words {
		for j, f := range fields {
			if i > 0 || j > 0 {
				b.WriteString(" OR ")
			}
			b.WriteString(f + `:"` + lucenePhrase(w) + `"`)
		}
	}
	b.WriteString(")")
	return b.String()
}

// lucenePhrase escapes s for the inside of a quoted Lucene phrase.
func lucenePhrase(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// Query parameters of the searches, besides consistency.
var (
	stepSearchParams = []string{"q", "success_only", "limit"}
)

// parseSearch checks a search's parameters and reads q and limit; the kind's filter is the
// caller's to read (searchFilter).
func parseSearch(v url.Values, allowed []string, maxLimit int) (string, int, error) {
	if err := checkParams(v, allowed); err != nil {
		return "", 0, err
	}
	if !v.Has("q") {
		return "", 0, badArg("q", "required: the words to search for")
	}
	text := v.Get("q")
	if _, err := searchWords(text); err != nil {
		return "", 0, err
	}
	if !v.Has("limit") {
		return text, min(DefaultSearchLimit, maxLimit), nil
	}
	n, err := parseLimit(v, maxLimit)
	return text, n, err
}

// searchFilter reads an optional free-text filter: "" when absent, an error when empty.
func searchFilter(v url.Values, field string) (string, error) {
	if !v.Has(field) {
		return "", nil
	}
	s := v.Get(field)
	return s, checkText(field, s, maxTextRunes)
}

// Response bodies of the searches.
type (
	messageHitsBody struct {
		Messages []MessageHit `json:"messages"`
	}
	preferenceHitsBody struct {
		Preferences []PreferenceHit `json:"preferences"`
	}
	entityHitsBody struct {
		Entities []EntityHit `json:"entities"`
	}
	stepHitsBody struct {
		Steps []StepHit `json:"steps"`
	}
)

func (h *Handler) searchMessages(r *http.Request, identifier string) (readFunc, error) {
	req, err := h.parseSearchRequest(r, messageSearchKind)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		hits, err := h.reader.SearchMessages(ctx, identifier, MessageSearch{Text: req.text, SessionID: req.filter["session_id"], Limit: req.limit, Vector: req.vector})
		return messageHitsBody{Messages: hits}, err
	}, nil
}

func (h *Handler) searchPreferences(r *http.Request, identifier string) (readFunc, error) {
	req, err := h.parseSearchRequest(r, preferenceSearchKind)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		hits, err := h.reader.SearchPreferences(ctx, identifier, PreferenceSearch{Text: req.text, Category: req.filter["category"], Limit: req.limit, Vector: req.vector})
		return preferenceHitsBody{Preferences: hits}, err
	}, nil
}

func (h *Handler) searchEntities(r *http.Request, identifier string) (readFunc, error) {
	req, err := h.parseSearchRequest(r, entitySearchKind)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		hits, err := h.reader.SearchEntities(ctx, identifier, EntitySearch{Text: req.text, Type: req.filter["type"], Limit: req.limit, Vector: req.vector})
		return entityHitsBody{Entities: hits}, err
	}, nil
}

func (h *Handler) searchSteps(r *http.Request, identifier string) (readFunc, error) {
	v := r.URL.Query()
	text, n, err := parseSearch(v, stepSearchParams, h.maxLimit)
	if err != nil {
		return nil, err
	}
	q := StepSearch{Text: text, Limit: n}
	if v.Has("success_only") {
		if q.SuccessOnly, err = parseBool("success_only", v.Get("success_only")); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context) (any, error) {
		hits, err := h.reader.SearchSteps(ctx, identifier, q)
		return stepHitsBody{Steps: hits}, err
	}, nil
}
