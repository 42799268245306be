package query

import (
	"context"
	"sort"
)

const traceFields = `.id, .session_id, .task, .outcome, .success, .started_at, .completed_at, .metadata, .recorded_at,
  step_count: COUNT { (t)-[:HAS_STEP]->(:ReasoningStep) }`

const (
	tracesOf = `
MATCH (u:User {identifier: $identifier})
USING INDEX SEEK u:User(identifier)
WHERE u.owner = $owner
UNWIND [(u)-[:HAS_TRACE]->(t:ReasoningTrace) | t] AS t
WITH t WHERE t.owner = $owner` + tracesOrdered
	tracesOrdered = `
  AND ($session_id IS NULL OR t.session_id = $session_id)
RETURN t {` + traceFields + `} AS trace
ORDER BY t.started_at DESC, t.id DESC
LIMIT $limit
`
)

// traceByID reaches the trace through the user's HAS_TRACE edge: another user's trace id
// finds nothing. Steps and tool calls are collected by expanding from the trace and filtered
// by owner afterwards, so the planner follows edges instead of seeking the owner's nodes.
const (
	traceByID = `
MATCH (u:User {identifier: $identifier})-[:HAS_TRACE]->(t:ReasoningTrace {id: $trace_id})
USING INDEX SEEK u:User(identifier)
USING INDEX SEEK t:ReasoningTrace(id)
WHERE u.owner = $owner AND t.owner = u.owner` + traceDetail
	traceDetail = `
RETURN t {` + traceFields + `,
  steps: [x IN [(t)-[hs:HAS_STEP]->(s:ReasoningStep) | s {
    .id, .step_number, .thought, .action, .observation, .timestamp, .owner, order: hs.order,
    tool_calls: [c IN [(s)-[:USES_TOOL]->(c:ToolCall) | c {
      .id, .tool_name, .arguments, .result, .status, .duration_ms, .error, .timestamp, .owner}]
      WHERE c.owner = $owner]}] WHERE x.owner = $owner]
} AS trace
`
)

// TraceQuery selects a user's traces. Its zero value is the latest DefaultLimit traces of
// every session.
type TraceQuery struct {
	SessionID string // only the traces of this session when set
	Limit     int    // 1..the Reader's max limit; 0 means DefaultLimit
}

// Traces returns the user's traces, latest started first, without their steps. An unknown
// user has none; "" is the shared tenant.
func (r *Reader) Traces(ctx context.Context, identifier string, q TraceQuery) ([]TraceSummary, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	var session any
	if q.SessionID != "" {
		if err := checkText("session_id", q.SessionID, maxTextRunes); err != nil {
			return nil, err
		}
		session = q.SessionID
	}
	n, err := limit(q.Limit, r.maxLimit)
	if err != nil {
		return nil, err
	}
	rows, err := r.read(ctx, "traces", pick(identifier, tracesOf, sharedTraces),
		map[string]any{"identifier": identifier, "owner": owner, "session_id": session, "limit": int64(n)})
	if err != nil {
		return nil, err
	}
	out := make([]TraceSummary, 0, len(rows))
	for _, m := range rows {
		out = append(out, traceSummaryOf(m))
	}
	return out, nil
}

// Trace returns one of the user's traces with its steps in order (HAS_STEP order, then
// step_number) and each step's tool calls in time order, or ErrNotFound. "" is the shared
// tenant.
func (r *Reader) Trace(ctx context.Context, identifier, traceID string) (Trace, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return Trace{}, err
	}
	if err := checkText("trace_id", traceID, maxTextRunes); err != nil {
		return Trace{}, err
	}
	rows, err := r.read(ctx, "trace", pick(identifier, traceByID, sharedTraceByID),
		map[string]any{"identifier": identifier, "owner": owner, "trace_id": traceID})
	if err != nil {
		return Trace{}, err
	}
	if len(rows) == 0 {
		return Trace{}, ErrNotFound
	}
	m := rows[0]
	t := Trace{TraceSummary: traceSummaryOf(m), Steps: []Step{}}
	for _, sm := range mapList(m, "steps") {
		s := Step{
			ID:          str(sm, "id"),
			StepNumber:  int64p(sm, "step_number"),
			Order:       int64p(sm, "order"),
			Thought:     strp(sm, "thought"),
			Action:      strp(sm, "action"),
			Observation: strp(sm, "observation"),
			Timestamp:   timep(sm, "timestamp"),
			ToolCalls:   toolCallsOf(sm),
		}
		t.Steps = append(t.Steps, s)
	}
	sort.SliceStable(t.Steps, func(i, j int) bool {
		a, b := t.Steps[i], t.Steps[j]
		if c := cmpInt(a.Order, b.Order); c != 0 {
			return c < 0
		}
		if c := cmpInt(a.StepNumber, b.StepNumber); c != 0 {
			return c < 0
		}
		if c := cmpTime(a.Timestamp, b.Timestamp); c != 0 {
			return c < 0
		}
		return a.ID < b.ID
	})
	return t, nil
}

// toolCallsOf reads the tool calls of a step (Trace, SearchSteps), in time order, then by id.
func toolCallsOf(m map[string]any) []ToolCall {
	out := []ToolCall{}
	for _, cm := range mapList(m, "tool_calls") {
		out = append(out, ToolCall{
			ID:         str(cm, "id"),
			ToolName:   str(cm, "tool_name"),
			Arguments:  rawJSON(cm, "arguments", nil),
			Result:     rawJSON(cm, "result", nil),
			Status:     str(cm, "status"),
			DurationMS: int64p(cm, "duration_ms"),
			Error:      strp(cm, "error"),
			Timestamp:  timep(cm, "timestamp"),
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if c := cmpTime(a.Timestamp, b.Timestamp); c != 0 {
			return c < 0
		}
		return a.ID < b.ID
	})
	return out
}

func traceSummaryOf(m map[string]any) TraceSummary {
	var steps int64
	if n := int64p(m, "step_count"); n != nil {
		steps = *n
	}
	return TraceSummary{
		ID:          str(m, "id"),
		SessionID:   str(m, "session_id"),
		Task:        str(m, "task"),
		Outcome:     strp(m, "outcome"),
		Success:     boolp(m, "success"),
		StartedAt:   timep(m, "started_at"),
		CompletedAt: timep(m, "completed_at"),
		Metadata:    object(m, "metadata"),
		StepCount:   steps,
		RecordedAt:  timep(m, "recorded_at"),
	}
}
