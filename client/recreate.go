package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/engram-memory/engram/internal/ingest"
)

// ErrGone: the write names a user who was erased and not re-created since. The ingestor
// refuses such a write (HTTP 410, nothing stored); a write that reached the log anyway (sent
// over NATS, or checked just before the erasure) is dropped by the projector, and its fate
// says so (FateRefused, a *GoneError). Users.RecreateUser lets the user's writes in again.
var ErrGone = errors.New("user erased")

// GoneError is a stored write the projector dropped because its user was erased: nothing of
// it was applied, and no dead letter keeps it. Retrying it is refused the same way until the
// user is re-created (Users.RecreateUser).
type GoneError struct {
	EventID  string
	Sequence uint64
	Kind     string
	Reason   string // user_erased
	Message  string
}

func (e *GoneError) Error() string {
	return fmt.Sprintf("engram: %s event %s (sequence %d) refused: %s: %s", e.Kind, e.EventID, e.Sequence, e.Reason, e.Message)
}

// Unwrap makes every GoneError match ErrGone.
func (e *GoneError) Unwrap() error { return ErrGone }

// RecreateUser re-creates a user after their erasure (admin scope): writes for them are
// accepted and projected again, the user starts anew without attributes, and the writes
// refused since the erasure are purged from the log (docs/replay.md). Asked again it answers
// the stored re-creation's receipt; for a user never erased it is ErrConflict.
func (u *Users) RecreateUser(ctx context.Context, identifier string, opts ...WriteOption) (Receipt, error) {
	w := collect(opts)
	_, r, err := u.c.write(ctx, "recreate_user", &ingest.RecreateUser{Identifier: identifier, Reason: w.reason},
		"POST", "/v1/users/"+url.PathEscape(identifier)+"/recreate")
	return r, err
}
