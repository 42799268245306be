package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
)

// The reads of a user's entities, relationships and facts (docs/query.md, "Entities,
// relationships and facts"): an entity by id or by name and type, a list of the user's
// entities, the entities related to one (breadth first, at most three hops) and the user's
// facts. A user read starts at the User's unique identifier and reaches entities through
// HAS_ENTITY and facts through HAS_FACT, checking the owner afterwards; the shared tenant's
// (no User node) start at the Entity or Fact owner index or at the unique entity id.
//
// A merged entity stays as a tombstone (merged_into, MERGED_INTO its survivor, docs/graph.md):
// the single-entity reads answer its survivor, saying which id was asked for
// (resolved_from); the list never shows a tombstone, the survivor carries its name as an
// alias and its id in merged_ids.

// entityProjection is the answer of one entity e: its properties and the ids merged into it.
const entityProjection = `.id, .name, .type, .subtype, .description, .aliases, .metadata, .confidence,
  .created_at, .updated_at, .recorded_at, .recorded_seq,
  merged_ids: [x IN [(m:Entity)-[:MERGED_INTO]->(e) | m {.id, .owner}] WHERE x.owner = $owner | x.id]`

const (
	// An entity by id, through the user's HAS_ENTITY (another user's id finds nothing), then
	// its survivor when it was merged (merged_into names it; the MERGED_INTO edge reaches it).
	// Both ends are pinned to their unique seeks: without the hint on t, a graph of users but
	// few entities made the planner solve t.owner = u.owner as a seek of every entity of the
	// tenant in the Entity(owner) index, a plan replan=skip then keeps as the tenant grows.
	userEntityByID = `
MATCH (u:User {identifier: $identifier})-[:HAS_ENTITY]->(t:Entity {id: $entity_id})
USING INDEX SEEK u:User(identifier)
USING INDEX SEEK t:Entity(id)
WHERE u.owner = $owner AND t.owner = u.owner` + entityResolved
	sharedEntityByID = `
MATCH (t:Entity {id: $entity_id})
USING INDEX SEEK t:Entity(id)
WHERE t.owner = $owner` + entityResolved
	entityResolved = entityResolve + `
RETURN e {` + entityProjection + `, resolved_from: CASE WHEN e <> t THEN t.id END} AS entity
`
	// entityResolve is e, the entity t names: its survivor when it was merged, else itself.
	entityResolve = `
WITH t, [x IN [(t)-[:MERGED_INTO]->(s:Entity) | s] WHERE x.owner = $owner] AS into
WITH t, CASE WHEN t.merged_into IS NULL OR size(into) = 0 THEN t ELSE into[0] END AS e`

	// The user's entities, tombstones left out, by name then id; the cursor is the (name, id)
	// of the last entity of a page.
	userEntities = `
MATCH (u:User {identifier: $identifier})
USING INDEX SEEK u:User(identifier)
WHERE u.owner = $owner
UNWIND [(u)-[:HAS_ENTITY]->(e:Entity) | e] AS e
WITH e WHERE e.owner = $owner` + entitiesFiltered
	sharedEntities = `
MATCH (e:Entity {owner: $owner})
USING INDEX SEEK e:Entity(owner)
WHERE e.owner = $owner` + entitiesFiltered
	entitiesFiltered = `
  AND e.merged_into IS NULL
  AND ($type IS NULL OR e.type = $type)
  AND ($name IS NULL OR e.name = $name OR $name IN coalesce(e.aliases, []))
  AND ($cursor_id IS NULL OR e.name > $cursor_name OR (e.name = $cursor_name AND e.id > $cursor_id))
RETURN e {` + entityProjection + `, resolved_from: null} AS entity
ORDER BY e.name, e.id
LIMIT $limit
`

	// The walk of RelatedEntities in one statement: the entity by id (its survivor s when it
	// was merged), then up to three breadth-first levels of RELATED_TO edges, each level the
	// edges of every entity first reached at the level before, each such entity by its unique
	// id and the user's (HAS_ENTITY). A level is read only while the entities reached so far
	// are at most $limit: once more are, the walk is cut and says so, and Go never looks
	// further (RelatedEntities), so a level's frontier is all that the level before reached,
	// whatever order Go gives them. The edges of one entity x: both directions, the other
	// end's owner checked after the expansion.
	userRelatedWalk = `
MATCH (u:User {identifier: $identifier})-[:HAS_ENTITY]->(t:Entity {id: $entity_id})
USING INDEX SEEK u:User(identifier)
USING INDEX SEEK t:Entity(id)
WHERE u.owner = $owner AND t.owner = u.owner
WITH u, t, [x IN [(t)-[:MERGED_INTO]->(s:Entity) | s] WHERE x.owner = $owner] AS into
WITH u, t, CASE WHEN t.merged_into IS NULL OR size(into) = 0 THEN t ELSE into[0] END AS s` + relatedWalk
	sharedRelatedWalk = `
MATCH (t:Entity {id: $entity_id})
USING INDEX SEEK t:Entity(id)
WHERE t.owner = $owner
WITH null AS u, t, [x IN [(t)-[:MERGED_INTO]->(s:Entity) | s] WHERE x.owner = $owner] AS into
WITH u, t, CASE WHEN t.merged_into IS NULL OR size(into) = 0 THEN t ELSE into[0] END AS s` + relatedWalk
	relatedWalk = `
CALL (s) {
  WITH s AS x
  RETURN [{from: x.id, edges: ` + entityEdges + `}] AS level1
}
CALL (s, level1) {
  UNWIND level1 AS l UNWIND l.edges AS h
  WITH h WHERE h.e.id <> s.id
  RETURN collect(DISTINCT h.e.id) AS reached1
}
CALL (u, reached1) {
  WITH u, reached1 WHERE $depth >= 2 AND size(reached1) <= $limit
  UNWIND reached1 AS fid` + relatedFrontier + `
  RETURN collect({from: x.id, edges: ` + entityEdges + `}) AS level2
}
CALL (s, reached1, level2) {
  UNWIND level2 AS l UNWIND l.edges AS h
  WITH h WHERE h.e.id <> s.id AND NOT h.e.id IN reached1
  RETURN collect(DISTINCT h.e.id) AS reached2
}
CALL (u, reached1, reached2) {
  WITH u, reached1, reached2 WHERE $depth >= 3 AND size(reached1) + size(reached2) <= $limit
  UNWIND reached2 AS fid` + relatedFrontier + `
  RETURN collect({from: x.id, edges: ` + entityEdges + `}) AS level3
}
WITH t, s AS e, level1, level2, level3
RETURN {entity: e {` + entityProjection + `, resolved_from: CASE WHEN e <> t THEN t.id END},
        levels: [level1, level2, level3]} AS walk
`
	// relatedFrontier is x, the entity fid of a level's frontier: the user's by HAS_ENTITY, or
	// the shared tenant's by owner (u is null).
	relatedFrontier = `
  MATCH (x:Entity {id: fid})
  USING INDEX SEEK x:Entity(id)
  WHERE x.owner = $owner AND (u IS NULL OR EXISTS { (u)-[:HAS_ENTITY]->(x) })`
	entityEdges = `[h IN [(x)-[r:RELATED_TO]-(e:Entity) | {
    out: startNode(r) = x, owner: e.owner, merged: e.merged_into,
    r: r {.id, .type, .description, .confidence, .valid_from, .valid_until, .attributes_json,
          .created_at, .updated_at, .recorded_at, source_id: startNode(r).id, target_id: endNode(r).id},
    e: e {` + entityProjection + `, resolved_from: null}}]
  WHERE h.owner = $owner AND h.merged IS NULL
    AND ($types IS NULL OR h.r.type IN $types)
    AND ($direction = 'both' OR h.out = ($direction = 'out'))]`
)

// Bounds of the related-entities read.
const (
	// MaxRelatedDepth is the deepest RelatedEntities walks.
	MaxRelatedDepth = 3
	// maxRelationshipTypes bounds the relationship types a related read filters by.
	maxRelationshipTypes = 32
)

// EntityDetail is one of the user's entities: the library's Entity (name, POLE+O type,
// subtype, description, aliases, attributes, confidence) with Engram's times and merges.
type EntityDetail struct {
	Entity
	Subtype     *string         `json:"subtype"`
	Description *string         `json:"description"`
	Aliases     []string        `json:"aliases"`
	Attributes  json.RawMessage `json:"attributes"` // {} when none
	Confidence  float64         `json:"confidence"` // 1.0 when never given, as the library reads it
	CreatedAt   *time.Time      `json:"created_at"`
	UpdatedAt   *time.Time      `json:"updated_at"`
	RecordedAt  *time.Time      `json:"recorded_at"`
	RecordedSeq *int64          `json:"recorded_seq"`
	// MergedIDs are the ids of the entities merged into this one.
	MergedIDs []string `json:"merged_ids"`
	// ResolvedFrom is the id asked for when it names an entity merged into this one; null
	// when this entity was asked for itself (and in lists).
	ResolvedFrom *string `json:"resolved_from"`
}

// EntityPage is one page of the user's entities.
type EntityPage struct {
	Entities []EntityDetail `json:"entities"`
	// NextCursor continues after the last entity of this page; empty when it is the last.
	NextCursor string `json:"next_cursor,omitempty"`
}

// EntityQuery selects a user's entities. Its zero value is the first DefaultLimit entities.
type EntityQuery struct {
	Type   string // only entities of this type (exact, case-sensitive) when set
	Name   string // only entities of this name or with it among their aliases (exact) when set
	Limit  int    // 1..the Reader's max limit; 0 means DefaultLimit
	Cursor string // EntityPage.NextCursor of the previous page, with the same filters
}

// Direction of the relationships a related read follows, seen from the entity it starts at.
type Direction string

// Directions.
const (
	Both     Direction = "both" // either way (the default, as the library's get_related_entities)
	Outgoing Direction = "out"  // from the entity along the edge: (entity)-[:RELATED_TO]->(other)
	Incoming Direction = "in"   // into the entity: (other)-[:RELATED_TO]->(entity)
)

// RelatedQuery refines RelatedEntities. Its zero value is one hop in both directions, every
// relationship type, at most DefaultLimit entities.
type RelatedQuery struct {
	Depth     int       // 1..MaxRelatedDepth hops; 0 means 1
	Types     []string  // follow only relationships of these types (exact) when set
	Direction Direction // "" means Both; applies to every hop
	Limit     int       // at most this many related entities; 0 means DefaultLimit
}

// Relationship is one RELATED_TO edge on the way to a related entity.
type Relationship struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Direction is how the walk crossed the edge: "out" from the previous entity on the path
	// (its source) to the next (its target), "in" against the edge.
	Direction   Direction       `json:"direction"`
	SourceID    string          `json:"source_id"`
	TargetID    string          `json:"target_id"`
	Description *string         `json:"description"`
	Confidence  float64         `json:"confidence"` // 1.0 when never given
	ValidFrom   *time.Time      `json:"valid_from"`
	ValidUntil  *time.Time      `json:"valid_until"`
	Attributes  json.RawMessage `json:"attributes"` // {} when none
	CreatedAt   *time.Time      `json:"created_at"`
	UpdatedAt   *time.Time      `json:"updated_at"`
	RecordedAt  *time.Time      `json:"recorded_at"`
}

// RelatedEntity is an entity reached from the start, at its shortest distance, with the
// relationships of the path that first reached it (Path[len-1] joins it to the path).
type RelatedEntity struct {
	Entity EntityDetail   `json:"entity"`
	Depth  int            `json:"depth"`
	Path   []Relationship `json:"path"`
}

// Related is the answer of RelatedEntities.
type Related struct {
	Entity  EntityDetail    `json:"entity"` // the entity asked about (its survivor when merged)
	Related []RelatedEntity `json:"related"`
	// Truncated: more entities were within reach than the limit let through.
	Truncated bool `json:"truncated"`
}

// Fact is one subject-predicate-object fact of the user.
type Fact struct {
	ID          string          `json:"id"`
	Subject     string          `json:"subject"`
	Predicate   string          `json:"predicate"`
	Object      string          `json:"object"`
	Confidence  float64         `json:"confidence"`
	ValidFrom   *time.Time      `json:"valid_from"`
	ValidUntil  *time.Time      `json:"valid_until"` // null while open
	CreatedAt   *time.Time      `json:"created_at"`
	Metadata    json.RawMessage `json:"metadata"` // {} when none
	RecordedAt  *time.Time      `json:"recorded_at"`
	RecordedSeq *int64          `json:"recorded_seq"`
}

// FactQuery selects a user's facts. Its zero value is the user's first DefaultLimit facts.
type FactQuery struct {
	Subject   string     // only facts of this subject (exact) when set: the library's get_facts_about
	Predicate string     // only facts of this predicate (exact) when set
	AsOf      *time.Time // only facts valid then: valid_from <= t < valid_until (open bounds where null)
	KnownAt   *time.Time // only facts the system knew then (transaction time): recorded_at <= t
	Limit     int        // 1..the Reader's max limit; 0 means DefaultLimit
}

// EntityNotFoundError says which entity a tenant does not have (it matches ErrNotFound).
type EntityNotFoundError struct {
	ID         string // the id asked for, or the id derived from Name and Type
	Name, Type string // set when the entity was asked for by name and type
}

func (e *EntityNotFoundError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("entity %q of type %q not found", e.Name, e.Type)
	}
	return fmt.Sprintf("entity %q not found", e.ID)
}

// Unwrap makes every EntityNotFoundError match ErrNotFound.
func (e *EntityNotFoundError) Unwrap() error { return ErrNotFound }

// GetEntity returns the user's entity of id, or its survivor when it was merged
// (ResolvedFrom says so); an *EntityNotFoundError (ErrNotFound) when the user has none of
// that id. "" is the shared tenant.
func (r *Reader) GetEntity(ctx context.Context, identifier, id string) (EntityDetail, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return EntityDetail{}, err
	}
	if err := checkText("entity_id", id, maxTextRunes); err != nil {
		return EntityDetail{}, err
	}
	return r.entity(ctx, identifier, owner, id, &EntityNotFoundError{ID: id})
}

// GetEntityByName returns the user's entity of name and type, exactly as written (the id
// events.EntityID derives from them, the one a preference's applies_to {name, type} reaches),
// or its survivor when it was merged; an *EntityNotFoundError otherwise. Entities known by a
// name only as an alias, or by a name alone, are listed by Entities with EntityQuery.Name.
func (r *Reader) GetEntityByName(ctx context.Context, identifier, name, typ string) (EntityDetail, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return EntityDetail{}, err
	}
	if err := checkText("name", name, maxTextRunes); err != nil {
		return EntityDetail{}, err
	}
	if err := checkText("type", typ, maxTextRunes); err != nil {
		return EntityDetail{}, err
	}
	id := events.EntityID(identifier, name, typ)
	return r.entity(ctx, identifier, owner, id, &EntityNotFoundError{ID: id, Name: name, Type: typ})
}

func (r *Reader) entity(ctx context.Context, identifier, owner, id string, missing error) (EntityDetail, error) {
	rows, err := r.read(ctx, "entity", pick(identifier, userEntityByID, sharedEntityByID),
		map[string]any{"identifier": identifier, "owner": owner, "entity_id": id})
	if err != nil {
		return EntityDetail{}, err
	}
	if len(rows) == 0 {
		return EntityDetail{}, missing
	}
	return entityOf(rows[0]), nil
}

// Entities returns a page of the user's entities (merged ones left out), ordered by name,
// then id. An unknown user has none; "" is the shared tenant.
func (r *Reader) Entities(ctx context.Context, identifier string, q EntityQuery) (EntityPage, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return EntityPage{}, err
	}
	params := map[string]any{"identifier": identifier, "owner": owner, "type": nil, "name": nil,
		"cursor_name": nil, "cursor_id": nil}
	for _, f := range []struct{ field, v string }{{"type", q.Type}, {"name", q.Name}} {
		if f.v != "" {
			if err := checkText(f.field, f.v, maxTextRunes); err != nil {
				return EntityPage{}, err
			}
			params[f.field] = f.v
		}
	}
	n, err := limit(q.Limit, r.maxLimit)
	if err != nil {
		return EntityPage{}, err
	}
	params["limit"] = int64(n) + 1
	if q.Cursor != "" {
		c, err := decodeEntityCursor(q.Cursor)
		if err != nil {
			return EntityPage{}, err
		}
		params["cursor_name"], params["cursor_id"] = c.name, c.id
	}
	rows, err := r.read(ctx, "entities", pick(identifier, userEntities, sharedEntities), params)
	if err != nil {
		return EntityPage{}, err
	}
	page := EntityPage{Entities: make([]EntityDetail, 0, min(len(rows), n))}
	for i, m := range rows {
		if i == n {
			last := page.Entities[n-1]
			page.NextCursor = entityCursor{name: last.Name, id: last.ID}.encode()
			break
		}
		page.Entities = append(page.Entities, entityOf(m))
	}
	return page, nil
}

// RelatedEntities walks the RELATED_TO edges from the user's entity of id (its survivor when
// it was merged) breadth first, up to q.Depth hops, and returns each entity reached once, at
// its shortest distance, with the path that first reached it, nearest first. Within one
// level, entities come in the order of the entity they were reached from, then by
// relationship type, name and id, so the answer is stable. It stops at q.Limit entities
// (Truncated says whether more were within reach); each level's edges are read only from the
// entities the previous level let through. An *EntityNotFoundError when the user has no such
// entity; "" is the shared tenant. The levels are read in one transaction.
func (r *Reader) RelatedEntities(ctx context.Context, identifier, id string, q RelatedQuery) (Related, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return Related{}, err
	}
	if err := checkText("entity_id", id, maxTextRunes); err != nil {
		return Related{}, err
	}
	depth := q.Depth
	if depth == 0 {
		depth = 1
	}
	if depth < 1 || depth > MaxRelatedDepth {
		return Related{}, badArg("depth", "%d is out of range: want 1 to %d", depth, MaxRelatedDepth)
	}
	dir := q.Direction
	switch dir {
	case "":
		dir = Both
	case Both, Outgoing, Incoming:
	default:
		return Related{}, badArg("direction", "%q: want out, in or both", clip(string(dir)))
	}
	var types any
	if len(q.Types) > 0 {
		if len(q.Types) > maxRelationshipTypes {
			return Related{}, badArg("type", "%d relationship types given, at most %d allowed", len(q.Types), maxRelationshipTypes)
		}
		list := make([]any, 0, len(q.Types))
		for _, t := range q.Types {
			if err := checkText("type", t, maxTextRunes); err != nil {
				return Related{}, err
			}
			list = append(list, t)
		}
		types = list
	}
	n, err := limit(q.Limit, r.maxLimit)
	if err != nil {
		return Related{}, err
	}

	rows, err := r.read(ctx, "related entities", pick(identifier, userRelatedWalk, sharedRelatedWalk), map[string]any{
		"identifier": identifier, "owner": owner, "entity_id": id, "types": types, "direction": string(dir),
		"depth": int64(depth), "limit": int64(n)})
	if err != nil {
		return Related{}, err
	}
	if len(rows) == 0 {
		return Related{}, &EntityNotFoundError{ID: id}
	}
	entity, _ := rows[0]["entity"].(map[string]any)
	levels, _ := rows[0]["levels"].([]any)
	out := Related{Entity: entityOf(entity), Related: []RelatedEntity{}}
	start := out.Entity.ID
	seen := map[string]bool{start: true}
	paths := map[string][]Relationship{start: {}}
	frontier := []string{start}
	for level := 1; level <= depth && len(frontier) > 0 && !out.Truncated; level++ {
		edges := map[string][]map[string]any{}
		if level <= len(levels) {
			for _, x := range levels[level-1].([]any) {
				m, _ := x.(map[string]any)
				edges[str(m, "from")] = mapList(m, "edges")
			}
		}
		var next []string
	walk:
		for _, from := range frontier {
			hops := edges[from]
			sort.SliceStable(hops, func(i, j int) bool { return hopLess(hops[i], hops[j]) })
			for _, h := range hops {
				e, _ := h["e"].(map[string]any)
				rm, _ := h["r"].(map[string]any)
				other := str(e, "id")
				if seen[other] {
					continue
				}
				if len(out.Related) == n {
					out.Truncated = true
					break walk
				}
				seen[other] = true
				rel := relationshipOf(rm, h["out"] == true)
				path := append(append(make([]Relationship, 0, level), paths[from]...), rel)
				paths[other] = path
				out.Related = append(out.Related, RelatedEntity{Entity: entityOf(e), Depth: level, Path: path})
				next = append(next, other)
			}
		}
		frontier = next
	}
	return out, nil
}

// hopLess orders one entity's edges: by relationship type, then the other end's name and id,
// then the relationship's id.
func hopLess(a, b map[string]any) bool {
	ra, _ := a["r"].(map[string]any)
	rb, _ := b["r"].(map[string]any)
	ea, _ := a["e"].(map[string]any)
	eb, _ := b["e"].(map[string]any)
	for _, c := range [][2]string{{str(ra, "type"), str(rb, "type")}, {str(ea, "name"), str(eb, "name")},
		{str(ea, "id"), str(eb, "id")}, {str(ra, "id"), str(rb, "id")}} {
		if c[0] != c[1] {
			return c[0] < c[1]
		}
	}
	return false
}

// Facts returns the user's facts, optionally of one subject and predicate and valid at
// AsOf, ordered as the library's get_facts_about orders them: highest confidence first, then
// newest created, then by id. An unknown user has none; "" is the shared tenant.
func (r *Reader) Facts(ctx context.Context, identifier string, q FactQuery) ([]Fact, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	params := map[string]any{"identifier": identifier, "owner": owner, "subject": nil, "predicate": nil,
		"as_of": timeParam(q.AsOf), "known_at": timeParam(q.KnownAt)}
	for _, f := range []struct {
		field, v string
		max      int
	}{{"subject", q.Subject, maxFactSubjectRunes}, {"predicate", q.Predicate, maxTextRunes}} {
		if f.v != "" {
			if err := checkText(f.field, f.v, f.max); err != nil {
				return nil, err
			}
			params[f.field] = f.v
		}
	}
	n, err := limit(q.Limit, r.maxLimit)
	if err != nil {
		return nil, err
	}
	params["limit"] = int64(n)
	rows, err := r.read(ctx, "facts", pick(identifier, userFacts, sharedFacts), params)
	if err != nil {
		return nil, err
	}
	out := make([]Fact, 0, len(rows))
	for _, m := range rows {
		out = append(out, Fact{
			ID:          str(m, "id"),
			Subject:     str(m, "subject"),
			Predicate:   str(m, "predicate"),
			Object:      str(m, "object"),
			Confidence:  float(m, "confidence", 1),
			ValidFrom:   timep(m, "valid_from"),
			ValidUntil:  timep(m, "valid_until"),
			CreatedAt:   timep(m, "created_at"),
			Metadata:    object(m, "metadata"),
			RecordedAt:  timep(m, "recorded_at"),
			RecordedSeq: int64p(m, "recorded_seq"),
		})
	}
	return out, nil
}

// maxFactSubjectRunes bounds a fact's subject parameter: the ingestor takes subjects up to the
// length of a conversation title.
const maxFactSubjectRunes = 1024

const (
	userFacts = `
MATCH (u:User {identifier: $identifier})
USING INDEX SEEK u:User(identifier)
WHERE u.owner = $owner
UNWIND [(u)-[:HAS_FACT]->(f:Fact) | f] AS f
WITH f WHERE f.owner = $owner` + factsFiltered
	sharedFacts = `
MATCH (f:Fact {owner: $owner})
USING INDEX SEEK f:Fact(owner)
WHERE f.owner = $owner` + factsFiltered
	factsFiltered = `
  AND ($subject IS NULL OR f.subject = $subject)
  AND ($predicate IS NULL OR f.predicate = $predicate)
WITH f,
  CASE WHEN f.valid_from IS NOT NULL THEN datetime({datetime: f.valid_from, timezone: 'Z'}) END AS valid_from,
  CASE WHEN f.valid_until IS NOT NULL THEN datetime({datetime: f.valid_until, timezone: 'Z'}) END AS valid_until,
  CASE WHEN f.created_at IS NOT NULL THEN datetime({datetime: f.created_at, timezone: 'Z'}) END AS created,
  CASE WHEN f.recorded_at IS NOT NULL THEN datetime({datetime: f.recorded_at, timezone: 'Z'}) END AS recorded
WHERE ($as_of IS NULL OR ((valid_from IS NULL OR valid_from <= $as_of) AND (valid_until IS NULL OR valid_until > $as_of)))
  AND ($known_at IS NULL OR (recorded IS NOT NULL AND recorded <= $known_at))
RETURN f {.id, .subject, .predicate, .object, .confidence, .valid_from, .valid_until, .created_at, .metadata,
          .recorded_at, .recorded_seq} AS fact
ORDER BY coalesce(f.confidence, 1.0) DESC, created DESC, f.id
LIMIT $limit
`
)

// entityOf reads an entity the projections above return.
func entityOf(m map[string]any) EntityDetail {
	aliases := strs(m, "aliases")
	merged := strs(m, "merged_ids")
	sort.Strings(merged)
	return EntityDetail{
		Entity:       Entity{ID: str(m, "id"), Name: str(m, "name"), Type: str(m, "type")},
		Subtype:      strp(m, "subtype"),
		Description:  strp(m, "description"),
		Aliases:      aliases,
		Attributes:   attributesOf(m),
		Confidence:   float(m, "confidence", 1),
		CreatedAt:    timep(m, "created_at"),
		UpdatedAt:    timep(m, "updated_at"),
		RecordedAt:   timep(m, "recorded_at"),
		RecordedSeq:  int64p(m, "recorded_seq"),
		MergedIDs:    merged,
		ResolvedFrom: strp(m, "resolved_from"),
	}
}

// attributesOf reads an entity's attributes where the library keeps them: under "attributes"
// in its metadata JSON (docs/graph.md). {} when there are none.
func attributesOf(m map[string]any) json.RawMessage {
	var meta struct {
		Attributes json.RawMessage `json:"attributes"`
	}
	s, _ := m["metadata"].(string)
	if s == "" || json.Unmarshal([]byte(s), &meta) != nil || len(meta.Attributes) == 0 || meta.Attributes[0] != '{' {
		return json.RawMessage("{}")
	}
	return meta.Attributes
}

func relationshipOf(m map[string]any, out bool) Relationship {
	dir := Incoming
	if out {
		dir = Outgoing
	}
	return Relationship{
		ID:          str(m, "id"),
		Type:        str(m, "type"),
		Direction:   dir,
		SourceID:    str(m, "source_id"),
		TargetID:    str(m, "target_id"),
		Description: strp(m, "description"),
		Confidence:  float(m, "confidence", 1),
		ValidFrom:   timep(m, "valid_from"),
		ValidUntil:  timep(m, "valid_until"),
		Attributes:  object(m, "attributes_json"),
		CreatedAt:   timep(m, "created_at"),
		UpdatedAt:   timep(m, "updated_at"),
		RecordedAt:  timep(m, "recorded_at"),
	}
}

// entityCursor is a decoded entity page cursor: the (name, id) of the last entity returned.
type entityCursor struct{ name, id string }

const entityCursorPrefix = "e1|"

func (c entityCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(entityCursorPrefix + c.id + "|" + c.name))
}

func decodeEntityCursor(s string) (entityCursor, error) {
	bad := badArg("cursor", "not a cursor this API returned")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return entityCursor{}, bad
	}
	rest, ok := strings.CutPrefix(string(raw), entityCursorPrefix)
	if !ok {
		return entityCursor{}, bad
	}
	id, name, ok := strings.Cut(rest, "|")
	if !ok || checkText("cursor", id, maxTextRunes) != nil || checkText("cursor", name, maxTextRunes) != nil {
		return entityCursor{}, bad
	}
	return entityCursor{name: name, id: id}, nil
}

// readTx runs several read queries in one read transaction (one snapshot of the graph);
// errors are classified as read's are.
func (r *Reader) readTx(ctx context.Context, op string, body func(run func(cypher string, params map[string]any) ([]map[string]any, error)) error) error {
	sess := r.driver.NewSession(ctx, neo4j.SessionConfig{DatabaseName: r.database, AccessMode: neo4j.AccessModeRead})
	defer func() { _ = sess.Close(context.WithoutCancel(ctx)) }()
	_, err := sess.ExecuteRead(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
		return nil, body(func(cypher string, params map[string]any) ([]map[string]any, error) {
			res, err := tx.Run(ctx, readOptions+cypher, params)
			if err != nil {
				return nil, err
			}
			recs, err := res.Collect(ctx)
			if err != nil {
				return nil, err
			}
			out := make([]map[string]any, 0, len(recs))
			for _, rec := range recs {
				if len(rec.Values) == 0 {
					continue
				}
				m, ok := rec.Values[0].(map[string]any)
				if !ok {
					return nil, fmt.Errorf("record is %T, want a map", rec.Values[0])
				}
				out = append(out, m)
			}
			return out, nil
		})
	})
	if err == nil {
		return nil
	}
	var missing *EntityNotFoundError
	var arg *ArgumentError
	switch {
	case errors.As(err, &missing), errors.As(err, &arg):
		return err
	case graph.IsUnavailable(err):
		return fmt.Errorf("query %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("query %s: %w", op, err)
}
