package client

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
)

// Entities, relationships and facts: the library's long_term add_entity, get_entity_by_name,
// get_related_entities, merge_duplicate_entities, add_relationship, add_fact and
// get_facts_about, one user's own (docs/query.md, "Entities, relationships and facts").

// EntityDetail is one of a user's entities as read (the library's Entity): the POLE+O type
// as written, subtype, description, aliases, attributes, confidence, and Engram's times and
// merges. As written by AddEntity only ID, Name, Type and Receipt are set.
type EntityDetail struct {
	Entity
	User        string          `json:"-"`
	Subtype     *string         `json:"subtype"`
	Description *string         `json:"description"`
	Aliases     []string        `json:"aliases"`
	Attributes  json.RawMessage `json:"attributes,omitempty"`
	Confidence  float64         `json:"confidence"`
	CreatedAt   *time.Time      `json:"created_at"`
	UpdatedAt   *time.Time      `json:"updated_at"`
	RecordedAt  *time.Time      `json:"recorded_at"`
	// MergedIDs are the ids of the entities merged into this one.
	MergedIDs []string `json:"merged_ids"`
	// ResolvedFrom is the id asked for when it named an entity merged into this one.
	ResolvedFrom *string `json:"resolved_from"`
	Receipt      Receipt `json:"-"`
}

// EntityPage is a page of a user's entities.
type EntityPage struct {
	Entities   []EntityDetail `json:"entities"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// Relationship is a RELATED_TO edge between two of a user's entities. Direction is set on
// reads: how the walk crossed it ("out" from source to target, "in" against it).
type Relationship struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Direction   string          `json:"direction,omitempty"`
	SourceID    string          `json:"source_id"`
	TargetID    string          `json:"target_id"`
	Description *string         `json:"description"`
	Confidence  float64         `json:"confidence"`
	ValidFrom   *time.Time      `json:"valid_from"`
	ValidUntil  *time.Time      `json:"valid_until"`
	Attributes  json.RawMessage `json:"attributes,omitempty"`
	CreatedAt   *time.Time      `json:"created_at"`
	UpdatedAt   *time.Time      `json:"updated_at"`
	RecordedAt  *time.Time      `json:"recorded_at"`
	Receipt     Receipt         `json:"-"`
}

// RelatedEntity is an entity GetRelatedEntities reached, at its shortest distance, with the
// relationships of the path that first reached it.
type RelatedEntity struct {
	Entity EntityDetail   `json:"entity"`
	Depth  int            `json:"depth"`
	Path   []Relationship `json:"path"`
}

// Relationship is the last relationship of the path: the one that joins the entity to it
// (the library's (entity, relationship) pair).
func (r RelatedEntity) Relationship() Relationship {
	if len(r.Path) == 0 {
		return Relationship{}
	}
	return r.Path[len(r.Path)-1]
}

// Related is the answer of GetRelatedEntities.
type Related struct {
	Entity    EntityDetail    `json:"entity"` // the entity asked about (its survivor when merged)
	Related   []RelatedEntity `json:"related"`
	Truncated bool            `json:"truncated"` // more were within reach than the limit
}

// Fact is a subject-predicate-object fact of a user.
type Fact struct {
	ID          string          `json:"id"`
	User        string          `json:"-"`
	Subject     string          `json:"subject"`
	Predicate   string          `json:"predicate"`
	Object      string          `json:"object"`
	Confidence  float64         `json:"confidence"`
	ValidFrom   *time.Time      `json:"valid_from"`
	ValidUntil  *time.Time      `json:"valid_until"`
	CreatedAt   *time.Time      `json:"created_at"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	RecordedAt  *time.Time      `json:"recorded_at"`
	RecordedSeq *int64          `json:"recorded_seq"`
	Receipt     Receipt         `json:"-"`
}

// WithSubtype sets an entity's subtype (e.g. VEHICLE for an OBJECT).
func WithSubtype(s string) WriteOption { return func(w *writeOpts) { w.subtype = s } }

// WithDescription sets an entity's or a relationship's description.
func WithDescription(s string) WriteOption { return func(w *writeOpts) { w.description = s } }

// WithAliases adds other names of an entity (they accumulate over AddEntity calls).
func WithAliases(names ...string) WriteOption {
	return func(w *writeOpts) { w.aliases = append(w.aliases, names...) }
}

// MentionedIn links an entity to the user's messages that mention it (MENTIONS).
func MentionedIn(messageIDs ...string) WriteOption {
	return func(w *writeOpts) { w.messageIDs = append(w.messageIDs, messageIDs...) }
}

// MentionedInTrace links an entity to the user's reasoning traces that mention it.
func MentionedInTrace(traceIDs ...string) WriteOption {
	return func(w *writeOpts) { w.traceIDs = append(w.traceIDs, traceIDs...) }
}

// AddEntity records an entity of the user named by ForUser, or adds to it: its id is derived
// from the user, name and type (the entity a preference's AppliesTo{Name, Type} names), so
// adding it again reaches the same entity. WithSubtype, WithDescription, WithAttributes
// (replacing the stored ones), WithConfidence set; WithAliases adds; MentionedIn and
// MentionedInTrace link it to messages and traces of the user.
func (l *LongTerm) AddEntity(ctx context.Context, name, entityType string, opts ...WriteOption) (*EntityDetail, error) {
	w := collect(opts)
	cmd := &ingest.AddEntity{UserIdentifier: w.user, Name: name, Type: entityType, Subtype: w.subtype,
		Description: w.description, Aliases: w.aliases, Attributes: w.attributes, Confidence: w.confidence,
		MessageIDs: w.messageIDs, TraceIDs: w.traceIDs, Embedding: w.embedding}
	m, r, err := l.c.write(ctx, "add_entity", cmd, "POST", "/v1/entities")
	if err != nil {
		return nil, err
	}
	l.c.owners.put(m.EntityID, w.user)
	e := &EntityDetail{Entity: Entity{ID: m.EntityID, Name: name, Type: entityType}, User: w.user,
		Aliases: w.aliases, Confidence: 1, Receipt: r}
	if w.subtype != "" {
		e.Subtype = &w.subtype
	}
	if w.description != "" {
		e.Description = &w.description
	}
	if w.confidence != nil {
		e.Confidence = *w.confidence
	}
	return e, nil
}

// AddRelationship relates two entities of the user: each by ID, or by Name and Type (created
// when absent). One relationship per source, type and target: adding it again updates it.
// WithDescription, WithConfidence, ValidFrom, ValidUntil and WithAttributes refine it. As
// in the seed it needs no ForUser when this client added an endpoint given by ID.
func (l *LongTerm) AddRelationship(ctx context.Context, source, target EntityRef, relationshipType string, opts ...WriteOption) (*Relationship, error) {
	w := collect(opts)
	if w.user == "" {
		for _, ref := range []EntityRef{source, target} {
			if u, ok := l.c.owners.get(ref.ID); ok && ref.ID != "" {
				w.user = u
				break
			}
		}
	}
	cmd := &ingest.AddRelationship{UserIdentifier: w.user, Source: events.EntityRef(source), Target: events.EntityRef(target),
		Type: relationshipType, Description: w.description, Confidence: w.confidence, ValidFrom: w.validFrom,
		ValidUntil: w.validUntil, Attributes: w.attributes}
	m, r, err := l.c.write(ctx, "add_relationship", cmd, "POST", "/v1/relationships")
	if err != nil {
		return nil, err
	}
	rel := &Relationship{ID: m.RelationshipID, Type: relationshipType, SourceID: refID(w.user, source),
		TargetID: refID(w.user, target), ValidFrom: w.validFrom, ValidUntil: w.validUntil, Confidence: 1, Receipt: r}
	if w.description != "" {
		rel.Description = &w.description
	}
	if w.confidence != nil {
		rel.Confidence = *w.confidence
	}
	return rel, nil
}

func refID(user string, r EntityRef) string {
	if r.ID != "" {
		return r.ID
	}
	return events.EntityID(user, r.Name, r.Type)
}

// MergeDuplicateEntities merges entity sourceID into targetID (the library's
// merge_duplicate_entities): the target keeps every mention, preference and relationship of
// the source and gains its name as an alias; the source's id resolves to the target on reads.
// It needs no ForUser when this client added the source.
func (l *LongTerm) MergeDuplicateEntities(ctx context.Context, sourceID, targetID string, opts ...WriteOption) (Receipt, error) {
	w := collect(opts)
	if w.user == "" {
		w.user, _ = l.c.owners.get(sourceID)
	}
	_, r, err := l.c.write(ctx, "merge_entities", &ingest.MergeEntities{UserIdentifier: w.user, SourceID: sourceID, TargetID: targetID},
		"POST", "/v1/entities/merge")
	return r, err
}

// DeleteEntity deletes an entity of the user named by ForUser (the hosted service's
// delete_entity): the entity, the entities merged into it (a merged id deletes its
// survivor), its mentions, relationships and applies_to links, and the user's facts whose
// subject or object is one of its names. The messages, traces and preferences stay. An
// entity that does not exist is no error; one of another user is dead-lettered (Fate). It
// needs no ForUser when this client added the entity.
func (l *LongTerm) DeleteEntity(ctx context.Context, entityID string, opts ...WriteOption) (Receipt, error) {
	w := collect(opts)
	if w.user == "" {
		w.user, _ = l.c.owners.get(entityID)
	}
	path := "/entities/" + url.PathEscape(entityID)
	if w.user != "" {
		path = "/users/" + url.PathEscape(w.user) + path
	}
	_, r, err := l.c.write(ctx, "delete_entity", &ingest.DeleteEntity{UserIdentifier: w.user, EntityID: entityID}, "DELETE", "/v1"+path)
	return r, err
}

// AddFact records a subject-predicate-object fact of the user named by ForUser, valid from
// ValidFrom (default: when it is written) until ValidUntil; WithConfidence, WithMetadata.
func (l *LongTerm) AddFact(ctx context.Context, subject, predicate, object string, opts ...WriteOption) (*Fact, error) {
	w := collect(opts)
	cmd := &ingest.AddFact{UserIdentifier: w.user, Subject: subject, Predicate: predicate, Object: object,
		Confidence: w.confidence, ValidFrom: w.validFrom, ValidUntil: w.validUntil, Metadata: w.metadata}
	m, r, err := l.c.write(ctx, "add_fact", cmd, "POST", "/v1/facts")
	if err != nil {
		return nil, err
	}
	f := &Fact{ID: m.FactID, User: w.user, Subject: subject, Predicate: predicate, Object: object, Confidence: 1,
		ValidFrom: w.validFrom, ValidUntil: w.validUntil, Receipt: r}
	if w.confidence != nil {
		f.Confidence = *w.confidence
	}
	return f, nil
}

// GetEntity reads one of the user's entities; a merged entity's id answers its survivor
// (ResolvedFrom says so). ErrNotFound when the user has none of that id.
func (l *LongTerm) GetEntity(ctx context.Context, identifier, id string, opts ...ReadOption) (*EntityDetail, error) {
	var out EntityDetail
	if err := l.c.read(ctx, "get_entity", identifier, readPath(identifier)+"/entities/"+url.PathEscape(id),
		consistency(collectRead(opts)), &out); err != nil {
		return nil, err
	}
	out.User = identifier
	return &out, nil
}

// GetEntityByName reads the user's entity of this name (the library's get_entity_by_name).
// With OfType, the entity of exactly that name and type (its survivor when merged); without,
// the first, in ListEntities order, of those with that name or alias. ErrNotFound when none.
func (l *LongTerm) GetEntityByName(ctx context.Context, identifier, name string, opts ...ReadOption) (*EntityDetail, error) {
	ro := collectRead(opts)
	if ro.entityType == "" {
		page, err := l.ListEntities(ctx, identifier, append(opts, Named(name), Limit(1))...)
		if err != nil {
			return nil, err
		}
		if len(page.Entities) == 0 {
			return nil, &APIError{Op: "get_entity_by_name", Status: 404, Msg: "no entity named " + strconv.Quote(name)}
		}
		return &page.Entities[0], nil
	}
	q := consistency(ro)
	q.Set("name", name)
	q.Set("type", ro.entityType)
	var out EntityDetail
	if err := l.c.read(ctx, "get_entity_by_name", identifier, readPath(identifier)+"/entities/by-name", q, &out); err != nil {
		return nil, err
	}
	out.User = identifier
	return &out, nil
}

// ListEntities lists a page of the user's entities by name (merged ones left out); OfType and
// Named filter, Limit and After(page.NextCursor) page.
func (l *LongTerm) ListEntities(ctx context.Context, identifier string, opts ...ReadOption) (*EntityPage, error) {
	ro := collectRead(opts)
	q := consistency(ro)
	for k, v := range map[string]string{"type": ro.entityType, "name": ro.name, "cursor": ro.cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if ro.limit != 0 {
		q.Set("limit", strconv.Itoa(ro.limit))
	}
	var out EntityPage
	if err := l.c.read(ctx, "list_entities", identifier, readPath(identifier)+"/entities", q, &out); err != nil {
		return nil, err
	}
	for i := range out.Entities {
		out.Entities[i].User = identifier
	}
	return &out, nil
}

// GetRelatedEntities returns the entities related to the user's entity id (the library's
// get_related_entities): Depth (1..3, default 1) hops, RelationshipTypes and Following a
// direction on every hop, at most Limit entities.
func (l *LongTerm) GetRelatedEntities(ctx context.Context, identifier, id string, opts ...ReadOption) (*Related, error) {
	ro := collectRead(opts)
	q := consistency(ro)
	if ro.depth != 0 {
		q.Set("depth", strconv.Itoa(ro.depth))
	}
	for _, t := range ro.relTypes {
		q.Add("type", t)
	}
	if ro.direction != "" {
		q.Set("direction", ro.direction)
	}
	if ro.limit != 0 {
		q.Set("limit", strconv.Itoa(ro.limit))
	}
	var out Related
	if err := l.c.read(ctx, "get_related_entities", identifier,
		readPath(identifier)+"/entities/"+url.PathEscape(id)+"/related", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetFacts lists the user's facts, highest confidence first, then newest: AboutSubject and
// WithPredicate filter, AsOf keeps those valid then, KnownAt those recorded by then (transaction
// time), Limit bounds.
func (l *LongTerm) GetFacts(ctx context.Context, identifier string, opts ...ReadOption) ([]Fact, error) {
	ro := collectRead(opts)
	q := consistency(ro)
	for k, v := range map[string]string{"subject": ro.subject, "predicate": ro.predicate} {
		if v != "" {
			q.Set(k, v)
		}
	}
	setTime(q, "as_of", ro.asOf)
	setTime(q, "known_at", ro.knownAt)
	if ro.limit != 0 {
		q.Set("limit", strconv.Itoa(ro.limit))
	}
	var out struct {
		Facts []Fact `json:"facts"`
	}
	if err := l.c.read(ctx, "get_facts", identifier, readPath(identifier)+"/facts", q, &out); err != nil {
		return nil, err
	}
	for i := range out.Facts {
		out.Facts[i].User = identifier
	}
	return out.Facts, nil
}

// GetFactsAbout is the library's get_facts_about(subject): GetFacts with AboutSubject.
func (l *LongTerm) GetFactsAbout(ctx context.Context, identifier, subject string, opts ...ReadOption) ([]Fact, error) {
	return l.GetFacts(ctx, identifier, append(opts, AboutSubject(subject))...)
}

// OfType keeps the entities of this type (ListEntities, GetEntityByName).
func OfType(entityType string) ReadOption { return func(r *readOpts) { r.entityType = entityType } }

// Named keeps the entities of this name or with it among their aliases (ListEntities).
func Named(name string) ReadOption { return func(r *readOpts) { r.name = name } }

// Depth sets how many hops GetRelatedEntities walks (1..3).
func Depth(n int) ReadOption { return func(r *readOpts) { r.depth = n } }

// RelationshipTypes keeps the relationships of these types on every hop of GetRelatedEntities.
func RelationshipTypes(types ...string) ReadOption {
	return func(r *readOpts) { r.relTypes = append(r.relTypes, types...) }
}

// Following walks only "out" (source to target) or "in" relationships; default "both".
func Following(direction string) ReadOption { return func(r *readOpts) { r.direction = direction } }

// AboutSubject keeps the facts of this subject (GetFacts).
func AboutSubject(subject string) ReadOption { return func(r *readOpts) { r.subject = subject } }

// WithPredicate keeps the facts of this predicate (GetFacts).
func WithPredicate(predicate string) ReadOption { return func(r *readOpts) { r.predicate = predicate } }
