package mcp

import (
	"context"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/engram-memory/engram/client"
)

// The library's entities, relationships and facts as tools (the kit's memory_add_entity,
// memory_get_entity, memory_create_relationship; the library's add_fact, get_facts_about,
// get_related_entities, merge_duplicate_entities), each a call of the Go client's LongTerm,
// scoped to the call's user.

// AddEntityIn is the input of memory_add_entity.
type AddEntityIn struct {
	UserArg
	Name        string         `json:"name" jsonschema:"the entity's name, e.g. Healthcare or Sara Lee"`
	Type        string         `json:"type" jsonschema:"its POLE+O type: PERSON, OBJECT, LOCATION, EVENT, ORGANIZATION, or your own (e.g. Industry)"`
	Subtype     string         `json:"subtype,omitempty" jsonschema:"a finer type, e.g. VEHICLE of OBJECT"`
	Description string         `json:"description,omitempty" jsonschema:"what it is"`
	Aliases     []string       `json:"aliases,omitempty" jsonschema:"other names it goes by (added to the ones it has)"`
	Attributes  map[string]any `json:"attributes,omitempty" jsonschema:"a JSON object kept with it (replaces the stored one)"`
	Confidence  *float64       `json:"confidence,omitempty" jsonschema:"how sure you are of it, 0 to 1 (default 1)"`
	MessageIDs  []string       `json:"message_ids,omitempty" jsonschema:"ids of the user's messages that mention it (memory_get_entity_mentions reads them back)"`
	TraceIDs    []string       `json:"trace_ids,omitempty" jsonschema:"ids of the user's reasoning traces that mention it"`
}

// EntityOut is an entity as read or written.
type EntityOut struct {
	Entity
	Subtype     *string        `json:"subtype"`
	Description *string        `json:"description"`
	Aliases     []string       `json:"aliases"`
	Attributes  map[string]any `json:"attributes,omitempty"`
	Confidence  float64        `json:"confidence"`
	MergedIDs   []string       `json:"merged_ids" jsonschema:"ids of the entities merged into this one"`
}

// AddEntityOut is what memory_add_entity answers.
type AddEntityOut struct {
	Entity
	Write
}

// GetEntityIn is the input of memory_get_entity.
type GetEntityIn struct {
	UserArg
	EntityID string `json:"entity_id,omitempty" jsonschema:"the entity's id; or give name (and type)"`
	Name     string `json:"name,omitempty" jsonschema:"the entity's name or one of its aliases"`
	Type     string `json:"type,omitempty" jsonschema:"with name: the entity of exactly this name and type"`
}

// ListEntitiesIn is the input of memory_list_entities.
type ListEntitiesIn struct {
	UserArg
	Type   string `json:"type,omitempty" jsonschema:"only entities of this type (exact, case-sensitive)"`
	Name   string `json:"name,omitempty" jsonschema:"only entities of this name or with it among their aliases (exact)"`
	Limit  int    `json:"limit,omitempty" jsonschema:"most entities to return"`
	Cursor string `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page, to continue (same filters)"`
}

// EntitiesOut is what memory_list_entities answers.
type EntitiesOut struct {
	Entities   []EntityOut `json:"entities" jsonschema:"by name, then id; merged entities left out"`
	NextCursor string      `json:"next_cursor,omitempty" jsonschema:"present when more entities follow: pass it as cursor"`
}

// MergeEntitiesIn is the input of memory_merge_entities.
type MergeEntitiesIn struct {
	UserArg
	SourceID string `json:"source_id" jsonschema:"the duplicate to merge away: its id then reads as the target"`
	TargetID string `json:"target_id" jsonschema:"the entity that stays, and gains the source's names as aliases"`
}

// MergeEntitiesOut is what memory_merge_entities answers.
type MergeEntitiesOut struct {
	SourceID string `json:"source_id"`
	TargetID string `json:"target_id" jsonschema:"the entity that stays"`
	Write
}

// RelateIn is the input of memory_create_relationship.
type RelateIn struct {
	UserArg
	Source      client.EntityRef `json:"source" jsonschema:"the source entity: its id, or name and type (created when absent)"`
	Target      client.EntityRef `json:"target" jsonschema:"the target entity: its id, or name and type (created when absent)"`
	Type        string           `json:"relationship_type" jsonschema:"what the source is to the target, e.g. WORKS_AT"`
	Description string           `json:"description,omitempty"`
	Confidence  *float64         `json:"confidence,omitempty" jsonschema:"how sure you are of it, 0 to 1 (default 1)"`
	ValidFrom   string           `json:"valid_from,omitempty" jsonschema:"since when it holds, RFC 3339"`
	ValidUntil  string           `json:"valid_until,omitempty" jsonschema:"until when it holds, RFC 3339 (after valid_from)"`
	Attributes  map[string]any   `json:"attributes,omitempty" jsonschema:"a JSON object kept with it (replaces the stored one)"`
}

// RelateOut is what memory_create_relationship answers.
type RelateOut struct {
	RelationshipID string `json:"relationship_id"`
	SourceID       string `json:"source_id"`
	TargetID       string `json:"target_id"`
	Write
}

// RelatedIn is the input of memory_get_related_entities.
type RelatedIn struct {
	UserArg
	EntityID          string   `json:"entity_id" jsonschema:"the entity to start from"`
	Depth             int      `json:"depth,omitempty" jsonschema:"how many relationships away (1 to 3)"`
	RelationshipTypes []string `json:"relationship_types,omitempty" jsonschema:"follow only relationships of these types (any of them), on every hop"`
	Direction         string   `json:"direction,omitempty" jsonschema:"follow relationships out (from source to target), in (against them) or both ways (default), on every hop"`
	Limit             int      `json:"limit,omitempty" jsonschema:"most entities to return"`
}

// RelatedOut is what memory_get_related_entities answers.
type RelatedOut struct {
	Entity    EntityOut       `json:"entity" jsonschema:"the entity asked about (its survivor when it was merged)"`
	Related   []RelatedEntity `json:"related" jsonschema:"nearest first"`
	Truncated bool            `json:"truncated" jsonschema:"more entities were within reach than limit let through"`
}

// RelatedEntity is an entity reached, with the relationship that joined it.
type RelatedEntity struct {
	Entity           EntityOut       `json:"entity"`
	Depth            int             `json:"depth"`
	RelationshipType string          `json:"relationship_type" jsonschema:"the type of the last relationship of the path to it"`
	Relationship     RelationshipOut `json:"relationship" jsonschema:"the last relationship of the path to it: the one that joins it"`
}

// RelationshipOut is a relationship between two of the user's entities.
type RelationshipOut struct {
	ID          string         `json:"id"`
	Type        string         `json:"type"`
	Direction   string         `json:"direction" jsonschema:"out: the walk crossed it from its source to its target; in: against it"`
	SourceID    string         `json:"source_id"`
	TargetID    string         `json:"target_id"`
	Description *string        `json:"description"`
	Confidence  float64        `json:"confidence"`
	ValidFrom   *time.Time     `json:"valid_from"`
	ValidUntil  *time.Time     `json:"valid_until"`
	Attributes  map[string]any `json:"attributes,omitempty"`
}

// AddFactIn is the input of memory_add_fact.
type AddFactIn struct {
	UserArg
	Subject    string         `json:"subject" jsonschema:"what the fact is about, e.g. Sara"`
	Predicate  string         `json:"predicate" jsonschema:"e.g. works_at"`
	Object     string         `json:"object" jsonschema:"e.g. Acme"`
	ValidFrom  string         `json:"valid_from,omitempty" jsonschema:"since when it holds, RFC 3339 (default: now)"`
	ValidUntil string         `json:"valid_until,omitempty" jsonschema:"until when it holds, RFC 3339 (after valid_from; default: open)"`
	Confidence *float64       `json:"confidence,omitempty" jsonschema:"how sure you are of it, 0 to 1 (default 1)"`
	Metadata   map[string]any `json:"metadata,omitempty" jsonschema:"a JSON object kept with the fact (e.g. its source)"`
}

// AddFactOut is what memory_add_fact answers.
type AddFactOut struct {
	FactID string `json:"fact_id"`
	Write
}

// GetFactsIn is the input of memory_get_facts.
type GetFactsIn struct {
	UserArg
	Subject   string `json:"subject,omitempty" jsonschema:"only facts about this subject"`
	Predicate string `json:"predicate,omitempty" jsonschema:"only facts with this predicate"`
	AsOf      string `json:"as_of,omitempty" jsonschema:"only facts valid at this instant (RFC 3339)"`
	KnownAt   string `json:"known_at,omitempty" jsonschema:"transaction time, RFC 3339: only facts Engram had recorded by this instant"`
	Limit     int    `json:"limit,omitempty" jsonschema:"most facts to return"`
}

// FactsOut is what memory_get_facts answers.
type FactsOut struct {
	Facts []Fact `json:"facts" jsonschema:"highest confidence first, then newest"`
}

// Fact is a subject-predicate-object fact of the user.
type Fact struct {
	ID         string         `json:"id"`
	Subject    string         `json:"subject"`
	Predicate  string         `json:"predicate"`
	Object     string         `json:"object"`
	Confidence float64        `json:"confidence"`
	ValidFrom  *time.Time     `json:"valid_from"`
	ValidUntil *time.Time     `json:"valid_until"`
	Metadata   map[string]any `json:"metadata,omitempty"`
	RecordedAt *time.Time     `json:"recorded_at" jsonschema:"when Engram learned of it (transaction time)"`
}

func addEntityTools(r *registry) {
	// Engram's bounds (ingest.Build): names, types and predicates 256 characters, a fact's
	// subject 1024.
	name := func(path ...string) func(*jsonschema.Schema) { return length(path, 1, 256) }
	id := func(path ...string) func(*jsonschema.Schema) { return length(path, 36, 36) }
	add(r, &sdk.Tool{
		Name: "memory_add_entity",
		Description: "Remember an entity of the user's world (a person, organization, location, object, event, or a type of your own): " +
			"its id is derived from the user, name and type, so adding it again reaches the same entity and adds to it. message_ids " +
			"and trace_ids record the user's messages and traces that mention it. Returns its id (usable in memory_add_preference's " +
			"applies_to and memory_create_relationship).",
		Annotations: upserts,
	}, schemaFor[AddEntityIn](name("name"), name("type"), bounds([]string{"confidence"}, 0, 1),
		items([]string{"message_ids"}, 0, 64), id("message_ids", "[]"),
		items([]string{"trace_ids"}, 0, 64), id("trace_ids", "[]")), addEntity)

	add(r, &sdk.Tool{
		Name: "memory_get_entity",
		Description: "Read one of the user's entities by entity_id, or by name (and type): type, subtype, description, aliases, " +
			"attributes, and the ids merged into it. A merged entity's id answers its survivor.",
		Annotations: readOnly,
	}, schemaFor[GetEntityIn](), getEntity)

	add(r, &sdk.Tool{
		Name: "memory_list_entities",
		Description: "List the user's entities by name, a page at a time, optionally of one type or of one name (an alias counts): " +
			"type, subtype, description, aliases, attributes and the ids merged into each. When more follow, next_cursor continues. " +
			"To find entities by words of their name or description, use memory_search_entities.",
		Annotations: readOnly,
	}, schemaFor[ListEntitiesIn](limit(50, 1000), name("type"), name("name")), listEntities)

	add(r, &sdk.Tool{
		Name: "memory_merge_entities",
		Description: "Merge a duplicate of the user's entities into another (the library's merge_duplicate_entities), e.g. \"Acme Corp\" " +
			"into \"Acme\": the target takes over the source's mentions, preference links and relationships and gains its names as " +
			"aliases; the source's id then reads as the target. It cannot be undone. Both must be this user's entities: an unknown or " +
			"foreign id, or a source already merged into another entity, fails the call and nothing is applied.",
		Annotations: merges,
	}, schemaFor[MergeEntitiesIn](id("source_id"), id("target_id")), mergeEntities)

	add(r, &sdk.Tool{
		Name: "memory_create_relationship",
		Description: "Relate two of the user's entities (source relationship_type target, e.g. Sara WORKS_AT Acme), each by id or by name " +
			"and type (created when absent). One relationship per source, type and target: adding it again updates it.",
		Annotations: upserts,
	}, schemaFor[RelateIn](name("relationship_type"), bounds([]string{"confidence"}, 0, 1), dateTime("valid_from", "valid_until")), relate)

	add(r, &sdk.Tool{
		Name: "memory_get_related_entities",
		Description: "The entities related to one of the user's entities, up to depth relationships away (both directions unless " +
			"direction says; relationship_types keeps some types), nearest first, each with the relationship that reached it " +
			"(type, direction, description, confidence, validity, attributes).",
		Annotations: readOnly,
	}, schemaFor[RelatedIn](limit(20, 1000), bounds([]string{"depth"}, 1, 3), enum([]string{"direction"}, "both", "out", "in"),
		items([]string{"relationship_types"}, 1, 32), name("relationship_types", "[]")), related)

	add(r, &sdk.Tool{
		Name: "memory_add_fact",
		Description: "Remember a fact about the user's world as subject, predicate and object (Sara works_at Acme), valid from valid_from " +
			"until valid_until. Facts are text: they are found by subject and predicate with memory_get_facts.",
		Annotations: writes,
	}, schemaFor[AddFactIn](length([]string{"subject"}, 1, 1024), name("predicate"), length([]string{"object"}, 1, 65536),
		bounds([]string{"confidence"}, 0, 1), dateTime("valid_from", "valid_until")), addFact)

	add(r, &sdk.Tool{
		Name: "memory_get_facts",
		Description: "The user's facts, optionally about one subject or with one predicate, valid at as_of (valid time), or as Engram " +
			"knew them at known_at (transaction time); highest confidence first.",
		Annotations: readOnly,
	}, schemaFor[GetFactsIn](limit(50, 1000), dateTime("as_of", "known_at")), getFacts)
}

func addEntity(ctx context.Context, c *call, in AddEntityIn) (AddEntityOut, error) {
	var opts []client.WriteOption
	if in.Subtype != "" {
		opts = append(opts, client.WithSubtype(in.Subtype))
	}
	if in.Description != "" {
		opts = append(opts, client.WithDescription(in.Description))
	}
	if len(in.Aliases) > 0 {
		opts = append(opts, client.WithAliases(in.Aliases...))
	}
	if in.Attributes != nil {
		opts = append(opts, client.WithAttributes(in.Attributes))
	}
	if in.Confidence != nil {
		opts = append(opts, client.WithConfidence(*in.Confidence))
	}
	if len(in.MessageIDs) > 0 {
		opts = append(opts, client.MentionedIn(in.MessageIDs...))
	}
	if len(in.TraceIDs) > 0 {
		opts = append(opts, client.MentionedInTrace(in.TraceIDs...))
	}
	e, err := c.c.LongTerm.AddEntity(ctx, in.Name, in.Type, c.writeOpts(opts...)...)
	if err != nil {
		return AddEntityOut{}, err
	}
	out := AddEntityOut{Entity: Entity{ID: e.ID, Name: e.Name, Type: e.Type}}
	out.Write, err = c.settle(ctx, e.Receipt)
	return out, err
}

func getEntity(ctx context.Context, c *call, in GetEntityIn) (EntityOut, error) {
	var e *client.EntityDetail
	var err error
	switch {
	case in.EntityID != "" && (in.Name != "" || in.Type != ""):
		return EntityOut{}, &ArgError{Arg: "entity_id", Reason: "give entity_id or name (and type), not both"}
	case in.EntityID != "":
		e, err = c.c.LongTerm.GetEntity(ctx, c.user, in.EntityID, c.readOpts()...)
	case in.Name != "":
		opts := c.readOpts()
		if in.Type != "" {
			opts = append(opts, client.OfType(in.Type))
		}
		e, err = c.c.LongTerm.GetEntityByName(ctx, c.user, in.Name, opts...)
	default:
		return EntityOut{}, &ArgError{Arg: "entity_id", Reason: "give entity_id, or name (and type)"}
	}
	if err != nil {
		return EntityOut{}, err
	}
	return fromEntityDetail(*e), nil
}

func listEntities(ctx context.Context, c *call, in ListEntitiesIn) (EntitiesOut, error) {
	out := EntitiesOut{Entities: []EntityOut{}}
	var opts []client.ReadOption
	if in.Type != "" {
		opts = append(opts, client.OfType(in.Type))
	}
	if in.Name != "" {
		opts = append(opts, client.Named(in.Name))
	}
	if in.Limit != 0 {
		opts = append(opts, client.Limit(in.Limit))
	}
	if in.Cursor != "" {
		opts = append(opts, client.After(in.Cursor))
	}
	page, err := c.c.LongTerm.ListEntities(ctx, c.user, c.readOpts(opts...)...)
	if err != nil {
		return out, err
	}
	out.Entities, out.NextCursor = fromEntityDetails(page.Entities), page.NextCursor
	return out, nil
}

func mergeEntities(ctx context.Context, c *call, in MergeEntitiesIn) (MergeEntitiesOut, error) {
	out := MergeEntitiesOut{SourceID: in.SourceID, TargetID: in.TargetID}
	r, err := c.c.LongTerm.MergeDuplicateEntities(ctx, in.SourceID, in.TargetID, c.writeOpts()...)
	if err != nil {
		return out, err
	}
	out.Write, err = c.settle(ctx, r)
	return out, err
}

func relate(ctx context.Context, c *call, in RelateIn) (RelateOut, error) {
	var opts []client.WriteOption
	if in.Description != "" {
		opts = append(opts, client.WithDescription(in.Description))
	}
	if in.Confidence != nil {
		opts = append(opts, client.WithConfidence(*in.Confidence))
	}
	from, err := parseTime("valid_from", in.ValidFrom)
	if err != nil {
		return RelateOut{}, err
	}
	if from != nil {
		opts = append(opts, client.ValidFrom(*from))
	}
	until, err := parseTime("valid_until", in.ValidUntil)
	if err != nil {
		return RelateOut{}, err
	}
	if until != nil {
		opts = append(opts, client.ValidUntil(*until))
	}
	if in.Attributes != nil {
		opts = append(opts, client.WithAttributes(in.Attributes))
	}
	rel, err := c.c.LongTerm.AddRelationship(ctx, in.Source, in.Target, in.Type, c.writeOpts(opts...)...)
	if err != nil {
		return RelateOut{}, toolError(err, relationshipField)
	}
	out := RelateOut{RelationshipID: rel.ID, SourceID: rel.SourceID, TargetID: rel.TargetID}
	out.Write, err = c.settle(ctx, rel.Receipt)
	return out, err
}

func related(ctx context.Context, c *call, in RelatedIn) (RelatedOut, error) {
	opts := c.readOpts()
	if in.Depth > 0 {
		opts = append(opts, client.Depth(in.Depth))
	}
	if len(in.RelationshipTypes) > 0 {
		opts = append(opts, client.RelationshipTypes(in.RelationshipTypes...))
	}
	if in.Direction != "" {
		opts = append(opts, client.Following(in.Direction))
	}
	if in.Limit > 0 {
		opts = append(opts, client.Limit(in.Limit))
	}
	r, err := c.c.LongTerm.GetRelatedEntities(ctx, c.user, in.EntityID, opts...)
	if err != nil {
		return RelatedOut{}, toolError(err, func(f string) string {
			if f == "type" {
				return "relationship_types"
			}
			return f
		})
	}
	out := RelatedOut{Entity: fromEntityDetail(r.Entity), Related: []RelatedEntity{}, Truncated: r.Truncated}
	for _, x := range r.Related {
		rel := x.Relationship()
		out.Related = append(out.Related, RelatedEntity{Entity: fromEntityDetail(x.Entity), Depth: x.Depth, RelationshipType: rel.Type,
			Relationship: RelationshipOut{ID: rel.ID, Type: rel.Type, Direction: rel.Direction, SourceID: rel.SourceID, TargetID: rel.TargetID,
				Description: rel.Description, Confidence: rel.Confidence, ValidFrom: rel.ValidFrom, ValidUntil: rel.ValidUntil,
				Attributes: object(rel.Attributes)}})
	}
	return out, nil
}

func addFact(ctx context.Context, c *call, in AddFactIn) (AddFactOut, error) {
	from, err := parseTime("valid_from", in.ValidFrom)
	if err != nil {
		return AddFactOut{}, err
	}
	until, err := parseTime("valid_until", in.ValidUntil)
	if err != nil {
		return AddFactOut{}, err
	}
	var opts []client.WriteOption
	if from != nil {
		opts = append(opts, client.ValidFrom(*from))
	}
	if until != nil {
		opts = append(opts, client.ValidUntil(*until))
	}
	if in.Confidence != nil {
		opts = append(opts, client.WithConfidence(*in.Confidence))
	}
	if in.Metadata != nil {
		opts = append(opts, client.WithMetadata(in.Metadata))
	}
	f, err := c.c.LongTerm.AddFact(ctx, in.Subject, in.Predicate, in.Object, c.writeOpts(opts...)...)
	if err != nil {
		return AddFactOut{}, err
	}
	out := AddFactOut{FactID: f.ID}
	out.Write, err = c.settle(ctx, f.Receipt)
	return out, err
}

func getFacts(ctx context.Context, c *call, in GetFactsIn) (FactsOut, error) {
	asOf, err := parseTime("as_of", in.AsOf)
	if err != nil {
		return FactsOut{}, err
	}
	knownAt, err := parseTime("known_at", in.KnownAt)
	if err != nil {
		return FactsOut{}, err
	}
	opts := c.readOpts()
	if in.Subject != "" {
		opts = append(opts, client.AboutSubject(in.Subject))
	}
	if in.Predicate != "" {
		opts = append(opts, client.WithPredicate(in.Predicate))
	}
	if asOf != nil {
		opts = append(opts, client.AsOf(*asOf))
	}
	if knownAt != nil {
		opts = append(opts, client.KnownAt(*knownAt))
	}
	if in.Limit > 0 {
		opts = append(opts, client.Limit(in.Limit))
	}
	fs, err := c.c.LongTerm.GetFacts(ctx, c.user, opts...)
	if err != nil {
		return FactsOut{}, err
	}
	out := FactsOut{Facts: []Fact{}}
	for _, f := range fs {
		out.Facts = append(out.Facts, Fact{ID: f.ID, Subject: f.Subject, Predicate: f.Predicate, Object: f.Object,
			Confidence: f.Confidence, ValidFrom: f.ValidFrom, ValidUntil: f.ValidUntil, Metadata: object(f.Metadata), RecordedAt: f.RecordedAt})
	}
	return out, nil
}

func fromEntityDetail(e client.EntityDetail) EntityOut {
	return EntityOut{Entity: Entity{ID: e.ID, Name: e.Name, Type: e.Type}, Subtype: e.Subtype, Description: e.Description,
		Aliases: nonNil(e.Aliases), Attributes: object(e.Attributes), Confidence: e.Confidence, MergedIDs: nonNil(e.MergedIDs)}
}

// relationshipField maps the relationship command's fields onto memory_create_relationship's
// arguments.
func relationshipField(f string) string {
	if f == "type" {
		return "relationship_type"
	}
	return f
}

func fromEntityDetails(es []client.EntityDetail) []EntityOut {
	out := make([]EntityOut, 0, len(es))
	for _, e := range es {
		out = append(out, fromEntityDetail(e))
	}
	return out
}
