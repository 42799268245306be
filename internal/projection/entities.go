package projection

import (
	"context"
	"fmt"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// Entities, relationships, mentions and facts (docs/graph.md). An entity's id is derived
// (events.EntityID of the user, name and type), so entity_added is an upsert, like the entity
// a preference's applies_to names, which it is the same node as; a relationship's id is
// derived from the entities it joins (events.RelationshipID), so adding it again reaches the
// same edge. A merge (entities_merged) moves edges whose ids and properties Go cannot know
// without reading them: like an erasure it ends a segment and runs on its own (mergeEntities),
// after the events before it are written, so a batch still gives the graph of stored order.

// entityWrite is what a segment writes to one Entity: created by the first event that names
// it (bare, as an applies_to creates it), then the entity_added events that add to it, folded
// in stored order: the last given subtype, description, confidence and attributes win, the
// aliases accumulate.
type entityWrite struct {
	id       string
	exists   bool
	user     any            // the owner's identifier (nil: the shared tenant, no HAS_ENTITY)
	name     string         // known when the segment creates it
	create   map[string]any // the bare node's properties, when new
	touched  bool           // an entity_added applied: aliases a list, updated_at set
	fields   map[string]any // subtype, description, confidence, metadata, embedding (and its sketch): the last given
	updated  any
	aliases  []any
	aliasSet map[string]bool
}

// relWrite is what a segment writes to one RELATED_TO edge, the relationship_added events of
// it folded in stored order: the first creates it, the last given properties win.
type relWrite struct {
	id, source, target, typ string
	create                  map[string]any
	fields                  map[string]any
	updated                 any
}

// resolve is the entity id reaches after the merges recorded: itself when it was never
// merged. The entity merged into exists whenever the merged one does (same owner, one
// erasure), so it is noted as existing.
func (st *graphState) resolve(id string) string {
	start := id
	for range 64 {
		into, ok := st.merged[id]
		if !ok {
			break
		}
		id = into
	}
	if id != start {
		if _, ok := st.entities[id]; !ok {
			st.entities[id] = st.entities[start]
		}
	}
	return id
}

// ensureEntity returns the segment's write of the entity id names (resolved through merges),
// creating it bare (name, type) when the graph and the segment have none.
func (e *effects) ensureEntity(st *graphState, m map[string]any, id string, name, typ any) *entityWrite {
	id = st.resolve(id)
	if e.entityIdx == nil {
		e.entityIdx = map[string]*entityWrite{}
	}
	if w := e.entityIdx[id]; w != nil {
		return w
	}
	owner, _ := m["owner"].(string)
	_, exists := st.entities[id]
	w := &entityWrite{id: id, exists: exists, user: m["user"], fields: map[string]any{}, aliasSet: map[string]bool{}}
	if !exists {
		st.entities[id] = ownedBy(owner)
		w.name, _ = name.(string)
		w.create = map[string]any{"id": id, "name": name, "type": typ, "owner": owner, "created_at": m["time"],
			"recorded_at": m["recorded_at"], "recorded_seq": m["seq"]}
	}
	e.entityIdx[id] = w
	e.entities = append(e.entities, w)
	return w
}

// add folds an entity_added row into w.
func (w *entityWrite) add(m map[string]any) {
	w.touched = true
	for _, k := range []string{"subtype", "description", "confidence", "metadata"} {
		if v := m[k]; v != nil {
			w.fields[k] = v
		}
	}
	// The vector follows the description: an add that gives none (a mention, an alias) keeps
	// the vector already there, which the ingestor's embedder made of name and description,
	// instead of one of the name alone. The same rule holds against the stored entity
	// (writeEntities' update).
	if v := m["embedding"]; v != nil && (m["description"] != nil || w.fields["embedding"] == nil) {
		w.fields["embedding"] = v
		w.fields["embedding_sketch"] = m["embedding_sketch"]
		w.fields["embedding_with_description"] = m["description"] != nil
	}
	w.updated = m["time"]
	aliases, _ := m["aliases"].([]any)
	for _, a := range aliases {
		s, _ := a.(string)
		if s == "" || s == w.name || w.aliasSet[s] {
			continue
		}
		w.aliasSet[s] = true
		w.aliases = append(w.aliases, s)
	}
}

// mention notes a MENTIONS edge from the message or trace from to entity, once.
func (e *effects) mention(kind, from, entity string) {
	if e.mentionIdx == nil {
		e.mentionIdx = map[[3]string]bool{}
	}
	k := [3]string{kind, from, entity}
	if e.mentionIdx[k] {
		return
	}
	e.mentionIdx[k] = true
	e.mentions = append(e.mentions, k)
}

// checkRef is the check of an entity reference by id (by name it is the owner's own).
func checkRef(st *graphState, owner string, ref events.EntityRef) Reason {
	if ref.ID == "" {
		return ""
	}
	x, ok := st.entities[ref.ID]
	switch {
	case !ok:
		return ReasonMissingReference
	case x.differs(owner):
		return ReasonForeignReference
	}
	return ""
}

// worst is the rejection the checks of an event come to: another owner's id before a
// missing one, as the other kinds decide.
func worst(reasons ...Reason) Reason {
	var out Reason
	for _, r := range reasons {
		switch {
		case r == ReasonForeignReference:
			return r
		case r != "":
			out = r
		}
	}
	return out
}

// simulateEntities is simulate for the kinds of this file.
func (e *effects) simulateEntities(st *graphState, r Record, m map[string]any) (string, error) {
	owner, _ := m["owner"].(string)
	switch r.Event.Kind {
	case events.KindEntityAdded:
		d, err := dataAs[events.EntityAdded](r)
		if err != nil {
			return "", err
		}
		var reasons []Reason
		for _, id := range d.MessageIDs {
			x, ok := st.messages[id]
			switch {
			case !ok:
				reasons = append(reasons, ReasonMissingReference)
			case x.differs(owner):
				reasons = append(reasons, ReasonForeignReference)
			}
		}
		for _, id := range d.TraceIDs {
			x, ok := st.traces[id]
			switch {
			case !ok:
				reasons = append(reasons, ReasonMissingReference)
			case x.differs(owner):
				reasons = append(reasons, ReasonForeignReference)
			}
		}
		eid, _ := m["entity_id"].(string)
		if x, ok := st.entities[eid]; ok && x.differs(owner) {
			reasons = append(reasons, ReasonForeignReference)
		}
		if why := worst(reasons...); why != "" {
			return string(why), nil
		}
		e.touchUser(st, m)
		w := e.ensureEntity(st, m, eid, m["name"], m["type"])
		w.add(m)
		for _, id := range d.MessageIDs {
			e.mention("Message", id, w.id)
		}
		for _, id := range d.TraceIDs {
			e.mention("ReasoningTrace", id, w.id)
		}
		return "ok", nil

	case events.KindRelationshipAdded:
		d, err := dataAs[events.RelationshipAdded](r)
		if err != nil {
			return "", err
		}
		if why := worst(checkRef(st, owner, d.Source), checkRef(st, owner, d.Target)); why != "" {
			return string(why), nil
		}
		endpoint := func(ref events.EntityRef) string {
			if ref.ID != "" {
				return st.resolve(ref.ID)
			}
			return st.resolve(events.EntityID(r.Event.User, ref.Name, ref.Type))
		}
		source, target := endpoint(d.Source), endpoint(d.Target)
		if source == target {
			return string(ReasonConflict), nil // an entity related to itself, or merged into the other
		}
		e.touchUser(st, m)
		for _, ref := range []events.EntityRef{d.Source, d.Target} {
			if ref.ID == "" {
				e.ensureEntity(st, m, events.EntityID(r.Event.User, ref.Name, ref.Type), ref.Name, nilIfEmpty(ref.Type))
			}
		}
		id := events.RelationshipID(r.Event.User, source, d.Type, target)
		if e.relIdx == nil {
			e.relIdx = map[string]*relWrite{}
		}
		w := e.relIdx[id]
		if w == nil {
			w = &relWrite{id: id, source: source, target: target, typ: d.Type, fields: map[string]any{},
				create: map[string]any{"created_at": m["time"], "recorded_at": m["recorded_at"], "recorded_seq": m["seq"]}}
			e.relIdx[id] = w
			e.rels = append(e.rels, w)
		}
		for _, k := range []string{"description", "confidence", "valid_from", "valid_until", "attributes_json"} {
			if v := m[k]; v != nil {
				w.fields[k] = v
			}
		}
		w.updated = m["time"]
		return "ok", nil

	case events.KindFactAdded:
		d, err := dataAs[events.FactAdded](r)
		if err != nil {
			return "", err
		}
		if x, ok := st.facts[d.FactID]; ok {
			if x.same(owner) {
				return "duplicate", nil
			}
			return string(ReasonForeignReference), nil
		}
		st.facts[d.FactID] = ownedBy(owner)
		e.touchUser(st, m)
		e.facts = append(e.facts, m)
		return "ok", nil
	}
	return "", fmt.Errorf("event %s: %w: %q", r.Event.ID, events.ErrUnknownType, r.Event.Kind)
}

// recordEntities is lookupKeys.record for the kinds of this file.
func (k *lookupKeys) recordEntities(r Record) error {
	user := r.Event.User
	ref := func(ref events.EntityRef) {
		if ref.ID != "" {
			addKey(&k.entities, ref.ID)
		} else {
			addKey(&k.entities, events.EntityID(user, ref.Name, ref.Type))
		}
	}
	switch r.Event.Kind {
	case events.KindEntityAdded:
		d, err := dataAs[events.EntityAdded](r)
		if err != nil {
			return err
		}
		addKey(&k.entities, events.EntityID(user, d.Name, d.Type))
		for _, id := range d.MessageIDs {
			addKey(&k.messages, id)
		}
		for _, id := range d.TraceIDs {
			addKey(&k.traces, id)
		}
	case events.KindRelationshipAdded:
		d, err := dataAs[events.RelationshipAdded](r)
		if err != nil {
			return err
		}
		ref(d.Source)
		ref(d.Target)
	case events.KindEntitiesMerged:
		d, err := dataAs[events.EntitiesMerged](r)
		if err != nil {
			return err
		}
		addKey(&k.entities, d.SourceID)
		addKey(&k.entities, d.TargetID)
	case events.KindFactAdded:
		d, err := dataAs[events.FactAdded](r)
		if err != nil {
			return err
		}
		addKey(&k.facts, d.FactID)
	}
	return nil
}

// entityRows puts the segment's entity, mention, relationship and fact writes into w.
func (e *effects) entityRows(w map[string]any) {
	var create, update []any
	for _, x := range e.entities {
		aliases := x.aliases
		if aliases == nil {
			aliases = []any{}
		}
		if !x.exists {
			props := make(map[string]any, len(x.create)+6)
			for k, v := range x.create {
				props[k] = v
			}
			if x.touched {
				for k, v := range x.fields {
					if k != "embedding_with_description" { // how the vector was chosen, not a property
						props[k] = v
					}
				}
				props["aliases"] = aliases
				props["updated_at"] = x.updated
			}
			create = append(create, map[string]any{"user": x.user, "props": props})
			continue
		}
		if x.touched {
			row := map[string]any{"id": x.id, "subtype": x.fields["subtype"],
				"description": x.fields["description"], "confidence": x.fields["confidence"],
				"metadata": x.fields["metadata"], "embedding": x.fields["embedding"],
				"embedding_sketch": x.fields["embedding_sketch"], "aliases": aliases, "updated_at": x.updated}
			row["embedding_with_description"] = x.fields["embedding_with_description"] == true
			update = append(update, row)
		}
	}
	var msgMentions, traceMentions []any
	for _, k := range e.mentions {
		row := map[string]any{"from": k[1], "entity": k[2]}
		if k[0] == "Message" {
			msgMentions = append(msgMentions, row)
		} else {
			traceMentions = append(traceMentions, row)
		}
	}
	var rels []any
	for _, x := range e.rels {
		row := map[string]any{"id": x.id, "source": x.source, "target": x.target, "type": x.typ, "updated_at": x.updated}
		for k, v := range x.create {
			row[k] = v
		}
		for _, k := range []string{"description", "confidence", "valid_from", "valid_until", "attributes_json"} {
			row[k] = x.fields[k]
		}
		rels = append(rels, row)
	}
	w["create_entities"], w["update_entities"] = create, update
	w["message_mentions"], w["trace_mentions"] = msgMentions, traceMentions
	w["relationships"], w["facts"] = rels, e.facts
}

// mergeEntities applies an entities_merged event on its own (it ends a segment): it looks up
// both entities, decides, reads the source's relationships (their new ids are derived in Go
// from their new endpoints), and moves the source's edges to the target in one statement.
func mergeEntities(ctx context.Context, tx neo4j.ManagedTransaction, r Record, src stateSource) (string, error) {
	m, err := row(r)
	if err != nil {
		return "", err
	}
	d, err := dataAs[events.EntitiesMerged](r)
	if err != nil {
		return "", err
	}
	var keys lookupKeys
	if err := keys.record(r); err != nil {
		return "", err
	}
	st, err := src.lookup(ctx, tx, &keys)
	if err != nil {
		return "", err
	}
	owner, _ := m["owner"].(string)
	b, okB := st.entities[d.SourceID]
	a, okA := st.entities[d.TargetID]
	switch {
	case !okB || !okA:
		return string(ReasonMissingReference), nil
	case b.differs(owner) || a.differs(owner):
		return string(ReasonForeignReference), nil
	}
	if _, merged := st.merged[d.SourceID]; merged {
		if st.resolve(d.SourceID) == st.resolve(d.TargetID) {
			return "duplicate", nil
		}
		return string(ReasonConflict), nil // merged into another entity already
	}
	target := st.resolve(d.TargetID)
	if target == d.SourceID {
		return string(ReasonConflict), nil // the target was merged into the source
	}
	res, err := tx.Run(ctx, cypherMergeEdges, map[string]any{"id": d.SourceID})
	if err != nil {
		return "", fmt.Errorf("read the relationships of entity %s: %w", d.SourceID, err)
	}
	rec, err := res.Single(ctx)
	if err != nil {
		return "", fmt.Errorf("read the relationships of entity %s: %w", d.SourceID, err)
	}
	moved := func(key string, out bool) []any {
		v, _ := rec.Get(key)
		list, _ := v.([]any)
		rows := make([]any, 0, len(list))
		for _, x := range list {
			t, _ := x.([]any)
			if len(t) < 2 {
				continue
			}
			typ, _ := t[0].(string)
			other, _ := t[1].(string)
			if other == target || other == d.SourceID {
				continue // an edge between the two goes with the merge
			}
			id := events.RelationshipID(r.Event.User, other, typ, target)
			if out {
				id = events.RelationshipID(r.Event.User, target, typ, other)
			}
			rows = append(rows, map[string]any{"type": typ, "other": other, "id": id})
		}
		return rows
	}
	params := map[string]any{"source": d.SourceID, "target": target, "time": m["time"], "recorded_at": m["recorded_at"],
		"seq": m["seq"], "outs": moved("outs", true), "ins": moved("ins", false)}
	res, err = tx.Run(ctx, cypherMerge, map[string]any{"r": params})
	if err != nil {
		return "", fmt.Errorf("merge entity %s into %s: %w", d.SourceID, target, err)
	}
	if _, err := res.Consume(ctx); err != nil {
		return "", fmt.Errorf("merge entity %s into %s: %w", d.SourceID, target, err)
	}
	st.merged[d.SourceID] = target
	src.written(st)
	return "ok", nil
}
