package query

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

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
		"sketch_size": int64(embed.SketchHeader + len(q.Vector)),
		"threshold":   q.Threshold, "limit": int64(n)}, nil
}

// The vector searches, each in two reads or more (vectorRead; one when the nodes are few, see
// candidates). The first starts at the owner
// index (the user's nodes of the label; a session's messages from its conversation), keeps
// those the kind's filters let through that have a vector of the query's length, and returns
// their ids and sketches (embed.Sketch: a byte per dimension and a bound on its error), not
// their vectors: Neo4j reads a list of 256 floats in about 20 µs and the sketch in well under
// one. Go bounds each node's cosine from its sketch (nearest) and asks for the nodes that may
// be among the nearest; the next read scores just those with vector.similarity.cosine over
// their full vectors, checks what else must hold (a message's conversation), and answers in
// the shapes of the full-text searches (search.go). Nodes written before sketches existed have
// a vector and no sketch: the first read scores them exactly. The answer is the exact one, as
// if every node were scored with vector.similarity.cosine and the best kept.
type vectorKind struct {
	v     string // the node's variable in the Cypher
	match string // the user's nodes of the label, with the kind's filters
	byID  string // the nodes of $ids by the id index, their owner, the kind's filters, and what the hit needs
	carry string // the variables byID leaves besides v
	hit   string // the answer's RETURN, ORDER BY score DESC, then id, LIMIT $limit
}

var (
	vectorMessages = vectorKind{v: "m",
		match: "MATCH (m:Message {owner: $owner}) USING INDEX m:Message(owner)",
		byID: `MATCH (m:Message {id: id}) USING INDEX SEEK m:Message(id)
WHERE m.owner = $owner
UNWIND [(c:Conversation)-[:HAS_MESSAGE]->(m) | c] AS c
WITH m, c WHERE c.owner = $owner AND ($session_id IS NULL OR c.session_id = $session_id)`,
		carry: ", c",
		hit: `RETURN m {.id, .role, .content, .timestamp, .metadata, .recorded_at, session_id: c.session_id, score: score} AS hit
ORDER BY score DESC, m.id
LIMIT $limit`}
	// vectorSessionMessages is vectorMessages of one session: its conversation's messages
	// (docs/graph.md: the derived id of the identifier and the session).
	vectorSessionMessages = func() vectorKind {
		k := vectorMessages
		k.match = `MATCH (c:Conversation {id: $conversation_id}) USING INDEX SEEK c:Conversation(id)
WHERE c.owner = $owner AND c.session_id = $session_id
UNWIND [(c)-[:HAS_MESSAGE]->(m:Message) | m] AS m
WITH m WHERE m.owner = $owner`
		return k
	}()
	vectorPreferences = vectorKind{v: "p",
		match: "MATCH (p:Preference {owner: $owner}) USING INDEX p:Preference(owner)\nWHERE ($category IS NULL OR p.category = $category)",
		byID:  "MATCH (p:Preference {id: id}) USING INDEX SEEK p:Preference(id)\nWHERE p.owner = $owner AND ($category IS NULL OR p.category = $category)",
		hit:   preferenceHit}
	vectorEntities = vectorKind{v: "e",
		match: "MATCH (e:Entity {owner: $owner}) USING INDEX e:Entity(owner)\nWHERE ($type IS NULL OR e.type = $type)",
		byID:  "MATCH (e:Entity {id: id}) USING INDEX SEEK e:Entity(id)\nWHERE e.owner = $owner AND ($type IS NULL OR e.type = $type)",
		hit: `RETURN e {.id, .name, .type, .description, .created_at, .recorded_at, score: score} AS hit
ORDER BY score DESC, e.id
LIMIT $limit`}
	vectorTraces = vectorKind{v: "t",
		match: "MATCH (t:ReasoningTrace {owner: $owner}) USING INDEX t:ReasoningTrace(owner)\nWHERE (NOT $success_only OR t.success = true)",
		byID:  "MATCH (t:ReasoningTrace {id: id}) USING INDEX SEEK t:ReasoningTrace(id)\nWHERE t.owner = $owner AND (NOT $success_only OR t.success = true)",
		hit: "RETURN t {" + traceFields + `, score: score} AS hit
ORDER BY score DESC, t.id
LIMIT $limit`}
)

// candidates is the first read: the ids and sketches of the nodes that have one, and the
// exact scores of those with a vector and no sketch. coalesce reads the vector only of a
// node without a sketch. When there are no more such nodes than $limit, every one of them
// would be scored by the next read whatever the bounds say (the cut is below them all), so
// the first read scores them itself (few, the next read's statement over their ids) and the
// search is one round trip: a user's first memories, and most of a session's.
func (k vectorKind) candidates() string {
	v := k.v
	return k.match + `
WITH ` + v + `, ` + v + `.embedding_sketch AS sk
WHERE coalesce(size(sk) = $sketch_size, ` + v + `.embedding IS NOT NULL AND size(` + v + `.embedding) = $dims)
WITH collect(CASE WHEN sk IS NOT NULL THEN ` + v + `.id END) AS ids, collect(sk) AS sketches,
     collect(CASE WHEN sk IS NULL THEN [` + v + `.id, vector.similarity.cosine(` + v + `.embedding, $vector)] END) AS exact,
     collect(` + v + `.id) AS every
CALL (every) {
  CALL (every) {
` + k.scoring("CASE WHEN size(every) <= $limit THEN every ELSE [] END") + `  }
  RETURN collect(hit) AS few
}
RETURN {ids: ids, sketches: sketches, exact: exact, all_scored: size(every) <= $limit, few: few} AS hit
`
}

// scored is the next read: the nodes of $ids scored over their full vectors, those at the
// threshold or above.
func (k vectorKind) scored() string { return k.scoring("$ids") }

// scoring scores the nodes of the ids list ids over their full vectors and returns those at
// the threshold or above, the best $limit.
func (k vectorKind) scoring(ids string) string {
	v := k.v
	return `UNWIND ` + ids + ` AS id
` + k.byID + `
WITH ` + v + k.carry + ` WHERE ` + v + `.embedding IS NOT NULL AND size(` + v + `.embedding) = $dims
WITH ` + v + k.carry + `, vector.similarity.cosine(` + v + `.embedding, $vector) AS score
WHERE score >= $threshold
` + k.hit + `
`
}

// sketchSlack widens every bound for the precision of Neo4j's vector.similarity.cosine, which
// computes in single precision: per dimension, a rounding of each input and of the sum.
const sketchSlack = 1.2e-7

// vectorRead runs a vector search of kind k with params (vectorParams' and the kind's
// filters) and returns the hits, nearest first, then by id.
//
// The first read gives each node bounds on its cosine (sketched, or exact for a node without
// a sketch). Then, until nothing is left to ask: the cut is the n-th highest lower bound of
// the nodes not known to be out that surely pass the threshold, and every node not yet
// scored whose upper bound reaches both the threshold and the cut is scored exactly by the
// next read; a node that read does not return is out (below the threshold, or failing what
// the first read did not check). When it stops, n scored nodes are at or above the cut, and
// every node not scored is below it: the scored nodes' best n are the exact answer. One next
// read is the rule; another follows only when nodes of the first turn out to be out.
func (r *Reader) vectorRead(ctx context.Context, op string, k vectorKind, params map[string]any) ([]map[string]any, error) {
	rows, err := r.read(ctx, op, k.candidates(), params)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	limit, _ := params["limit"].(int64)
	if all, _ := rows[0]["all_scored"].(bool); all {
		few, _ := rows[0]["few"].([]any)
		hits := make([]map[string]any, 0, len(few))
		for _, h := range few {
			m, ok := h.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("query %s: hit is %T, want a map", op, h)
			}
			hits = append(hits, m)
		}
		return hits, nil // ordered and limited by the statement, as the next read's are
	}
	vec, _ := params["vector"].([]float64)
	threshold, _ := params["threshold"].(float64)
	nodes, err := sketchBounds(rows[0], embed.Unit(vec))
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", op, err)
	}
	n := int(limit)
	floor := 2*threshold - 1
	scored := maps.Clone(params)
	var hits []map[string]any
	for {
		ids := nodes.wanted(n, floor)
		if len(ids) == 0 {
			break
		}
		scored["ids"], scored["limit"] = ids, int64(len(ids))
		got, err := r.read(ctx, op, k.scored(), scored)
		if err != nil {
			return nil, err
		}
		hits = append(hits, got...)
		nodes.scored(ids, got)
	}
	slices.SortFunc(hits, func(a, b map[string]any) int {
		if c := cmp.Compare(float(b, "score", 0), float(a, "score", 0)); c != 0 {
			return c
		}
		return strings.Compare(str(a, "id"), str(b, "id"))
	})
	return hits[:min(len(hits), n)], nil
}

// nodeBounds are the first read's nodes with the bounds of their cosine to the query.
type nodeBounds struct {
	id     []any
	lo, hi []float64
	state  []int8 // 0 not scored yet, 1 scored (lo = hi = its cosine), -1 out
	at     map[string]int
}

// sketchBounds reads the first read's row: the bounds of each sketch's cosine to the unit
// vector x, and the exact scores.
func sketchBounds(row map[string]any, x []float64) (*nodeBounds, error) {
	ids, _ := row["ids"].([]any)
	sketches, _ := row["sketches"].([]any)
	exact, _ := row["exact"].([]any)
	if len(ids) != len(sketches) {
		return nil, fmt.Errorf("%d ids for %d sketches", len(ids), len(sketches))
	}
	size := len(ids) + len(exact)
	b := &nodeBounds{id: make([]any, 0, size), lo: make([]float64, 0, size), hi: make([]float64, 0, size),
		state: make([]int8, size), at: make(map[string]int, size)}
	slack := float64(len(x)+8) * sketchSlack
	add := func(id any, cos, bound float64) {
		s, _ := id.(string)
		b.at[s] = len(b.id)
		b.id = append(b.id, id)
		b.lo = append(b.lo, cos-bound-slack)
		b.hi = append(b.hi, cos+bound+slack)
	}
	for i, id := range ids {
		sk, _ := sketches[i].([]byte)
		cos, bound, err := embed.Cosine(sk, x)
		if err != nil {
			return nil, fmt.Errorf("node %v: %w", id, err)
		}
		add(id, cos, bound)
	}
	for _, e := range exact {
		pair, _ := e.([]any)
		var score float64
		ok := len(pair) == 2
		if ok {
			score, ok = pair[1].(float64)
		}
		if !ok {
			return nil, fmt.Errorf("exact score %v: want [id, number]", e)
		}
		add(pair[0], 2*score-1, 0)
	}
	return b, nil
}

// wanted returns the nodes not scored yet that may be among the n best at or above floor.
func (b *nodeBounds) wanted(n int, floor float64) []any {
	sure := make([]float64, 0, len(b.id))
	for i := range b.id {
		if b.state[i] >= 0 && b.lo[i] >= floor {
			sure = append(sure, b.lo[i])
		}
	}
	cut := math.Inf(-1)
	if n > 0 && len(sure) >= n {
		slices.Sort(sure)
		cut = sure[len(sure)-n]
	}
	var out []any
	for i := range b.id {
		if b.state[i] == 0 && b.hi[i] >= floor && b.hi[i] >= cut {
			out = append(out, b.id[i])
		}
	}
	return out
}

// scored records the next read's answer for ids: the hits' exact cosines; the rest are out.
func (b *nodeBounds) scored(ids []any, hits []map[string]any) {
	for _, id := range ids {
		s, _ := id.(string)
		b.state[b.at[s]] = -1
	}
	for _, h := range hits {
		if i, ok := b.at[str(h, "id")]; ok {
			cos := 2*float(h, "score", 0) - 1
			b.state[i], b.lo[i], b.hi[i] = 1, cos, cos
		}
	}
}

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
	rows, err := r.vectorRead(ctx, "search traces", vectorTraces, params)
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
