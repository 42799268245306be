package client

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// SearchQuery is a search: by default full text, the words of Text (any of them matches,
// Lucene's syntax has no meaning in it); by vector when Embedding is set (the query vector,
// compared with the vectors the writes carried) or ByVector is (Text embedded by the query
// service's embedder, EMBEDDER). A filter of the kind searched narrows, and Limit (1..1000;
// default 10, the seed's) bounds. A filter another kind takes (Category on SearchMessages,
// say) is refused by the query service (an error matching ErrInvalid), never ignored.
type SearchQuery struct {
	Text        string
	SessionID   string // SearchMessages: only this session's messages
	Category    string // SearchPreferences: only this category (exact)
	Type        string // SearchEntities: only this type (exact, case-sensitive)
	SuccessOnly bool   // SearchSteps, SearchTraces: only those of traces completed with success
	Limit       int
	// Vector search (docs/query.md, "Vector search"): scores are Neo4j's cosine similarity,
	// (1 + cos θ) / 2 in [0, 1]; Threshold drops lower ones.
	Embedding []float64
	ByVector  bool
	Threshold float64
}

// TraceHit is a trace (without its steps) whose task a vector search found near the query
// (the seed's get_similar_traces).
type TraceHit struct {
	Trace
	Score float64 `json:"score"`
}

// SearchTraces finds the user's traces whose task is nearest the query, by vector only
// (q.Embedding, or q.Text with q.ByVector implied): the seed's get_similar_traces.
func (r *Reasoning) SearchTraces(ctx context.Context, identifier string, q SearchQuery, opts ...ReadOption) ([]TraceHit, error) {
	var out struct {
		Traces []TraceHit `json:"traces"`
	}
	if q.Embedding == nil {
		q.ByVector = false // the route embeds q itself: it has no full text
	}
	if err := r.c.search(ctx, "search_traces", identifier, "traces", q, opts, &out); err != nil {
		return nil, err
	}
	for i := range out.Traces {
		out.Traces[i].User = identifier
	}
	return out.Traces, nil
}

// MessageHit is a message a search found, with its session (Message.SessionID) and score.
type MessageHit struct {
	Message
	Score float64 `json:"score"`
}

// PreferenceHit is a preference a search found; superseded ones are found too (SupersededBy).
type PreferenceHit struct {
	Preference
	Score float64 `json:"score"`
}

// EntityHit is an entity a search found.
type EntityHit struct {
	Entity
	Description *string    `json:"description"`
	CreatedAt   *time.Time `json:"created_at"`
	RecordedAt  *time.Time `json:"recorded_at"`
	Score       float64    `json:"score"`
}

// StepHit is a reasoning step a search found (Step.TraceID set), with its trace's session,
// task, outcome and success: the seed's ReasoningStepWithContext.
type StepHit struct {
	Step
	SessionID string  `json:"session_id"`
	Task      string  `json:"task"`
	Outcome   *string `json:"outcome"`
	Success   *bool   `json:"success"`
	Score     float64 `json:"score"`
}

// SearchMessages finds the user's messages that contain any word of q.Text, best match first
// (the seed's search_messages, by full text rather than embeddings); q.SessionID narrows.
// opts take AtLeast. "" is the shared tenant.
func (s *ShortTerm) SearchMessages(ctx context.Context, identifier string, q SearchQuery, opts ...ReadOption) ([]MessageHit, error) {
	var out struct {
		Messages []MessageHit `json:"messages"`
	}
	err := s.c.search(ctx, "search_messages", identifier, "messages", q, opts, &out)
	return out.Messages, err
}

// SearchPreferences finds the user's preferences, superseded ones too, whose preference or
// context contains any word of q.Text, best match first (the seed's search_preferences);
// q.Category narrows.
func (l *LongTerm) SearchPreferences(ctx context.Context, identifier string, q SearchQuery, opts ...ReadOption) ([]PreferenceHit, error) {
	var out struct {
		Preferences []PreferenceHit `json:"preferences"`
	}
	if err := l.c.search(ctx, "search_preferences", identifier, "preferences", q, opts, &out); err != nil {
		return nil, err
	}
	for i := range out.Preferences {
		out.Preferences[i].User = identifier
	}
	return out.Preferences, nil
}

// SearchEntities finds the user's entities whose name or description contains any word of
// q.Text, best match first (the seed's search_entities); q.Type narrows.
func (l *LongTerm) SearchEntities(ctx context.Context, identifier string, q SearchQuery, opts ...ReadOption) ([]EntityHit, error) {
	var out struct {
		Entities []EntityHit `json:"entities"`
	}
	err := l.c.search(ctx, "search_entities", identifier, "entities", q, opts, &out)
	return out.Entities, err
}

// SearchSteps finds the user's reasoning steps whose thought, action or observation contains
// any word of q.Text, best match first, each with its trace (the seed's search_steps);
// q.SuccessOnly keeps the steps of successful traces.
func (r *Reasoning) SearchSteps(ctx context.Context, identifier string, q SearchQuery, opts ...ReadOption) ([]StepHit, error) {
	var out struct {
		Steps []struct {
			Step
			TraceID   string  `json:"trace_id"`
			SessionID string  `json:"session_id"`
			Task      string  `json:"task"`
			Outcome   *string `json:"outcome"`
			Success   *bool   `json:"success"`
			Score     float64 `json:"score"`
		} `json:"steps"`
	}
	if err := r.c.search(ctx, "search_steps", identifier, "steps", q, opts, &out); err != nil {
		return nil, err
	}
	hits := make([]StepHit, 0, len(out.Steps))
	for _, h := range out.Steps {
		h.Step.TraceID = h.TraceID
		hits = append(hits, StepHit{Step: h.Step, SessionID: h.SessionID, Task: h.Task, Outcome: h.Outcome, Success: h.Success, Score: h.Score})
	}
	return hits, nil
}

// search GETs the search of one kind with the parameters q sets, or POSTs q.Embedding.
func (c *Client) search(ctx context.Context, op, identifier, kind string, q SearchQuery, opts []ReadOption, out any) error {
	path := readPath(identifier) + "/search/" + url.PathEscape(kind)
	if q.Embedding != nil {
		body := map[string]any{"embedding": q.Embedding}
		for k, s := range map[string]string{"session_id": q.SessionID, "category": q.Category, "type": q.Type} {
			if s != "" {
				body[k] = s
			}
		}
		if q.SuccessOnly {
			body["success_only"] = true
		}
		if q.Limit != 0 {
			body["limit"] = q.Limit
		}
		if q.Threshold != 0 {
			body["threshold"] = q.Threshold
		}
		return c.post(ctx, op, identifier, path, consistency(collectRead(opts)), body, out)
	}
	v := consistency(collectRead(opts))
	v.Set("q", q.Text)
	if q.ByVector {
		v.Set("mode", "vector")
	}
	if q.Threshold != 0 {
		v.Set("threshold", strconv.FormatFloat(q.Threshold, 'g', -1, 64))
	}
	for k, s := range map[string]string{"session_id": q.SessionID, "category": q.Category, "type": q.Type} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.SuccessOnly {
		v.Set("success_only", "true")
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return c.read(ctx, op, identifier, path, v, out)
}
