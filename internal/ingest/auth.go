package ingest

import (
	"context"
	"errors"
	"net/http"

	"github.com/engram-memory/engram/internal/auth"
)

// WithAuthenticator makes every route authenticate its caller (docs/security.md): the erase
// and re-create endpoints need the admin scope, every other write the write scope, and each command's user
// must be one the principal may act for — checked after the command is decoded and before
// anything is published; in a batch, every command before any is. The principal's name
// becomes the events' actor. Without this option the handler trusts its callers (tests, or a
// deployment that authenticates in front of it).
func WithAuthenticator(a *auth.Authenticator) Option {
	return func(h *Handler) error {
		if a == nil {
			return errors.New("ingest: nil authenticator")
		}
		h.auth = a
		return nil
	}
}

// scopeOf is the scope a command needs.
func scopeOf(op string) auth.Scope {
	if op == OpEraseUser || op == OpRecreateUser {
		return auth.ScopeAdmin
	}
	return auth.ScopeWrite
}

// guard puts a route behind authentication and the scope.
func (h *Handler) guard(scope auth.Scope, next http.Handler) http.Handler {
	if h.auth == nil {
		return next
	}
	return auth.Handler(h.auth, h.logger, scope, next)
}

// authorize checks that the request's principal may write for user with op's scope.
func (h *Handler) authorize(ctx context.Context, op, user string) error {
	if h.auth == nil {
		return nil
	}
	return auth.Authorize(ctx, user, scopeOf(op))
}

// actor is the principal's name, or the actor a context carries (WithActor).
func actor(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok && p.Name != "" {
		return p.Name
	}
	return ActorFrom(ctx)
}

// authStatus is the status auth.WriteError answers err with.
func authStatus(err error) int {
	if errors.Is(err, auth.ErrUnauthenticated) {
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}
