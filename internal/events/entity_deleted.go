package events

// EntityDeleted deletes an entity of the user: the Entity node goes with every edge it has
// (its mentions, its relationships, the preferences' APPLIES_TO), the entities merged into it
// (whose ids answer it) and the user's facts whose subject or object is one of its names. A
// merged id names its survivor. Deleting an entity that does not exist, or no longer does,
// is a no-op; one of another user is refused. The event is the audit of the deletion (what,
// when, who): it holds the id only, and the entity's content stays in the log's earlier
// events until the user is erased.
type EntityDeleted struct {
	EntityID string `json:"entity_id"`
}

// entityDeleted is typed for KindEntityDeleted.
func (s *scanner) entityDeleted(r *rule) (any, bool) {
	var d EntityDeleted
	ok := s.fields(r, 0, func(name string, p *rule, depth int) bool {
		if name == "entity_id" {
			return s.stringInto(p, &d.EntityID)
		}
		return false
	})
	return d, ok
}
