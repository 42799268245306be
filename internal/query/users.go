package query

import (
	"context"
)

const userByIdentifier = `
MATCH (u:User {identifier: $identifier})
USING INDEX SEEK u:User(identifier)
WHERE u.owner = $owner
RETURN u {.id, .identifier, .attributes_json, .created_at, .recorded_at} AS user
`

// User returns the user with identifier, or ErrNotFound.
func (r *Reader) User(ctx context.Context, identifier string) (User, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return User{}, err
	}
	rows, err := r.read(ctx, "user", userByIdentifier, map[string]any{"identifier": identifier, "owner": owner})
	if err != nil {
		return User{}, err
	}
	if len(rows) == 0 {
		return User{}, ErrNotFound
	}
	m := rows[0]
	return User{
		ID:         str(m, "id"),
		Identifier: str(m, "identifier"),
		Attributes: object(m, "attributes_json"),
		CreatedAt:  timep(m, "created_at"),
		RecordedAt: timep(m, "recorded_at"),
	}, nil
}
