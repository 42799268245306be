package mcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/ingest"
)

// ArgError is a tool argument that is wrong. It is found before anything is sent (by the
// tool, or by the client's validation of the command) or is Engram's 400 naming the field;
// either way nothing was written.
type ArgError struct {
	Arg    string // the argument, with its path: messages[1].content, applies_to[0].name
	Reason string
}

// Error names the argument, as an MCP tool error says which argument is wrong.
func (e *ArgError) Error() string {
	if e.Arg == "" {
		return "invalid arguments: " + e.Reason
	}
	return fmt.Sprintf("invalid argument %q: %s", e.Arg, e.Reason)
}

// AuthError is a credential Engram refused (401) or could not be sent.
type AuthError struct{ Msg string }

func (e *AuthError) Error() string { return "unauthenticated: " + e.Msg }

// rename maps a field Engram names (a command's JSON field or a query parameter) onto the
// tool's argument.
type rename func(field string) string

// same keeps the field's name: the tools name their arguments after Engram's fields.
func same(f string) string { return f }

// under places Engram's field names under an argument path, e.g. messages[2].
func under(prefix string) rename {
	return func(f string) string {
		if f == "" {
			return prefix
		}
		return prefix + "." + f
	}
}

// toolError turns an error of the client into what the model reads: the argument at fault,
// or Engram's refusal as Engram words it (403 names the principal, the user and the scope).
func toolError(err error, name rename) error {
	if err == nil {
		return nil
	}
	if name == nil {
		name = same
	}
	var (
		ae       *ArgError
		authe    *AuthError
		refused  *RefusedError
		fe       *ingest.FieldError
		api      *client.APIError
		rejected *client.RejectedError
		gone     *client.GoneError
	)
	switch {
	case errors.As(err, &ae), errors.As(err, &authe), errors.As(err, &refused):
		return err
	case errors.Is(err, client.ErrUserRequired):
		return &ArgError{Arg: "user_identifier", Reason: "required: multi-tenant mode is on"}
	case errors.As(err, &fe):
		return &ArgError{Arg: name(fe.Field), Reason: fe.Reason}
	case errors.As(err, &rejected):
		return fmt.Errorf("the write was stored in Engram's log but the projector refused it (%s): %s; nothing of it was applied", rejected.Reason, rejected.Message)
	case errors.As(err, &gone):
		return fmt.Errorf("the write was stored but dropped: its user was erased (%s); nothing of it was applied", gone.Message)
	case errors.As(err, &api):
		return apiError(api, name)
	case errors.Is(err, context.DeadlineExceeded):
		return &RefusedError{Status: http.StatusGatewayTimeout, Msg: "engram did not answer in time (MCP_CALL_TIMEOUT); retry later"}
	case errors.Is(err, client.ErrUnavailable):
		return &RefusedError{Status: http.StatusServiceUnavailable, Msg: "engram is unavailable, retry later: " + err.Error()}
	}
	return err
}

func apiError(e *client.APIError, name rename) error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		arg := e.Field
		if arg != "" {
			arg = name(arg)
		}
		return &ArgError{Arg: arg, Reason: e.Msg}
	case http.StatusUnauthorized:
		return &AuthError{Msg: strings.TrimPrefix(e.Msg, "unauthenticated: ") + " (send a valid bearer token: Authorization: Bearer <token>)"}
	case http.StatusServiceUnavailable, http.StatusInsufficientStorage, http.StatusTooManyRequests:
		return &RefusedError{Status: e.Status, Msg: "engram is unavailable, retry later: " + e.Msg}
	}
	return &RefusedError{Status: e.Status, Msg: e.Msg}
}

// RefusedError is Engram's refusal of a call, as Engram words it: 403 names the principal,
// the user and the scope; 404 what was not found; 410 when the user was erased.
type RefusedError struct {
	Status int
	Msg    string
}

func (e *RefusedError) Error() string { return e.Msg }
