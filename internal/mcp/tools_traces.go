package mcp

import (
	"context"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
)

// StartTraceIn is the input of memory_start_trace.
type StartTraceIn struct {
	UserArg
	SessionID string         `json:"session_id" jsonschema:"the session the task belongs to"`
	Task      string         `json:"task" jsonschema:"what you are working on"`
	Metadata  map[string]any `json:"metadata,omitempty" jsonschema:"a JSON object kept with the trace (e.g. the model's name)"`
}

// StartTraceOut is what memory_start_trace answers.
type StartTraceOut struct {
	TraceID   string `json:"trace_id" jsonschema:"pass it to memory_record_step and memory_complete_trace"`
	SessionID string `json:"session_id"`
	Task      string `json:"task"`
	Write
}

// ToolCallIn is a tool call to record.
type ToolCallIn struct {
	ToolName   string `json:"tool_name" jsonschema:"the tool's name"`
	Arguments  any    `json:"arguments,omitempty" jsonschema:"the arguments it was called with (any JSON)"`
	Result     any    `json:"result,omitempty" jsonschema:"what it returned (any JSON)"`
	Status     string `json:"status,omitempty" jsonschema:"how the call ended (default success)"`
	DurationMS *int64 `json:"duration_ms,omitempty" jsonschema:"how long it took, in milliseconds"`
	Error      string `json:"error,omitempty" jsonschema:"the error it reported, if any"`
}

// RecordStepIn is the input of memory_record_step.
type RecordStepIn struct {
	UserArg
	TraceID     string      `json:"trace_id" jsonschema:"the trace, from memory_start_trace"`
	Thought     string      `json:"thought,omitempty" jsonschema:"what you thought"`
	Action      string      `json:"action,omitempty" jsonschema:"what you decided or did"`
	Observation string      `json:"observation,omitempty" jsonschema:"what you observed as a result"`
	StepNumber  int         `json:"step_number,omitempty" jsonschema:"the step's number (default: the next)"`
	ToolCall    *ToolCallIn `json:"tool_call,omitempty" jsonschema:"the tool call this step made, recorded with it"`
}

// RecordStepOut is what memory_record_step answers.
type RecordStepOut struct {
	StepID     string `json:"step_id" jsonschema:"the step's id (for memory_record_tool_call)"`
	TraceID    string `json:"trace_id"`
	ToolCallID string `json:"tool_call_id,omitempty" jsonschema:"the id of the tool call recorded with the step, if any"`
	Write
}

// RecordToolCallIn is the input of memory_record_tool_call.
type RecordToolCallIn struct {
	UserArg
	TraceID string `json:"trace_id" jsonschema:"the trace the step belongs to"`
	StepID  string `json:"step_id" jsonschema:"the step that made the call, from memory_record_step"`
	ToolCallIn
}

// RecordToolCallOut is what memory_record_tool_call answers.
type RecordToolCallOut struct {
	ToolCallID string `json:"tool_call_id"`
	Write
}

// CompleteTraceIn is the input of memory_complete_trace.
type CompleteTraceIn struct {
	UserArg
	TraceID string `json:"trace_id" jsonschema:"the trace to close"`
	Outcome string `json:"outcome,omitempty" jsonschema:"how the task ended, in a sentence"`
	Success *bool  `json:"success,omitempty" jsonschema:"whether the task succeeded"`
}

// CompleteTraceOut is what memory_complete_trace answers.
type CompleteTraceOut struct {
	TraceID string `json:"trace_id"`
	Write
}

// GetTraceIn is the input of memory_get_trace.
type GetTraceIn struct {
	UserArg
	TraceID string `json:"trace_id" jsonschema:"the trace's id"`
}

// ListTracesIn is the input of memory_list_traces.
type ListTracesIn struct {
	UserArg
	SessionID string `json:"session_id,omitempty" jsonschema:"only this session's traces"`
	Limit     int    `json:"limit,omitempty" jsonschema:"most traces to return"`
}

// TracesOut is what memory_list_traces answers.
type TracesOut struct {
	Traces []Trace `json:"traces" jsonschema:"latest started first, without steps"`
}

// ToolStatsIn is the input of memory_get_tool_stats.
type ToolStatsIn struct {
	UserArg
	ToolName string `json:"tool_name,omitempty" jsonschema:"only this tool"`
	Limit    int    `json:"limit,omitempty" jsonschema:"most tools to return"`
}

// ToolStatsOut is what memory_get_tool_stats answers.
type ToolStatsOut struct {
	Tools []ToolStats `json:"tools" jsonschema:"most called first"`
}

func addTraceTools(r *registry) {
	toolCall := func(path ...string) func(*jsonschema.Schema) {
		return func(s *jsonschema.Schema) {
			length(append(path, "tool_name"), 1, 256)(s)
			enum(append(path, "status"), events.ToolCallStatuses...)(s)
			bounds(append(path, "duration_ms"), 0, events.MaxToolCallDurationMS)(s)
		}
	}
	id := func(name string) func(*jsonschema.Schema) { return length([]string{name}, 36, 36) }

	add(r, &sdk.Tool{
		Name: "memory_start_trace",
		Description: "Begin recording your reasoning on a task of the session (a reasoning trace). Then call memory_record_step for each " +
			"step, with the tool call it made, and memory_complete_trace at the end. Returns the trace_id.",
		Annotations: writes,
	}, schemaFor[StartTraceIn](length([]string{"session_id"}, 1, 256), length([]string{"task"}, 1, 65536)), startTrace)

	add(r, &sdk.Tool{
		Name: "memory_record_step",
		Description: "Record one step of a reasoning trace: what you thought, did and observed, and optionally the tool call the step made " +
			"(tool_call), stored with it. Steps are numbered in order unless step_number is given. Returns the step_id (and the " +
			"tool_call_id). Both are validated before either is stored.",
		Annotations: writes,
	}, schemaFor[RecordStepIn](id("trace_id"), bounds([]string{"step_number"}, 0, 1_000_000), toolCall("tool_call")), recordStep)

	add(r, &sdk.Tool{
		Name: "memory_record_tool_call",
		Description: "Record a tool call made in a step of a trace (when it was not given to memory_record_step): its name, JSON arguments " +
			"and result, status and duration. These calls are what memory_get_tool_stats counts.",
		Annotations: writes,
	}, schemaFor[RecordToolCallIn](id("trace_id"), id("step_id"), toolCall()), recordToolCall)

	add(r, &sdk.Tool{
		Name:        "memory_complete_trace",
		Description: "Close a reasoning trace with its outcome and whether it succeeded.",
		Annotations: writes,
	}, schemaFor[CompleteTraceIn](id("trace_id")), completeTrace)

	add(r, &sdk.Tool{
		Name: "memory_get_trace",
		Description: "Read one of the user's reasoning traces by trace_id: its task, outcome, and every step in order with the tool calls " +
			"each made. Use it to explain how a decision was reached. An unknown trace (or another user's) is not found.",
		Annotations: readOnly,
	}, schemaFor[GetTraceIn](id("trace_id")), getTrace)

	add(r, &sdk.Tool{
		Name: "memory_list_traces",
		Description: "List the user's reasoning traces, latest started first, with task, outcome, success and step count (no steps: read " +
			"one with memory_get_trace); session_id keeps one session's.",
		Annotations: readOnly,
	}, schemaFor[ListTracesIn](limit(20, 1000), length([]string{"session_id"}, 1, 256)), listTraces)

	add(r, &sdk.Tool{
		Name: "memory_get_tool_stats",
		Description: "How the tool calls recorded for this user fared, per tool: calls, successes, failures, success rate, average " +
			"duration and last use, most called first. Computed from this user's own calls only. Use it to prefer tools that work.",
		Annotations: readOnly,
	}, schemaFor[ToolStatsIn](limit(100, 1000), length([]string{"tool_name"}, 1, 256)), toolStats)
}

func startTrace(ctx context.Context, c *call, in StartTraceIn) (StartTraceOut, error) {
	out := StartTraceOut{SessionID: in.SessionID, Task: in.Task}
	t, err := c.c.Reasoning.StartTrace(ctx, in.SessionID, in.Task, c.writeOpts(client.WithMetadata(in.Metadata))...)
	if err != nil {
		return out, err
	}
	out.TraceID = t.ID
	out.Write, err = c.settle(ctx, t.Receipt)
	return out, err
}

// toolCallOpts are the client options of a tool call.
func toolCallOpts(tc ToolCallIn) []client.WriteOption {
	var opts []client.WriteOption
	if tc.Arguments != nil {
		opts = append(opts, client.WithArguments(tc.Arguments))
	}
	if tc.Result != nil {
		opts = append(opts, client.WithResult(tc.Result))
	}
	if tc.Status != "" {
		opts = append(opts, client.WithStatus(tc.Status))
	}
	if tc.DurationMS != nil {
		opts = append(opts, client.WithDuration(time.Duration(*tc.DurationMS)*time.Millisecond))
	}
	if tc.Error != "" {
		opts = append(opts, client.WithError(tc.Error))
	}
	return opts
}

func recordStep(ctx context.Context, c *call, in RecordStepIn) (RecordStepOut, error) {
	out := RecordStepOut{TraceID: in.TraceID}
	// Validate the tool call as the ingestor will before the step is stored: the step is not
	// written when its tool call would be refused.
	if tc := in.ToolCall; tc != nil {
		cmd := &ingest.RecordToolCall{UserIdentifier: c.user, TraceID: in.TraceID, StepID: events.NewID(), ToolName: tc.ToolName,
			Arguments: tc.Arguments, Result: tc.Result, Status: tc.Status, DurationMS: tc.DurationMS, Error: tc.Error}
		if _, _, err := ingest.Build(cmd, c.m.settings()); err != nil {
			return out, toolError(err, toolCallField)
		}
	}
	opts := []client.WriteOption{client.Thought(in.Thought), client.Action(in.Action), client.Observation(in.Observation)}
	if in.StepNumber != 0 {
		opts = append(opts, client.StepNumber(in.StepNumber))
	}
	s, err := c.c.Reasoning.AddStep(ctx, in.TraceID, c.writeOpts(opts...)...)
	if err != nil {
		return out, err
	}
	out.StepID = s.ID
	// The step's fate first: a step the projector refuses (an unknown trace, say) gets no
	// tool call.
	if out.Write, err = c.settle(ctx, s.Receipt); err != nil || in.ToolCall == nil {
		return out, err
	}
	call, err := c.c.Reasoning.RecordToolCall(ctx, in.TraceID, s.ID, in.ToolCall.ToolName, c.writeOpts(toolCallOpts(*in.ToolCall)...)...)
	if err != nil {
		return out, &StepStoredError{StepID: s.ID, Err: toolError(err, toolCallField)}
	}
	out.ToolCallID = call.ID
	if out.Write, err = c.settle(ctx, call.Receipt); err != nil {
		return out, &StepStoredError{StepID: s.ID, Err: toolError(err, toolCallField)}
	}
	return out, nil
}

// toolCallField places a tool call's fields under tool_call.
func toolCallField(f string) string {
	switch f {
	case "user_identifier", "trace_id", "step_id":
		return f
	}
	return under("tool_call")(f)
}

// StepStoredError is a memory_record_step whose step was stored but whose tool call was then
// refused (Engram unavailable, say): the step exists, the call can be recorded again with
// memory_record_tool_call.
type StepStoredError struct {
	StepID string
	Err    error
}

func (e *StepStoredError) Error() string {
	return e.Err.Error() + " (the step was stored as " + e.StepID + "; record the tool call again with memory_record_tool_call)"
}

func (e *StepStoredError) Unwrap() error { return e.Err }

func recordToolCall(ctx context.Context, c *call, in RecordToolCallIn) (RecordToolCallOut, error) {
	var out RecordToolCallOut
	tc, err := c.c.Reasoning.RecordToolCall(ctx, in.TraceID, in.StepID, in.ToolName, c.writeOpts(toolCallOpts(in.ToolCallIn)...)...)
	if err != nil {
		return out, err
	}
	out.ToolCallID = tc.ID
	out.Write, err = c.settle(ctx, tc.Receipt)
	return out, err
}

func completeTrace(ctx context.Context, c *call, in CompleteTraceIn) (CompleteTraceOut, error) {
	out := CompleteTraceOut{TraceID: in.TraceID}
	opts := []client.WriteOption{client.WithOutcome(in.Outcome)}
	if in.Success != nil {
		opts = append(opts, client.WithSuccess(*in.Success))
	}
	r, err := c.c.Reasoning.CompleteTrace(ctx, in.TraceID, c.writeOpts(opts...)...)
	if err != nil {
		return out, err
	}
	out.Write, err = c.settle(ctx, r)
	return out, err
}

func getTrace(ctx context.Context, c *call, in GetTraceIn) (Trace, error) {
	t, err := c.c.Reasoning.GetTrace(ctx, c.user, in.TraceID, c.readOpts()...)
	if err != nil {
		return Trace{}, err
	}
	out := fromTrace(*t)
	if out.Steps == nil {
		out.Steps = []Step{}
	}
	return out, nil
}

func listTraces(ctx context.Context, c *call, in ListTracesIn) (TracesOut, error) {
	var opts []client.ReadOption
	if in.SessionID != "" {
		opts = append(opts, client.InSession(in.SessionID))
	}
	if in.Limit != 0 {
		opts = append(opts, client.Limit(in.Limit))
	}
	ts, err := c.c.Reasoning.ListTraces(ctx, c.user, c.readOpts(opts...)...)
	if err != nil {
		return TracesOut{Traces: []Trace{}}, err
	}
	return TracesOut{Traces: fromTraces(ts)}, nil
}

func toolStats(ctx context.Context, c *call, in ToolStatsIn) (ToolStatsOut, error) {
	var opts []client.ReadOption
	if in.ToolName != "" {
		opts = append(opts, client.ForTool(in.ToolName))
	}
	if in.Limit != 0 {
		opts = append(opts, client.Limit(in.Limit))
	}
	ts, err := c.c.Reasoning.GetToolStats(ctx, c.user, c.readOpts(opts...)...)
	if err != nil {
		return ToolStatsOut{Tools: []ToolStats{}}, err
	}
	return ToolStatsOut{Tools: fromToolStats(ts)}, nil
}
