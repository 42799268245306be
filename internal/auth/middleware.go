package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
)

type principalKey struct{}

// ContextWithPrincipal returns ctx carrying p. Middleware does this for each request; tests
// of handlers use it to act as a given principal.
func ContextWithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the request's principal, if Middleware authenticated one.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// Middleware authenticates every request with a: on success the principal is in the request's
// context (FromContext), else the request is answered 401 with the reason and a
// WWW-Authenticate challenge and never reaches next. It logs refusals with the reason,
// method, path and remote address, never a credential.
func Middleware(a *Authenticator, logger *slog.Logger) func(http.Handler) http.Handler {
	logger = logger.With("component", "auth")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := a.Authenticate(r)
			if err != nil {
				logger.Info("request unauthenticated", "reason", err.Error(), "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
				WriteError(w, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithPrincipal(r.Context(), p)))
		})
	}
}

// Require lets a request through only if its principal holds scope: 401 without a principal
// (Middleware missing in front), 403 naming the scope otherwise.
func Require(scope Scope) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := RequireScope(r.Context(), scope); err != nil {
				WriteError(w, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Handler is h behind Middleware and Require(scope): the usual way to mount a route.
func Handler(a *Authenticator, logger *slog.Logger, scope Scope, h http.Handler) http.Handler {
	return Middleware(a, logger)(Require(scope)(h))
}

// RequireScope returns nil if the context's principal holds scope, else an *Error wrapping
// ErrUnauthenticated (no principal) or ErrForbidden.
func RequireScope(ctx context.Context, scope Scope) error {
	p, ok := FromContext(ctx)
	if !ok {
		return unauthenticated(ErrNoCredentials, "no authenticated principal")
	}
	if !p.Has(scope) {
		return &Error{Kind: ErrForbidden, Principal: p.Name, Scope: scope, missing: true}
	}
	return nil
}

// Authorize returns nil if the context's principal holds scope and may act for the user
// identifier ("" is the shared tenant), else an *Error wrapping ErrUnauthenticated (no
// principal) or ErrForbidden naming the principal, the user and the scope. Call it for every
// user a request names (path, query or body) before anything is published or read; answer a
// failure with WriteError.
func Authorize(ctx context.Context, identifier string, scope Scope) error {
	if err := RequireScope(ctx, scope); err != nil {
		return err
	}
	p, _ := FromContext(ctx)
	if !p.CanActFor(identifier) {
		return &Error{Kind: ErrForbidden, Principal: p.Name, User: identifier, Scope: scope}
	}
	return nil
}

// IsAuthError reports whether err is a refusal WriteError answers with 401 or 403.
func IsAuthError(err error) bool {
	return errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrForbidden)
}
