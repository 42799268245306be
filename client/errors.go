package client

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors; every error the client returns for a failed call matches at most one of
// them with errors.Is.
var (
	// ErrUserRequired: multi-tenant mode is on and the write names no user (ForUser).
	ErrUserRequired = errors.New("multi-tenant mode: the write must name its user (ForUser)")
	// ErrInvalid: the request was refused as bad input (locally, or HTTP 400/413/415/422).
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound: the user, conversation or trace does not exist (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrUnauthenticated (401) and ErrForbidden (403): see docs/security.md.
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
	// ErrConflict: a batch held an event the stream already stored, or a re-creation found
	// nothing to re-create (HTTP 409).
	ErrConflict = errors.New("conflict")
	// ErrUnavailable: the event store or the graph is unavailable (HTTP 503/507); retry later.
	ErrUnavailable = errors.New("engram unavailable")
	// ErrNotCaughtUp: a read-your-writes read timed out waiting for the projector (HTTP 504).
	ErrNotCaughtUp = errors.New("projection has not caught up with the write")
	// ErrRejected: the projector refused a write the log had acknowledged and dead-lettered it;
	// the error is a *RejectedError with the reason (WaitApplied, Fate.Err).
	ErrRejected = errors.New("rejected by the projector")
)

// RejectedError is a write the projector dead-lettered: stored in the log, never applied to
// the graph. Retrying it as it is gets the same answer; Reason says what to change.
type RejectedError struct {
	EventID  string
	Sequence uint64
	Kind     string // e.g. preference_superseded
	// Reason is the machine-readable cause (the dead letter's Engram-Dlq-Reason, e.g.
	// missing_reference, foreign_reference, conflict, schema_invalid; docs/events.md).
	Reason string
	// Message is the projector's error message.
	Message string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("engram: %s event %s (sequence %d) rejected by the projector: %s: %s",
		e.Kind, e.EventID, e.Sequence, e.Reason, e.Message)
}

// Unwrap makes every RejectedError match ErrRejected.
func (e *RejectedError) Unwrap() error { return ErrRejected }

// APIError is an error answer of Engram's HTTP API.
type APIError struct {
	Op     string // e.g. "add_preference", "get_preferences_for"
	Status int
	Msg    string // the server's message
	Field  string // the field, parameter or header it names, if any
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("engram %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap maps the status onto the sentinels above.
func (e *APIError) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return ErrInvalid
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusUnauthorized:
		return ErrUnauthenticated
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusConflict:
		return ErrConflict
	case http.StatusGone:
		return ErrGone
	case http.StatusServiceUnavailable, http.StatusInsufficientStorage, http.StatusBadGateway:
		return ErrUnavailable
	case http.StatusGatewayTimeout:
		return ErrNotCaughtUp
	}
	return nil
}
