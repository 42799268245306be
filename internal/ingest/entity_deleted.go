package ingest

import "github.com/engram-memory/engram/internal/events"

// OpDeleteEntity is the op of DeleteEntity (a batch entry's "op").
const OpDeleteEntity = "delete_entity"

// DeleteEntity deletes an entity of the user (entity_deleted) with its mentions, relationships,
// the entities merged into it and the facts that name it. An entity that does not exist is no
// error: the event is applied as a no-op.
type DeleteEntity struct {
	EventID        string `json:"event_id,omitempty"`
	UserIdentifier string `json:"user_identifier,omitempty"`
	EntityID       string `json:"entity_id"`
}

// Op implements Command.
func (*DeleteEntity) Op() string { return OpDeleteEntity }

// Kind implements Command.
func (*DeleteEntity) Kind() events.Kind { return events.KindEntityDeleted }

func (c *DeleteEntity) build(s *Settings) (string, any, Minted, error) {
	user, err := s.user(c.UserIdentifier)
	if err != nil {
		return "", nil, Minted{}, err
	}
	if err := reference("entity_id", c.EntityID); err != nil {
		return "", nil, Minted{}, err
	}
	return user, events.EntityDeleted{EntityID: c.EntityID}, Minted{EntityID: c.EntityID}, nil
}
