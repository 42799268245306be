package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/engram-memory/engram/internal/app"
)

// The two outcomes callers branch on: every error of Authenticate and Authorize wraps one
// of them. WriteError maps ErrUnauthenticated to 401 and ErrForbidden to 403.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
)

// Reasons a request is unauthenticated; each is wrapped together with ErrUnauthenticated,
// and its text is the reason in the 401 body.
var (
	ErrNoCredentials = errors.New("missing Authorization header")
	ErrMalformed     = errors.New("malformed Authorization header or token")
	ErrExpired       = errors.New("token expired")
	ErrNotYetValid   = errors.New("token not valid yet (nbf in the future)")
	ErrIssuedLater   = errors.New("token issued in the future (iat)")
	ErrSignature     = errors.New("token signature invalid")
	ErrAlgorithm     = errors.New("token algorithm not accepted")
	ErrAudience      = errors.New("token audience not accepted")
	ErrIssuer        = errors.New("token issuer not accepted")
	ErrClaims        = errors.New("token claims invalid")
	ErrUnknownAPIKey = errors.New("unknown API key")
)

// Configuration and input errors.
var (
	ErrInvalidPattern = errors.New("invalid user pattern")
	ErrUnknownScope   = errors.New("unknown scope")
)

// Error is a refused request: Kind is ErrUnauthenticated or ErrForbidden, Reason one of the
// reasons above (for 401s), and for 403s the principal, user and scope involved. It never
// carries a credential.
type Error struct {
	Kind      error  // ErrUnauthenticated or ErrForbidden
	Reason    error  // for ErrUnauthenticated: ErrExpired, ErrSignature, ...
	Detail    string // more about the reason, safe to show the caller
	Principal string
	User      string
	Scope     Scope
	missing   bool // the principal lacks the scope (as opposed to the user)
}

func (e *Error) Error() string {
	if errors.Is(e.Kind, ErrForbidden) {
		if e.missing {
			return fmt.Sprintf("forbidden: principal %q lacks scope %q", e.Principal, e.Scope)
		}
		if e.User == "" {
			return fmt.Sprintf("forbidden: principal %q may not act for the shared tenant (scope %q)", e.Principal, e.Scope)
		}
		return fmt.Sprintf("forbidden: principal %q may not act for user %q (scope %q)", e.Principal, e.User, e.Scope)
	}
	msg := "unauthenticated"
	if e.Reason != nil {
		msg += ": " + e.Reason.Error()
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap returns the kind and the reason, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	if e.Reason == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Reason}
}

func unauthenticated(reason error, detail string) *Error {
	return &Error{Kind: ErrUnauthenticated, Reason: reason, Detail: detail}
}

// Realm is the realm of the WWW-Authenticate challenges.
const Realm = "engram"

// WriteError answers a refused request: 401 with a WWW-Authenticate challenge (RFC 6750) for
// ErrUnauthenticated, 403 for ErrForbidden (with an insufficient_scope challenge when a scope
// is missing), and 500 for anything else. The body is an app.Problem naming the reason.
func WriteError(w http.ResponseWriter, err error) {
	var ae *Error
	errors.As(err, &ae)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		challenge := `Bearer realm="` + Realm + `"`
		if ae == nil || !errors.Is(ae.Reason, ErrNoCredentials) {
			desc := "invalid credentials"
			if ae != nil && ae.Reason != nil {
				desc = ae.Reason.Error()
			}
			challenge += `, error="invalid_token", error_description="` + quoteSafe(desc) + `"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		app.WriteError(w, http.StatusUnauthorized, "", err.Error())
	case errors.Is(err, ErrForbidden):
		if ae != nil && ae.missing {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`", error="insufficient_scope", scope="`+quoteSafe(string(ae.Scope))+`"`)
		}
		app.WriteError(w, http.StatusForbidden, "", err.Error())
	default:
		app.WriteError(w, http.StatusInternalServerError, "", "authorization failed")
	}
}

// quoteSafe keeps a header parameter value inside its quotes.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return '\''
		}
		return r
	}, s)
}
