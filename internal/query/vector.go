package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/engram-memory/engram/internal/embed"
)

// Vector search: the user's messages, preferences, entities and reasoning traces nearest to a
// vector (the library's vector search_messages, search_preferences, search_entities and
// get_similar_traces). The vectors are the nodes' embedding property, written from the events
// (given with the write or computed by the ingestor's embedder, docs/query.md "Vector
// search"); the query vector is the caller's (POST) or the query service's embedder's of q
// (GET with mode=vector).
//
// The similarity is computed exactly, over the user's own nodes only: the owner index finds
// them, and vector.similarity.cosine scores each against the query vector. Neo4j 5.26's vector
// indexes cannot filter: a query returns the k nearest nodes of every tenant, and a user's own
// nearest may lie beyond any k when other tenants hold many vectors — the library reads
// every tenant's nearest and so shows one user another's memory. An exact scan per user is
// right for each user whatever the others hold, and costs what the user has embedded
// (docs/BENCHMARKS.md has the measured cost). The score is Neo4j's cosine similarity,
// (1 + cos θ) / 2 in [0, 1], the scale of the library's vector index scores; vectors of
// another length than the query's are not compared.

// Limits of a vector search.
const (
	// maxVectorBody bounds the body of a POST search: a vector of embed.MaxDimensions
	// numbers in JSON with room for its filters.
	maxVectorBody = 256 << 10
)

// VectorQuery is what a vector search compares: the query vector, and the lowest score kept.
type VectorQuery struct {
	Vector    []float64
	Threshold float64 // 0..1; 0 keeps every compared node
}

// vectorParams validates a vector search's common parameters.
func (r *Reader) vectorParams(identifier string, q VectorQuery, n int) (map[string]any, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	if err := embed.Check(q.Vector); err != nil {
		return nil, badArg("embedding", "%v", err)
	}
	if math.IsNaN(q.Threshold) || q.Threshold < 0 || q.Threshold > 1 {
		return nil, badArg("threshold", "must be between 0 and 1, got %v", q.Threshold)
	}
	if n == 0 {
		n = min(DefaultSearchLimit, r.maxLimit)
	}
	if n, err = limit(n, r.maxLimit); err != nil {
		return nil, err
	}
	return map[string]any{"owner": owner, "vector": q.Vector, "dims": int64(len(q.Vector)),
		"threshold": q.Threshold, "limit": int64(n)}, nil
}

// The vector searches. Each starts at the owner index (the user's nodes of the label), keeps
// those with a vector of the query's length, scores them and keeps the best; the answers have
// the shapes of the full-text searches' (search.go).
const (
	vectorMessagesCypher = `
MATCH (m:Message {owner: $owner}) USING INDEX m:Message(owner)
WHERE m.embedding IS NOT NULL AND size(m.embedding) = $dims
WITH m, vector.similarity.cosine(m.embedding, $vector) AS score
WHERE score >= $threshold
UNWIND [(c:Conversation)-[:HAS_MESSAGE]->(m) | c] AS c
WITH m, score, c WHERE c.owner = $owner AND ($session_id IS NULL OR c.session_id = $session_id)
RETURN m {.id, .role, .content, .timestamp, .metadata, .recorded_at, session_id: c.session_id, score: score} AS hit
ORDER BY score DESC, m.id
LIMIT $limit
`
	vectorPreferencesCypher = `
MATCH (p:Preference {owner: $owner}) USING INDEX p:Preference(owner)
WHERE p.embedding IS NOT NULL AND size(p.embedding) = $dims AND ($category IS NULL OR p.category = $category)
WITH p, vector.similarity.cosine(p.embedding, $vector) AS score
WHERE score >= $threshold
` + preferenceHit + `
`
	vectorEntitiesCypher = `
MATCH (e:Entity {owner: $owner}) USING INDEX e:Entity(owner)
WHERE e.embedding IS NOT NULL AND size(e.embedding) = $dims AND ($type IS NULL OR e.type = $type)
WITH e, vector.similarity.cosine(e.embedding, $vector) AS score
WHERE score >= $threshold
RETURN e {.id, .name, .type, .description, .created_at, .recorded_at, score: score} AS hit
ORDER BY score DESC, e.id
LIMIT $limit
`
	vectorTracesCypher = `
MATCH (t:ReasoningTrace {owner: $owner}) USING INDEX t:ReasoningTrace(owner)
WHERE t.embedding IS NOT NULL AND size(t.embedding) = $dims AND (NOT $success_only OR t.success = true)
WITH t, vector.similarity.cosine(t.embedding, $vector) AS score
WHERE score >= $threshold
RETURN t {` + traceFields + `, score: score} AS hit
ORDER BY score DESC, t.id
LIMIT $limit
`
)

// TraceSearch is a vector search of a user's reasoning traces by task (the library's
// get_similar_traces).
type TraceSearch struct {
	VectorQuery
	SuccessOnly bool // only traces completed with success = true
	Limit       int
}

// TraceHit is a trace (without its steps) whose task is near the query, with its score.
type TraceHit struct {
	TraceSummary
	Score float64 `json:"score"`
}

// SearchTraces returns the user's traces whose task's vector is nearest q's, best first.
func (r *Reader) SearchTraces(ctx context.Context, identifier string, q TraceSearch) ([]TraceHit, error) {
	params, err := r.vectorParams(identifier, q.VectorQuery, q.Limit)
	if err != nil {
		return nil, err
	}
	params["success_only"] = q.SuccessOnly
	rows, err := r.read(ctx, "search traces", vectorTracesCypher, params)
	if err != nil {
		return nil, err
	}
	out := make([]TraceHit, 0, len(rows))
	for _, m := range rows {
		out = append(out, TraceHit{TraceSummary: traceSummaryOf(m), Score: float(m, "score", 0)})
	}
	return out, nil
}

// A search request as the handlers read it: full text, or a vector (given, or the embedder's
// of q).
type searchRequest struct {
	text   string
	vector *VectorQuery
	limit  int
	filter map[string]string // the kind's filters: session_id, category, type
	flags  map[string]bool   // success_only
}

// searchKind is what one search route takes besides q, embedding, threshold, mode and limit.
type searchKind struct {
	filters []string // free-text filters
	flags   []string // boolean parameters
	text    bool     // a full-text search exists (traces have vector search only)
}

var (
	messageSearchKind    = searchKind{filters: []string{"session_id"}, text: true}
	preferenceSearchKind = searchKind{filters: []string{"category"}, text: true}
	entitySearchKind     = searchKind{filters: []string{"type"}, text: true}
	traceSearchKind      = searchKind{flags: []string{"success_only"}}
)

// parseSearchRequest reads a search: GET with q (mode=text, the default, or mode=vector with
// the service's embedder; threshold with vector only), or POST with a JSON body holding the
// vector ({"embedding": [...], "limit", "threshold", and the kind's filters}).
func (h *Handler) parseSearchRequest(r *http.Request, k searchKind) (searchRequest, error) {
	req := searchRequest{filter: map[string]string{}, flags: map[string]bool{}}
	if r.Method == http.MethodPost {
		return req, h.parseVectorBody(r, k, &req)
	}
	v := r.URL.Query()
	allowed := slices.Concat([]string{"q", "limit", "mode", "threshold"}, k.filters, k.flags)
	if err := checkParams(v, allowed); err != nil {
		return req, err
	}
	mode := "text"
	if v.Has("mode") {
		mode = v.Get("mode")
	}
	if !k.text {
		if v.Has("mode") && mode != "vector" {
			return req, badArg("mode", "this search is by vector only: mode=vector or none")
		}
		mode = "vector"
	}
	switch mode {
	case "text", "vector":
	default:
		return req, badArg("mode", "want text or vector, got %q", clip(mode))
	}
	if !v.Has("q") {
		return req, badArg("q", "required: the words to search for")
	}
	req.text = v.Get("q")
	if mode == "text" {
		if _, err := searchWords(req.text); err != nil {
			return req, err
		}
	} else if err := vectorText(req.text); err != nil {
		return req, err
	}
	if v.Has("limit") {
		n, err := parseLimit(v, h.maxLimit)
		if err != nil {
			return req, err
		}
		req.limit = n
	}
	for _, f := range k.filters {
		s, err := searchFilter(v, f)
		if err != nil {
			return req, err
		}
		req.filter[f] = s
	}
	for _, f := range k.flags {
		if v.Has(f) {
			b, err := parseBool(f, v.Get(f))
			if err != nil {
				return req, err
			}
			req.flags[f] = b
		}
	}
	if mode == "text" {
		if v.Has("threshold") {
			return req, badArg("threshold", "only with mode=vector: a full-text score has no fixed scale")
		}
		return req, nil
	}
	vq := VectorQuery{}
	if v.Has("threshold") {
		t, err := strconv.ParseFloat(v.Get("threshold"), 64)
		if err != nil {
			return req, badArg("threshold", "not a number: %q", clip(v.Get("threshold")))
		}
		vq.Threshold = t
	}
	if h.embedder == nil {
		return req, badArg("mode", "vector search of q needs an embedder, and this service has none (EMBEDDER); POST the query vector instead")
	}
	vec, err := h.embedder.Embed(req.text)
	if err != nil {
		return req, fmt.Errorf("embedder %s: %w", h.embedder.Name(), err)
	}
	if vec == nil {
		return req, badArg("q", "%q has no word to embed", clip(req.text))
	}
	vq.Vector = vec
	req.vector = &vq
	return req, nil
}

// maxVectorQueryRunes bounds q of a search by vector: as long as the longest text a vector is
// made of (a trace's task, a preference), not the full-text search's 1000 characters and 64
// words, which bound Lucene clauses.
const maxVectorQueryRunes = 65536

// vectorText checks q of a search by vector; whether it has a word to embed is the
// embedder's to say.
func vectorText(q string) error { return queryText(q, maxVectorQueryRunes, "the text to search by") }

// parseVectorBody reads a POST search's body.
func (h *Handler) parseVectorBody(r *http.Request, k searchKind, req *searchRequest) error {
	if len(r.URL.Query()) > 0 {
		for name := range r.URL.Query() {
			if name != "consistency" {
				return badArg(name, "a POST search takes its parameters in the body (only consistency may be in the query)")
			}
		}
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxVectorBody+1))
	if err != nil {
		return badArg("body", "cannot read: %v", err)
	}
	if len(raw) > maxVectorBody {
		return badArg("body", "larger than %d bytes", maxVectorBody)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return badArg("body", "want a JSON object with embedding (and limit, threshold, filters)")
	}
	known := map[string]bool{"embedding": true, "limit": true, "threshold": true}
	for _, f := range k.filters {
		known[f] = true
	}
	for _, f := range k.flags {
		known[f] = true
	}
	for name := range fields {
		if !known[name] {
			return badArg(name, "unknown field")
		}
	}
	vq := VectorQuery{}
	if err := decodeField(fields, "embedding", &vq.Vector); err != nil {
		return err
	}
	if vq.Vector == nil {
		return badArg("embedding", "required: the query vector")
	}
	if err := decodeField(fields, "threshold", &vq.Threshold); err != nil {
		return err
	}
	if _, ok := fields["limit"]; ok {
		var n int
		if err := decodeField(fields, "limit", &n); err != nil {
			return err
		}
		if n, err = limit(n, h.maxLimit); err != nil {
			return err
		}
		req.limit = n
	}
	for _, f := range k.filters {
		var s string
		if err := decodeField(fields, f, &s); err != nil {
			return err
		}
		if _, ok := fields[f]; ok {
			if err := checkText(f, s, maxTextRunes); err != nil {
				return err
			}
		}
		req.filter[f] = s
	}
	for _, f := range k.flags {
		var b bool
		if err := decodeField(fields, f, &b); err != nil {
			return err
		}
		req.flags[f] = b
	}
	req.vector = &vq
	return nil
}

// decodeField decodes fields[name] into dst when present; a null leaves dst as it is.
func decodeField(fields map[string]json.RawMessage, name string, dst any) error {
	raw, ok := fields[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return badArg(name, "wrong type: %s", ute.Value)
		}
		return badArg(name, "%v", err)
	}
	return nil
}

func (h *Handler) searchTraces(r *http.Request, identifier string) (readFunc, error) {
	req, err := h.parseSearchRequest(r, traceSearchKind)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (any, error) {
		hits, err := h.reader.SearchTraces(ctx, identifier, TraceSearch{VectorQuery: *req.vector, SuccessOnly: req.flags["success_only"], Limit: req.limit})
		return traceHitsBody{Traces: hits}, err
	}, nil
}

type traceHitsBody struct {
	Traces []TraceHit `json:"traces"`
}
