package projection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/events"
)

// rowBuilders add the parameters of one kind's event to the row of what every kind shares.
var rowBuilders = map[events.Kind]func(r Record, base map[string]any) error{
	events.KindUserUpserted:         userUpsertedRow,
	events.KindMessageAdded:         messageAddedRow,
	events.KindPreferenceAdded:      preferenceAddedRow,
	events.KindPreferenceSuperseded: preferenceSupersededRow,
	events.KindTraceStarted:         traceStartedRow,
	events.KindTraceStepAdded:       traceStepAddedRow,
	events.KindToolCallRecorded:     toolCallRecordedRow,
	events.KindTraceCompleted:       traceCompletedRow,
	events.KindUserErased:           userErasedRow,
	events.KindUserRecreated:        userRecreatedRow,
	events.KindEntityAdded:          entityAddedRow,
	events.KindRelationshipAdded:    relationshipAddedRow,
	events.KindEntitiesMerged:       entitiesMergedRow,
	events.KindFactAdded:            factAddedRow,
	events.KindMessageDeleted:       messageDeletedRow,
	events.KindSessionCleared:       sessionClearedRow,
	events.KindEntityDeleted:        entityDeletedRow,
}

// row builds the parameters of one event: what every kind shares (stream sequence, owner,
// user, event time, stored time) plus the kind's own.
func row(r Record) (map[string]any, error) {
	ev := r.Event
	owner, err := ev.Tenant()
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", ev.ID, err)
	}
	m := map[string]any{
		"seq":         int64(r.Sequence),
		"owner":       owner,
		"time":        graphTime(ev.Time),
		"recorded_at": graphTime(r.Stored),
		"user":        nil,
		"user_id":     nil,
	}
	if ev.User != "" {
		m["user"] = ev.User
		m["user_id"] = events.UserID(ev.User)
	}
	build, ok := rowBuilders[ev.Kind]
	if !ok {
		return nil, fmt.Errorf("event %s: %w: %q", ev.ID, events.ErrUnknownType, ev.Kind)
	}
	if err := build(r, m); err != nil {
		return nil, fmt.Errorf("event %s (%s): %w", ev.ID, ev.Kind, err)
	}
	return m, nil
}

func dataAs[T any](r Record) (T, error) {
	switch d := r.Event.Data.(type) {
	case T:
		return d, nil
	case *T:
		if d != nil {
			return *d, nil
		}
	}
	var zero T
	return zero, fmt.Errorf("%w: data of type %T for kind %s", events.ErrInvalidData, r.Event.Data, r.Event.Kind)
}

func userUpsertedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.UserUpserted](r)
	if err != nil {
		return err
	}
	m["user"], m["user_id"] = d.Identifier, events.UserID(d.Identifier)
	m["attributes_json"] = nil
	if d.Attributes != nil {
		s, err := jsonText(d.Attributes)
		if err != nil {
			return fmt.Errorf("attributes: %w", err)
		}
		m["attributes_json"] = s
	}
	return nil
}

func messageAddedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.MessageAdded](r)
	if err != nil {
		return err
	}
	meta, err := jsonObject(d.Metadata)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	m["id"] = d.MessageID
	m["conversation_id"] = d.ConversationID
	m["session_id"] = d.SessionID
	m["role"] = d.Role
	m["content"] = d.Content
	m["timestamp"] = timeOr(d.Timestamp, r.Event.Time)
	m["metadata"] = meta
	m["title"] = nilIfEmpty(d.Title)
	m["embedding"], m["embedding_sketch"] = vector(d.Embedding)
	return nil
}

func preferenceAddedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.PreferenceAdded](r)
	if err != nil {
		return err
	}
	meta, err := jsonObject(d.Metadata)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	confidence := 1.0
	if d.Confidence != nil {
		confidence = *d.Confidence
	}
	// References by id are checked against the graph; by name and type they name the owner's
	// entity of the derived id. Duplicates collapse, in a stable order.
	ids := map[string]bool{}
	named := map[string]map[string]any{}
	for _, ref := range d.AppliesTo {
		if ref.ID != "" {
			ids[ref.ID] = true
			continue
		}
		id := events.EntityID(r.Event.User, ref.Name, ref.Type)
		named[id] = map[string]any{"id": id, "name": ref.Name, "type": nilIfEmpty(ref.Type)}
	}
	entityIDs := make([]any, 0, len(ids))
	for _, id := range sortedKeys(ids) {
		entityIDs = append(entityIDs, id)
	}
	entities := make([]any, 0, len(named))
	for _, id := range sortedKeys(named) {
		entities = append(entities, named[id])
	}
	m["id"] = d.PreferenceID
	m["category"] = d.Category
	m["preference"] = d.Preference
	m["context"] = nilIfEmpty(d.Context)
	m["confidence"] = confidence
	m["valid_from"] = timeOr(d.ValidFrom, r.Event.Time)
	m["metadata"] = meta
	m["entity_ids"] = entityIDs
	m["entities"] = entities
	m["embedding"], m["embedding_sketch"] = vector(d.Embedding)
	return nil
}

func preferenceSupersededRow(r Record, m map[string]any) error {
	d, err := dataAs[events.PreferenceSuperseded](r)
	if err != nil {
		return err
	}
	m["old_id"] = d.OldID
	m["new_id"] = d.NewID
	m["valid_until"] = timeOr(d.ValidUntil, r.Event.Time)
	return nil
}

func traceStartedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.TraceStarted](r)
	if err != nil {
		return err
	}
	meta, err := jsonObject(d.Metadata)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	m["id"] = d.TraceID
	m["session_id"] = d.SessionID
	m["task"] = d.Task
	m["metadata"] = meta
	m["embedding"], m["embedding_sketch"] = vector(d.Embedding)
	return nil
}

func traceStepAddedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.TraceStepAdded](r)
	if err != nil {
		return err
	}
	m["id"] = d.StepID
	m["trace_id"] = d.TraceID
	m["step_number"] = int64(d.StepNumber)
	m["thought"] = nilIfEmpty(d.Thought)
	m["action"] = nilIfEmpty(d.Action)
	m["observation"] = nilIfEmpty(d.Observation)
	return nil
}

func toolCallRecordedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.ToolCallRecorded](r)
	if err != nil {
		return err
	}
	args := "{}"
	if d.Arguments != nil {
		if args, err = jsonText(d.Arguments); err != nil {
			return fmt.Errorf("arguments: %w", err)
		}
	}
	var result any
	if d.Result != nil {
		if result, err = jsonText(d.Result); err != nil {
			return fmt.Errorf("result: %w", err)
		}
	}
	var duration any
	if d.DurationMS != nil {
		duration = *d.DurationMS
	}
	m["id"] = d.ToolCallID
	m["trace_id"] = d.TraceID
	m["step_id"] = d.StepID
	m["tool_name"] = d.ToolName
	m["arguments"] = args
	m["result"] = result
	m["status"] = d.Status
	m["duration_ms"] = duration
	m["error"] = nilIfEmpty(d.Error)
	return nil
}

func traceCompletedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.TraceCompleted](r)
	if err != nil {
		return err
	}
	var success any
	if d.Success != nil {
		success = *d.Success
	}
	m["trace_id"] = d.TraceID
	m["outcome"] = nilIfEmpty(d.Outcome)
	m["success"] = success
	return nil
}

// userRecreatedRow is the row of an upsert without attributes (effects.simulate applies it
// as one): a re-created user starts with none.
func userRecreatedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.UserRecreated](r)
	if err != nil {
		return err
	}
	m["user"], m["user_id"] = d.Identifier, events.UserID(d.Identifier)
	m["attributes_json"] = nil
	return nil
}

func userErasedRow(r Record, _ map[string]any) error {
	_, err := dataAs[events.UserErased](r)
	return err
}

// entityAddedRow: the entity's derived id, and what the event gives (null where it gives
// nothing: the stored value stays). Attributes are stored as the library stores them, in the
// metadata JSON under "attributes".
func entityAddedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.EntityAdded](r)
	if err != nil {
		return err
	}
	var meta any
	if d.Attributes != nil {
		if meta, err = jsonText(map[string]any{"attributes": d.Attributes}); err != nil {
			return fmt.Errorf("attributes: %w", err)
		}
	}
	var confidence any
	if d.Confidence != nil {
		confidence = *d.Confidence
	}
	aliases := make([]any, 0, len(d.Aliases))
	for _, a := range d.Aliases {
		aliases = append(aliases, a)
	}
	m["entity_id"] = events.EntityID(r.Event.User, d.Name, d.Type)
	m["name"] = d.Name
	m["type"] = d.Type
	m["subtype"] = nilIfEmpty(d.Subtype)
	m["description"] = nilIfEmpty(d.Description)
	m["aliases"] = aliases
	m["metadata"] = meta
	m["confidence"] = confidence
	m["embedding"], m["embedding_sketch"] = vector(d.Embedding)
	return nil
}

func relationshipAddedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.RelationshipAdded](r)
	if err != nil {
		return err
	}
	var attrs, confidence, from, until any
	if d.Attributes != nil {
		if attrs, err = jsonText(d.Attributes); err != nil {
			return fmt.Errorf("attributes: %w", err)
		}
	}
	if d.Confidence != nil {
		confidence = *d.Confidence
	}
	if d.ValidFrom != nil {
		from = graphTime(*d.ValidFrom)
	}
	if d.ValidUntil != nil {
		until = graphTime(*d.ValidUntil)
	}
	m["type"] = d.Type
	m["description"] = nilIfEmpty(d.Description)
	m["confidence"] = confidence
	m["valid_from"] = from
	m["valid_until"] = until
	m["attributes_json"] = attrs
	return nil
}

func entitiesMergedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.EntitiesMerged](r)
	if err != nil {
		return err
	}
	m["source_id"] = d.SourceID
	m["target_id"] = d.TargetID
	return nil
}

// factAddedRow: confidence 1.0 and valid_from the event time when absent, as a preference's.
func factAddedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.FactAdded](r)
	if err != nil {
		return err
	}
	meta, err := jsonObject(d.Metadata)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	confidence := 1.0
	if d.Confidence != nil {
		confidence = *d.Confidence
	}
	var until any
	if d.ValidUntil != nil {
		until = graphTime(*d.ValidUntil)
	}
	m["id"] = d.FactID
	m["subject"] = d.Subject
	m["predicate"] = d.Predicate
	m["object"] = d.Object
	m["confidence"] = confidence
	m["valid_from"] = timeOr(d.ValidFrom, r.Event.Time)
	m["valid_until"] = until
	m["metadata"] = meta
	return nil
}

// jsonText is the canonical JSON text of v: map keys sorted (encoding/json), no HTML escaping.
func jsonText(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimRight(b.Bytes(), "\n")), nil
}

// vector is an embedding as the node's properties: a list of floats and its sketch (the bytes
// a vector search reads of every node it compares, embed.Sketch), or nulls (no properties)
// when the event carries none.
func vector(v []float64) (embedding, sketch any) {
	if len(v) == 0 {
		return nil, nil
	}
	if sk := embed.Sketch(v); sk != nil {
		return v, sk
	}
	return v, nil
}

// jsonObject is jsonText of a metadata object; absent metadata is "{}".
func jsonObject(v map[string]any) (string, error) {
	if v == nil {
		return "{}", nil
	}
	return jsonText(v)
}

func timeOr(t *time.Time, def time.Time) time.Time {
	if t != nil {
		return graphTime(*t)
	}
	return graphTime(def)
}

// utcOffset is UTC as an offset. The driver sends a time.Time in a zone named "Offset" as a
// DateTime with an offset (2026-05-01T09:00Z) and one in time.UTC with the zone id
// (2026-05-01T09:00Z[UTC]); Neo4j orders two DateTimes of one instant by their zone, so the
// library's datetime($as_of) comparisons (offset form) would miss zone-id values at exactly
// the boundary instant. docs/graph.md.
var utcOffset = time.FixedZone("Offset", 0)

// graphTime is t as the projection stores every datetime: UTC, offset form.
func graphTime(t time.Time) time.Time { return t.In(utcOffset) }

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
