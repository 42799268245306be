package query

import (
	"context"
	"sort"
	"time"

	"github.com/engram-memory/engram/internal/events"
)

// The preference reads. They start at the user's unique identifier (the hint keeps the
// planner from starting at the Preference owner index instead, which statistics sometimes
// favour) and expand HAS_PREFERENCE, so they never scan a label. The preference's owner is
// compared with u.owner, not $owner: a parameter there offers the planner a second leaf, the
// Preference(owner) index, and on a small graph it scanned it and joined (userMessagesHead). Semantics (the seed library's get_preferences_for, GRAPH-SCHEMA):
//   - active_only: no outgoing SUPERSEDED_BY to a Preference;
//   - as_of t: (valid_from IS NULL OR valid_from <= t) AND (valid_until IS NULL OR valid_until > t);
//   - applies_to: an APPLIES_TO Entity by id, else by name and type, else by name.
//
// known_at T (transaction time) reads what the system knew at T: only preferences recorded at
// or before T, and only the supersedes recorded at or before T — a supersede recorded later
// neither makes a preference inactive nor closes its valid_until. The supersede's recorded time
// is the edge's recorded_at, falling back to the old preference's superseded_recorded_at.
//
// Datetimes are compared as instants: Neo4j orders two DateTimes of one instant by their time
// zone (2026-05-01T09:00Z[UTC] > 2026-05-01T09:00Z), so stored values are normalised to offset
// Z, the form of the parameters (timeParam), before any comparison.
//
// Neighbours (entities, supersedes) are collected by expanding from p and only then filtered
// as lists: a predicate on the neighbour inside the pattern would let the planner seek every
// Entity of the owner (or of the name) and join, instead of following p's few edges.
//
// The shared tenant has no User node (docs/graph.md): its reads start at the owner index
// instead (sharedPreferenceHead, shared.go); the rest is the same.
const (
	userPreferenceHead = `
MATCH (u:User {identifier: $identifier})
USING INDEX SEEK u:User(identifier)
WHERE u.owner = $owner
UNWIND [(u)-[:HAS_PREFERENCE]->(p:Preference) | p] AS p
WITH p WHERE p.owner = $owner`
	preferenceBody = `
WITH p,
  CASE WHEN p.recorded_at IS NOT NULL THEN datetime({datetime: p.recorded_at, timezone: 'Z'}) END AS recorded_at,
  CASE WHEN p.valid_from IS NOT NULL THEN datetime({datetime: p.valid_from, timezone: 'Z'}) END AS valid_from,
  CASE WHEN p.valid_until IS NOT NULL THEN datetime({datetime: p.valid_until, timezone: 'Z'}) END AS stored_until
WHERE $known_at IS NULL OR recorded_at <= $known_at
WITH p, valid_from, stored_until,
  [(p)-[:APPLIES_TO]->(e:Entity) | e {.id, .name, .type, .owner}] AS entities,
  [(p)-[s:SUPERSEDED_BY]->(n:Preference) | {id: n.id, owner: n.owner,
    recorded_at: coalesce(s.recorded_at, p.superseded_recorded_at)}] AS replacements,
  [(o:Preference)-[s:SUPERSEDED_BY]->(p) | {id: o.id, owner: o.owner,
    recorded_at: coalesce(s.recorded_at, o.superseded_recorded_at)}] AS replaced
WITH p, valid_from, stored_until,
  [e IN entities WHERE e.owner = $owner | e {.id, .name, .type}] AS applies_to,
  [x IN replacements WHERE x.owner = $owner AND ($known_at IS NULL OR CASE WHEN x.recorded_at IS NULL THEN false
     ELSE datetime({datetime: x.recorded_at, timezone: 'Z'}) <= $known_at END) | x {.id, .recorded_at}] AS by,
  [x IN replaced WHERE x.owner = $owner AND ($known_at IS NULL OR CASE WHEN x.recorded_at IS NULL THEN false
     ELSE datetime({datetime: x.recorded_at, timezone: 'Z'}) <= $known_at END) | x.id] AS supersedes
WITH p, valid_from, applies_to, by, supersedes,
  CASE WHEN $known_at IS NULL OR size(by) > 0 THEN stored_until END AS valid_until
WHERE (NOT $active_only OR size(by) = 0)
  AND ($as_of IS NULL OR ((valid_from IS NULL OR valid_from <= $as_of)
                          AND (valid_until IS NULL OR valid_until > $as_of)))
  AND (($applies_to_id IS NULL AND $applies_to_name IS NULL) OR any(e IN applies_to WHERE CASE
          WHEN $applies_to_id IS NOT NULL THEN e.id = $applies_to_id
          WHEN $applies_to_type IS NOT NULL THEN e.name = $applies_to_name AND e.type = $applies_to_type
          ELSE e.name = $applies_to_name END))
RETURN p {
  .id, .category, .preference, .context, .confidence, .created_at, .valid_from, .metadata,
  .recorded_at, .recorded_seq,
  valid_until: valid_until,
  superseded_by: by,
  superseded_recorded_at: CASE WHEN size(by) > 0 THEN p.superseded_recorded_at END,
  superseded_seq: CASE WHEN size(by) > 0 THEN p.superseded_seq END,
  supersedes: supersedes,
  applies_to: applies_to
} AS preference
`
)

// preferencesFor lists in creation order; preferenceHistory in transaction-time order.
const (
	byCreation        = "ORDER BY p.created_at, p.id"
	byRecording       = "ORDER BY p.recorded_seq, p.recorded_at, p.created_at, p.id"
	preferencesFor    = userPreferenceHead + preferenceBody + byCreation
	preferenceHistory = userPreferenceHead + preferenceBody + byRecording
)

// PreferenceOption narrows PreferencesFor.
type PreferenceOption func(*preferenceQuery) error

type preferenceQuery struct {
	appliesTo  *events.EntityRef
	activeOnly bool
	asOf       *time.Time
	knownAt    *time.Time
}

// AppliesTo keeps the preferences that apply to the entity: by ID when set, else by Name and
// Type, else by Name. ID cannot be combined with Name or Type, and Type needs Name.
func AppliesTo(ref events.EntityRef) PreferenceOption {
	return func(q *preferenceQuery) error {
		if err := checkEntityRef(ref); err != nil {
			return err
		}
		q.appliesTo = &ref
		return nil
	}
}

// ActiveOnly drops superseded preferences (the default); ActiveOnly(false) keeps them.
func ActiveOnly(active bool) PreferenceOption {
	return func(q *preferenceQuery) error {
		q.activeOnly = active
		return nil
	}
}

// AsOf keeps the preferences valid at t (valid time).
func AsOf(t time.Time) PreferenceOption {
	return func(q *preferenceQuery) error {
		t = t.UTC()
		q.asOf = &t
		return nil
	}
}

// KnownAt reads what the system knew at t (transaction time): preferences recorded by t,
// judged active or valid by the supersedes recorded by t.
func KnownAt(t time.Time) PreferenceOption {
	return func(q *preferenceQuery) error {
		t = t.UTC()
		q.knownAt = &t
		return nil
	}
}

func checkEntityRef(ref events.EntityRef) error {
	switch {
	case ref.ID != "" && (ref.Name != "" || ref.Type != ""):
		return badArg("applies_to_id", "give an entity id or a name (with an optional type), not both")
	case ref.ID != "":
		return checkText("applies_to_id", ref.ID, maxTextRunes)
	case ref.Name == "" && ref.Type != "":
		return badArg("applies_to_type", "needs applies_to_name: an entity is matched by name and type, or by name")
	case ref.Name == "":
		return badArg("applies_to_name", "empty entity reference: give applies_to_id or applies_to_name")
	}
	if err := checkText("applies_to_name", ref.Name, maxTextRunes); err != nil {
		return err
	}
	if ref.Type != "" {
		return checkText("applies_to_type", ref.Type, maxTextRunes)
	}
	return nil
}

// PreferencesFor returns the user's preferences, by default the active ones, in creation
// order: the seed library's get_preferences_for plus KnownAt. An unknown user has none; ""
// is the shared tenant.
func (r *Reader) PreferencesFor(ctx context.Context, identifier string, opts ...PreferenceOption) ([]Preference, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	q := preferenceQuery{activeOnly: true}
	for _, o := range opts {
		if err := o(&q); err != nil {
			return nil, err
		}
	}
	params := map[string]any{
		"identifier": identifier, "owner": owner, "active_only": q.activeOnly,
		"as_of": timeParam(q.asOf), "known_at": timeParam(q.knownAt),
		"applies_to_id": nil, "applies_to_name": nil, "applies_to_type": nil,
	}
	if ref := q.appliesTo; ref != nil {
		params["applies_to_id"] = textParam(ref.ID)
		params["applies_to_name"] = textParam(ref.Name)
		params["applies_to_type"] = textParam(ref.Type)
	}
	cypher := pick(identifier, preferencesFor, sharedPreferencesFor)
	if q.knownAt == nil {
		cypher = presentPreferences(pick(identifier, userPreferenceHead, sharedPreferenceHead), q, byCreation)
	}
	return r.preferences(ctx, "preferences", cypher, params)
}

// PreferenceHistory returns every version of the user's preferences — superseded ones too —
// in the order the system recorded them, each with its validity interval, what superseded it
// and what it superseded, and when the system learned of it and of its supersede: the audit
// view. With KnownAt it shows the history as the system knew it at that instant; other
// options are ignored. "" is the shared tenant.
func (r *Reader) PreferenceHistory(ctx context.Context, identifier string, opts ...PreferenceOption) ([]Preference, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	var q preferenceQuery
	for _, o := range opts {
		if err := o(&q); err != nil {
			return nil, err
		}
	}
	params := map[string]any{
		"identifier": identifier, "owner": owner, "active_only": false,
		"as_of": nil, "known_at": timeParam(q.knownAt),
		"applies_to_id": nil, "applies_to_name": nil, "applies_to_type": nil,
	}
	return r.preferences(ctx, "preference history", pick(identifier, preferenceHistory, sharedPreferenceHistory), params)
}

func (r *Reader) preferences(ctx context.Context, op, cypher string, params map[string]any) ([]Preference, error) {
	rows, err := r.read(ctx, op, cypher, params)
	if err != nil {
		return nil, err
	}
	out := make([]Preference, 0, len(rows))
	for _, m := range rows {
		out = append(out, preferenceOf(m))
	}
	return out, nil
}

func preferenceOf(m map[string]any) Preference {
	p := Preference{
		ID:                   str(m, "id"),
		Category:             str(m, "category"),
		Preference:           str(m, "preference"),
		Context:              strp(m, "context"),
		Confidence:           float(m, "confidence", 1.0),
		CreatedAt:            timep(m, "created_at"),
		ValidFrom:            timep(m, "valid_from"),
		ValidUntil:           timep(m, "valid_until"),
		Metadata:             object(m, "metadata"),
		Supersedes:           strs(m, "supersedes"),
		RecordedAt:           timep(m, "recorded_at"),
		RecordedSeq:          int64p(m, "recorded_seq"),
		SupersededRecordedAt: timep(m, "superseded_recorded_at"),
		SupersededSeq:        int64p(m, "superseded_seq"),
	}
	sort.Strings(p.Supersedes)
	// A preference superseded twice (the library allows it) names its earliest replacement.
	by := mapList(m, "superseded_by")
	sort.SliceStable(by, func(i, j int) bool {
		a, b := timep(by[i], "recorded_at"), timep(by[j], "recorded_at")
		return a != nil && (b == nil || a.Before(*b))
	})
	if len(by) > 0 {
		id := str(by[0], "id")
		p.SupersededBy = &id
	}
	for _, e := range mapList(m, "applies_to") {
		p.AppliesTo = append(p.AppliesTo, Entity{ID: str(e, "id"), Name: str(e, "name"), Type: str(e, "type")})
	}
	if p.AppliesTo == nil {
		p.AppliesTo = []Entity{}
	}
	sort.Slice(p.AppliesTo, func(i, j int) bool {
		a, b := p.AppliesTo[i], p.AppliesTo[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.ID < b.ID
	})
	return p
}

// offsetZ is UTC as an offset. The driver sends a time.Time in this zone (named "Offset") as
// a DateTime with offset Z, the form the library's datetime() and the reads' normalised values
// have; in time.UTC it would send the zone id "UTC", which Neo4j orders apart from Z.
var offsetZ = time.FixedZone("Offset", 0)

func timeParam(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.In(offsetZ)
}

func textParam(s string) any {
	if s == "" {
		return nil
	}
	return s
}
