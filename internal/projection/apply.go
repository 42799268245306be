package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// Outcome says what Apply did with a batch.
type Outcome struct {
	// Applied counts the events whose effects were written, by kind.
	Applied map[events.Kind]int
	// Duplicates counts events whose effects were already in the graph (nothing written).
	Duplicates int
	// Rejected lists the events that wrote nothing and belong in the dead-letter stream.
	Rejected []*Rejection
}

// Apply writes the effects of batch, in stored order, in tx. It is the one projection code
// path: the projector calls it with the records of a partition batch, replay with records it
// reads from the stream. Apply is idempotent (applying a batch twice leaves the graph as
// applying it once) and deterministic (everything written comes from the records).
//
// Consecutive runs of events are grouped by kind into one UNWIND statement each. An event may
// join a run that started before other tenants' events, never before its own tenant's earlier
// events: tenants never share a node but the Tool aggregates, whose updates commute, so the
// graph is the one the stored order gives.
//
// Events that cannot be applied (another owner's id, a missing reference, a conflict) write
// nothing and are returned in Outcome.Rejected; an error means the transaction is unusable
// and must be rolled back.
func Apply(ctx context.Context, tx neo4j.ManagedTransaction, batch []Record) (Outcome, error) {
	out := Outcome{Applied: map[events.Kind]int{}}
	if err := lockTools(ctx, tx, batch); err != nil {
		return out, err
	}
	for _, run := range plan(batch) {
		rows := make([]any, 0, len(run.records))
		bySeq := make(map[int64]Record, len(run.records))
		for _, r := range run.records {
			m, err := row(r)
			if err != nil {
				return out, err
			}
			rows = append(rows, m)
			bySeq[int64(r.Sequence)] = r
		}
		res, err := tx.Run(ctx, statements[run.kind].cypher, map[string]any{"rows": rows})
		if err != nil {
			return out, fmt.Errorf("apply %d %s events: %w", len(rows), run.kind, err)
		}
		recs, err := res.Collect(ctx)
		if err != nil {
			return out, fmt.Errorf("apply %d %s events: %w", len(rows), run.kind, err)
		}
		if len(recs) != len(rows) {
			return out, fmt.Errorf("apply %d %s events: %d results", len(rows), run.kind, len(recs))
		}
		for _, rec := range recs {
			seq, _, err := neo4j.GetRecordValue[int64](rec, "seq")
			if err != nil {
				return out, fmt.Errorf("apply %s events: %w", run.kind, err)
			}
			status, _, err := neo4j.GetRecordValue[string](rec, "status")
			if err != nil {
				return out, fmt.Errorf("apply %s events: %w", run.kind, err)
			}
			switch status {
			case "ok":
				out.Applied[run.kind]++
			case "duplicate":
				out.Duplicates++
			default:
				r := bySeq[seq]
				out.Rejected = append(out.Rejected, &Rejection{Sequence: uint64(seq), Reason: Reason(status),
					Err: rejectionError(r, Reason(status))})
			}
		}
	}
	return out, nil
}

// lockTools takes the locks of the existing Tool nodes the batch's tool calls count on, in
// name order, before anything else: concurrent partitions then queue for a Tool instead of
// deadlocking over it (which Neo4j would resolve by failing one of them).
func lockTools(ctx context.Context, tx neo4j.ManagedTransaction, batch []Record) error {
	names := map[string]bool{}
	for _, r := range batch {
		if d, ok := r.Event.Data.(events.ToolCallRecorded); ok {
			names[d.ToolName] = true
		}
	}
	if len(names) == 0 {
		return nil
	}
	list := make([]any, 0, len(names))
	for _, n := range sortedKeys(names) {
		list = append(list, n)
	}
	res, err := tx.Run(ctx, cypherLockTools, map[string]any{"names": list})
	if err != nil {
		return fmt.Errorf("lock tools: %w", err)
	}
	if _, err := res.Consume(ctx); err != nil {
		return fmt.Errorf("lock tools: %w", err)
	}
	return nil
}

// Warm has Neo4j plan every statement of the projection, so that the first batches do not
// wait for the planner: it applies one made-up event of every kind, locks a made-up
// checkpoint, and rolls all of it back. (Neo4j caches a plan per query text and parameter
// types, so the rows must look like real ones.)
func Warm(ctx context.Context, d neo4j.DriverWithContext, database string) error {
	sess := d.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite, DatabaseName: database})
	defer func() { _ = sess.Close(context.WithoutCancel(ctx)) }()
	tx, err := sess.BeginTransaction(ctx)
	if err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := LockCheckpoint(ctx, tx, "engram-warm-up", 0); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	if _, err := Apply(ctx, tx, warmUpBatch()); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	if err := WriteCheckpoint(ctx, tx, "engram-warm-up", 1, time.Unix(0, 0)); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	return nil
}

// warmUpBatch is one event of every kind, each referring to the ones before.
func warmUpBatch() []Record {
	const user = "engram-warm-up@engram.invalid"
	id := func(n byte) string { return fmt.Sprintf("00000000-0000-7000-8000-0000000000%02x", n) }
	at := time.Unix(0, 0).UTC()
	ms := int64(1)
	ok := true
	data := []any{
		events.UserUpserted{UserID: events.UserID(user), Identifier: user, Attributes: map[string]any{"k": "v"}},
		events.MessageAdded{MessageID: id(1), ConversationID: events.ConversationID(user, "s"), SessionID: "s", Role: "user", Content: "c", Title: "t"},
		events.PreferenceAdded{PreferenceID: id(2), Category: "c", Preference: "p", AppliesTo: []events.EntityRef{{Name: "n", Type: "t"}}},
		events.PreferenceAdded{PreferenceID: id(3), Category: "c", Preference: "p", AppliesTo: []events.EntityRef{{ID: events.EntityID(user, "n", "t")}}},
		events.PreferenceSuperseded{OldID: id(2), NewID: id(3)},
		events.TraceStarted{TraceID: id(4), SessionID: "s", Task: "t"},
		events.TraceStepAdded{TraceID: id(4), StepID: id(5), Thought: "t"},
		events.ToolCallRecorded{TraceID: id(4), StepID: id(5), ToolCallID: id(6), ToolName: "engram-warm-up", Status: "success", DurationMS: &ms},
		events.TraceCompleted{TraceID: id(4), Outcome: "o", Success: &ok},
		events.UserErased{Identifier: user},
	}
	out := make([]Record, len(data))
	for i, d := range data {
		kind, _ := events.KindOf(d)
		out[i] = Record{Event: &events.Event{ID: id(byte(100 + i)), Kind: kind, User: user, Time: at, Data: d},
			Sequence: uint64(i + 1), Stored: at}
	}
	return out
}

// rejectionError explains a rejection found by the Cypher of the event's kind.
func rejectionError(r Record, reason Reason) error {
	var what string
	switch reason {
	case ReasonForeignReference:
		what = "names an id that belongs to another owner"
	case ReasonMissingReference:
		what = "names a node that does not exist"
	case ReasonConflict:
		what = "contradicts the graph"
	default:
		what = "was refused"
	}
	if r.Event == nil {
		return errors.New(what)
	}
	switch d := r.Event.Data.(type) {
	case events.PreferenceSuperseded:
		switch reason {
		case ReasonMissingReference:
			what = fmt.Sprintf("supersedes %s by %s, and one of them is not a preference (yet)", d.OldID, d.NewID)
		case ReasonForeignReference:
			what = fmt.Sprintf("supersedes %s by %s, and one of them is another user's preference", d.OldID, d.NewID)
		case ReasonConflict:
			what = fmt.Sprintf("supersedes %s by %s, but the old one is already superseded, the new one is, or they are the same", d.OldID, d.NewID)
		}
	case events.TraceStepAdded:
		what += fmt.Sprintf(" (step %s of trace %s)", d.StepID, d.TraceID)
	case events.ToolCallRecorded:
		what += fmt.Sprintf(" (tool call %s of step %s of trace %s)", d.ToolCallID, d.StepID, d.TraceID)
	case events.TraceCompleted:
		what += fmt.Sprintf(" (trace %s)", d.TraceID)
	case events.PreferenceAdded:
		what += fmt.Sprintf(" (preference %s or an applies_to entity id)", d.PreferenceID)
	case events.MessageAdded:
		what += fmt.Sprintf(" (message %s)", d.MessageID)
	case events.TraceStarted:
		what += fmt.Sprintf(" (trace %s)", d.TraceID)
	}
	return fmt.Errorf("%s event %s %s", r.Event.Kind, r.Event.ID, what)
}

// run is a maximal group of events of one kind that one statement applies.
type run struct {
	kind    events.Kind
	records []Record
}

// plan groups batch into runs of one kind each, keeping every tenant's events in stored
// order: an event joins the earliest run of its kind that is not before the run holding its
// tenant's previous event, else opens a new run at the end.
func plan(batch []Record) []run {
	var runs []run
	latest := map[string]int{} // tenant token -> index of the run with its latest event
	for _, r := range batch {
		tenant, _ := r.Event.Tenant()
		from := latest[tenant] // 0 for a tenant not seen yet
		at := -1
		for i := from; i < len(runs); i++ {
			if runs[i].kind == r.Event.Kind {
				at = i
				break
			}
		}
		if at < 0 {
			runs = append(runs, run{kind: r.Event.Kind})
			at = len(runs) - 1
		}
		runs[at].records = append(runs[at].records, r)
		latest[tenant] = at
	}
	return runs
}
