package query

import "strings"

// presentPreferences is the preference read for what the system knows now (no KnownAt), built
// for the options given: a read pays only for the clauses it asks for. Without KnownAt every
// supersede counts and valid_until is the stored one, so no recorded time is compared; without
// AsOf no datetime is compared either, and none is normalised (the projection stores every
// datetime in the offset form, docs/graph.md; the normalisation guards comparisons against
// values written in the zone-id form, and ordering by created_at ties on id as before).
// preferenceBody is the general statement, for KnownAt.
func presentPreferences(head string, q preferenceQuery, order string) string {
	var b strings.Builder
	b.WriteString(head)
	if q.activeOnly {
		// Superseded by a preference of the owner: dropped before anything else is read.
		b.WriteString(`
WITH p WHERE none(o IN [(p)-[:SUPERSEDED_BY]->(n:Preference) | n.owner] WHERE o = $owner)`)
	}
	if q.asOf != nil {
		// CASE rather than "IS NULL OR": the planner solves an OR of a shared preference's
		// properties as a union of two Preference(owner) seeks when the graph is nearly empty
		// (TestReadsAreIndexBackedAsTheGraphGrows), and replan=skip keeps that plan.
		b.WriteString(`
WITH p WHERE CASE WHEN p.valid_from IS NULL THEN true ELSE datetime({datetime: p.valid_from, timezone: 'Z'}) <= $as_of END
  AND CASE WHEN p.valid_until IS NULL THEN true ELSE datetime({datetime: p.valid_until, timezone: 'Z'}) > $as_of END`)
	}
	b.WriteString(`
WITH p, [e IN [(p)-[:APPLIES_TO]->(e:Entity) | e {.id, .name, .type, .owner}] WHERE e.owner = $owner | e {.id, .name, .type}] AS applies_to`)
	if ref := q.appliesTo; ref != nil {
		switch {
		case ref.ID != "":
			b.WriteString(`
WHERE any(e IN applies_to WHERE e.id = $applies_to_id)`)
		case ref.Type != "":
			b.WriteString(`
WHERE any(e IN applies_to WHERE e.name = $applies_to_name AND e.type = $applies_to_type)`)
		default:
			b.WriteString(`
WHERE any(e IN applies_to WHERE e.name = $applies_to_name)`)
		}
	}
	if q.activeOnly {
		b.WriteString(`
RETURN p {
  .id, .category, .preference, .context, .confidence, .created_at, .valid_from, .metadata,
  .recorded_at, .recorded_seq, .valid_until,
  superseded_by: [],`)
	} else {
		b.WriteString(`
WITH p, applies_to, [x IN [(p)-[s:SUPERSEDED_BY]->(n:Preference) | {id: n.id, owner: n.owner,
    recorded_at: coalesce(s.recorded_at, p.superseded_recorded_at)}] WHERE x.owner = $owner | x {.id, .recorded_at}] AS by
RETURN p {
  .id, .category, .preference, .context, .confidence, .created_at, .valid_from, .metadata,
  .recorded_at, .recorded_seq, .valid_until,
  superseded_by: by,
  superseded_recorded_at: CASE WHEN size(by) > 0 THEN p.superseded_recorded_at END,
  superseded_seq: CASE WHEN size(by) > 0 THEN p.superseded_seq END,`)
	}
	b.WriteString(`
  supersedes: [x IN [(o:Preference)-[:SUPERSEDED_BY]->(p) | o {.id, .owner}] WHERE x.owner = $owner | x.id],
  applies_to: applies_to
} AS preference
`)
	b.WriteString(order)
	return b.String()
}
