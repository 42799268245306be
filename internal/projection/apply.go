package projection

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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
	// DuplicateSequences are the stream sequences of those events.
	DuplicateSequences []uint64
	// Rejected lists the events that wrote nothing and belong in the dead-letter stream.
	Rejected []*Rejection
}

// Apply writes the effects of batch, in stored order, in tx. It is the one projection code
// path: the projector calls it with the records of a partition batch, replay with records it
// reads from the stream. Apply is idempotent (applying a batch twice leaves the graph as
// applying it once) and deterministic (everything written comes from the records): the
// graph is the one applying the events one by one in stored order gives, however the
// events are cut into batches.
//
// A batch costs two statements, whatever its size and mix (effects.go): one reads what the
// graph holds about the ids the batch names, Go decides what each event does, and one
// statement of set-based blocks writes it. An erasure ends a segment: what comes before it is
// written, the erasure runs, and the rest is read and decided anew.
//
// Events that cannot be applied (another owner's id, a missing reference, a conflict) write
// nothing and are returned in Outcome.Rejected; an error means the transaction is unusable
// and must be rolled back.
func Apply(ctx context.Context, tx neo4j.ManagedTransaction, batch []Record) (Outcome, error) {
	return applyBatch(ctx, tx, batch, graphSource{}, true)
}

// applyBatch is Apply with the state of the graph read from src, and the Tool aggregates updated
// (countTools) or left to RecountTools.
func applyBatch(ctx context.Context, tx neo4j.ManagedTransaction, batch []Record, src stateSource, countTools bool) (Outcome, error) {
	out := Outcome{Applied: map[events.Kind]int{}}
	for len(batch) > 0 {
		n := len(firstSegment(batch))
		if err := applySegment(ctx, tx, batch[:n], &out, src, countTools); err != nil {
			return out, err
		}
		batch = batch[n:]
		for len(batch) > 0 && endsSegment(batch[0].Event.Kind) {
			r := batch[0]
			if apply := ownSegment[r.Event.Kind]; apply != nil {
				status, err := apply(ctx, tx, r, src)
				if err != nil {
					return out, fmt.Errorf("event %s (%s): %w", r.Event.ID, r.Event.Kind, err)
				}
				out.record(r, status)
				batch = batch[1:]
				continue
			}
			owner, err := erase(ctx, tx, r)
			if err != nil {
				return out, err
			}
			src.erased(owner)
			out.Applied[events.KindUserErased]++
			batch = batch[1:]
		}
	}
	return out, nil
}

// firstSegment returns the records of batch before the first that is applied on its own.
func firstSegment(batch []Record) []Record {
	n := 0
	for n < len(batch) && !endsSegment(batch[n].Event.Kind) {
		n++
	}
	return batch[:n]
}

// segmentKeys collects the ids seg names, as applySegment looks them up.
func segmentKeys(seg []Record) (*lookupKeys, error) {
	var k lookupKeys
	for _, r := range seg {
		if err := k.record(r); err != nil {
			return nil, fmt.Errorf("event %s (%s): %w", r.Event.ID, r.Event.Kind, err)
		}
	}
	return &k, nil
}

// applyPrefetched is Apply with the first look-up answered from pre when it asks for pre's
// keys (nil pre: Apply).
func applyPrefetched(ctx context.Context, tx neo4j.ManagedTransaction, batch []Record, pre *prefetched) (Outcome, error) {
	if pre == nil {
		return Apply(ctx, tx, batch)
	}
	return applyBatch(ctx, tx, batch, pre, true)
}

// prefetched is the graph source of a step whose first segment's state was read in the
// statement that locked its checkpoints (lockAndLookup): the first look-up is answered from
// it when it asks for the same ids, every other from the graph.
type prefetched struct {
	graphSource
	keys *lookupKeys
	st   *graphState
}

func (p *prefetched) lookup(ctx context.Context, tx neo4j.ManagedTransaction, k *lookupKeys) (*graphState, error) {
	if st := p.st; st != nil {
		p.st = nil
		if reflect.DeepEqual(p.keys, k) {
			return st, nil
		}
	}
	return p.graphSource.lookup(ctx, tx, k)
}

// endsSegment reports whether events of kind k are applied on their own, after the events
// before them are written: an erasure, a merge (entities.go) and a deletion (deletions.go).
func endsSegment(k events.Kind) bool {
	return k == events.KindUserErased || ownSegment[k] != nil
}

// ownSegment applies the kinds, other than an erasure, that are applied on their own.
var ownSegment = map[events.Kind]func(context.Context, neo4j.ManagedTransaction, Record, stateSource) (string, error){
	events.KindEntitiesMerged: mergeEntities,
	events.KindMessageDeleted: deleteMessage,
	events.KindSessionCleared: clearSession,
	events.KindEntityDeleted:  deleteEntity,
}

// record adds the outcome of one event.
func (out *Outcome) record(r Record, status string) {
	switch status {
	case "ok":
		out.Applied[r.Event.Kind]++
	case "duplicate":
		out.Duplicates++
		out.DuplicateSequences = append(out.DuplicateSequences, r.Sequence)
	default:
		out.Rejected = append(out.Rejected, &Rejection{Sequence: r.Sequence, Reason: Reason(status),
			Err: rejectionError(r, Reason(status))})
	}
}

// applySegment applies events without an erasure or a merge among them.
func applySegment(ctx context.Context, tx neo4j.ManagedTransaction, seg []Record, out *Outcome, src stateSource, countTools bool) error {
	if len(seg) == 0 {
		return nil
	}
	var keys lookupKeys
	rows := make([]map[string]any, len(seg))
	for i, r := range seg {
		m, err := row(r)
		if err != nil {
			return err
		}
		rows[i] = m
		if err := keys.record(r); err != nil {
			return fmt.Errorf("event %s (%s): %w", r.Event.ID, r.Event.Kind, err)
		}
	}
	st, err := src.lookup(ctx, tx, &keys)
	if err != nil {
		return err
	}
	e := effects{countTools: countTools}
	for i, r := range seg {
		status, err := e.simulate(st, r, rows[i])
		if err != nil {
			return fmt.Errorf("event %s (%s): %w", r.Event.ID, r.Event.Kind, err)
		}
		out.record(r, status)
	}
	if err := e.write(ctx, tx); err != nil {
		return err
	}
	src.written(st)
	return nil
}

// erase applies a user_erased event and returns the owner it erased.
func erase(ctx context.Context, tx neo4j.ManagedTransaction, r Record) (string, error) {
	m, err := row(r)
	if err != nil {
		return "", err
	}
	owner, _ := m["owner"].(string)
	return owner, runRows(ctx, tx, "erase user", cypherUserErased, []any{m})
}

// Warm has Neo4j plan every statement of the projection, so that the first batches do not
// wait for the planner: it applies made-up events of every kind in two batches (the second
// updates what the first created, so the statements for existing nodes are planned too),
// locks a made-up checkpoint, and rolls all of it back. (Neo4j caches a plan per query text
// and parameter types, so the rows must look like real ones.)
func Warm(ctx context.Context, d neo4j.DriverWithContext, database string) error {
	return warm(ctx, d, database, Apply)
}

// warm applies the warm-up batches with apply and rolls them back.
func warm(ctx context.Context, d neo4j.DriverWithContext, database string,
	apply func(context.Context, neo4j.ManagedTransaction, []Record) (Outcome, error)) error {
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
	lock := speculativeLock{checkpointLock: checkpointLock{name: "engram-warm-up"}, move: true, seq: 1, updated: time.Unix(0, 0)}
	if _, _, err := lockAndLookup(ctx, tx, []speculativeLock{lock}, &lookupKeys{}); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	for _, batch := range warmUpBatches() {
		if _, err := apply(ctx, tx, batch); err != nil {
			return fmt.Errorf("warm up: %w", err)
		}
	}
	if err := WriteCheckpoint(ctx, tx, "engram-warm-up", 1, time.Unix(0, 0)); err != nil {
		return fmt.Errorf("warm up: %w", err)
	}
	return nil
}

// warmUpBatches are events of every kind, each referring to the ones before: the first
// batch creates, the second updates what the first created and erases the user.
func warmUpBatches() [][]Record {
	const user = "engram-warm-up@engram.invalid"
	id := func(n byte) string { return fmt.Sprintf("00000000-0000-7000-8000-0000000000%02x", n) }
	at := time.Unix(0, 0).UTC()
	ms := int64(1)
	ok := true
	conv := events.ConversationID(user, "s")
	data := [][]any{{
		events.UserUpserted{UserID: events.UserID(user), Identifier: user, Attributes: map[string]any{"k": "v"}},
		events.MessageAdded{MessageID: id(1), ConversationID: conv, SessionID: "s", Role: "user", Content: "c", Title: "t"},
		events.MessageAdded{MessageID: id(7), ConversationID: conv, SessionID: "s", Role: "assistant", Content: "c"},
		events.PreferenceAdded{PreferenceID: id(2), Category: "c", Preference: "p", AppliesTo: []events.EntityRef{{Name: "n", Type: "t"}}},
		events.TraceStarted{TraceID: id(4), SessionID: "s", Task: "t"},
		events.TraceStepAdded{TraceID: id(4), StepID: id(5), Thought: "t"},
		events.ToolCallRecorded{TraceID: id(4), StepID: id(5), ToolCallID: id(6), ToolName: "engram-warm-up", Status: "success", DurationMS: &ms},
		events.EntityAdded{Name: "e", Type: "t", Description: "d", Aliases: []string{"a"}, Attributes: map[string]any{"k": "v"},
			MessageIDs: []string{id(1)}, TraceIDs: []string{id(4)}},
		events.RelationshipAdded{Source: events.EntityRef{Name: "e", Type: "t"}, Target: events.EntityRef{Name: "n", Type: "t"}, Type: "R"},
		events.FactAdded{FactID: id(11), Subject: "s", Predicate: "p", Object: "o"},
	}, {
		events.UserUpserted{UserID: events.UserID(user), Identifier: user, Attributes: map[string]any{"k": "w"}},
		events.MessageAdded{MessageID: id(8), ConversationID: conv, SessionID: "s", Role: "user", Content: "c", Title: "u"},
		events.PreferenceAdded{PreferenceID: id(3), Category: "c", Preference: "p", AppliesTo: []events.EntityRef{{ID: events.EntityID(user, "n", "t")}}},
		events.PreferenceSuperseded{OldID: id(2), NewID: id(3)},
		events.TraceStepAdded{TraceID: id(4), StepID: id(9), Thought: "t"},
		events.ToolCallRecorded{TraceID: id(4), StepID: id(9), ToolCallID: id(10), ToolName: "engram-warm-up", Status: "error", DurationMS: &ms},
		events.TraceCompleted{TraceID: id(4), Outcome: "o", Success: &ok},
		events.EntityAdded{Name: "e", Type: "t", Subtype: "s", Aliases: []string{"b"}},
		events.RelationshipAdded{Source: events.EntityRef{ID: events.EntityID(user, "e", "t")}, Target: events.EntityRef{Name: "f", Type: "t"}, Type: "R", Description: "d"},
		events.EntitiesMerged{SourceID: events.EntityID(user, "n", "t"), TargetID: events.EntityID(user, "f", "t")},
		events.MessageDeleted{MessageID: id(7), ConversationID: conv, SessionID: "s"},
		events.SessionCleared{ConversationID: conv, SessionID: "s"},
		events.EntityDeleted{EntityID: events.EntityID(user, "f", "t")},
		events.UserErased{Identifier: user},
	}}
	var out [][]Record
	seq := uint64(0)
	for _, part := range data {
		recs := make([]Record, len(part))
		for i, d := range part {
			seq++
			kind, _ := events.KindOf(d)
			recs[i] = Record{Event: &events.Event{ID: id(byte(100 + seq)), Kind: kind, User: user, Time: at, Data: d},
				Sequence: seq, Stored: at}
		}
		out = append(out, recs)
	}
	return out
}

// rejectionError explains a rejection found by the checks of the event's kind.
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
	case events.EntityAdded:
		what += fmt.Sprintf(" (entity %q of type %q, or a message or trace it is mentioned in)", d.Name, d.Type)
	case events.RelationshipAdded:
		if reason == ReasonConflict {
			what = "relates an entity to itself (or to the entity it was merged into)"
		}
		what += fmt.Sprintf(" (relationship %s)", d.Type)
	case events.EntitiesMerged:
		if reason == ReasonConflict {
			what = "merges an entity already merged into another one, or into an entity merged into it"
		}
		what += fmt.Sprintf(" (merge of entity %s into %s)", d.SourceID, d.TargetID)
	case events.FactAdded:
		what += fmt.Sprintf(" (fact %s)", d.FactID)
	case events.MessageDeleted:
		what += fmt.Sprintf(" (deletion of message %s)", d.MessageID)
	case events.SessionCleared:
		what += fmt.Sprintf(" (clearing of conversation %s, session %q)", d.ConversationID, d.SessionID)
	case events.EntityDeleted:
		what += fmt.Sprintf(" (deletion of entity %s)", d.EntityID)
	}
	return fmt.Errorf("%s event %s %s", r.Event.Kind, r.Event.ID, what)
}
