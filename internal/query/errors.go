package query

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrNotFound: the user or the trace does not exist for the identifier asked about
	// (another user's trace is not found either).
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument: a parameter is malformed; the error is an *ArgumentError naming it.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotCaughtUp: the projector did not apply the write of a consistency token in time;
	// the error is a *ConsistencyError.
	ErrNotCaughtUp = errors.New("projection has not caught up")
	// ErrUnavailable: Neo4j did not answer (down, unreachable, or not within the read's
	// time); retrying later is safe. The HTTP answer is 503 with Retry-After.
	ErrUnavailable = errors.New("the graph database is unavailable")
	// ErrLogUnavailable: NATS did not answer a read of the event log (a fate read); retrying
	// later is safe. The HTTP answer is 503 with Retry-After.
	ErrLogUnavailable = errors.New("the event log is unavailable")
)

// ArgumentError names the parameter that is wrong and why.
type ArgumentError struct {
	Field  string // the parameter as the HTTP API names it, e.g. "as_of"
	Reason string
}

func (e *ArgumentError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes every ArgumentError match ErrInvalidArgument.
func (e *ArgumentError) Unwrap() error { return ErrInvalidArgument }

func badArg(field, format string, args ...any) error {
	return &ArgumentError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ConsistencyError reports a read that gave up waiting for a consistency token: which
// checkpoint it watched and how far that checkpoint got.
type ConsistencyError struct {
	Token      uint64        // the stream sequence the read waited for
	Checkpoint string        // the checkpoint watched, e.g. "projector-p3"
	Reached    uint64        // its stream_seq when the wait ended (0: no checkpoint yet)
	Waited     time.Duration // how long the read waited
}

func (e *ConsistencyError) Error() string {
	return fmt.Sprintf("consistency token %d not reached after %s: checkpoint %s is at stream sequence %d",
		e.Token, e.Waited.Round(time.Millisecond), e.Checkpoint, e.Reached)
}

// Public is the message a caller gets: Error without the stream sequence reached, which is a
// position in the stream all tenants share.
func (e *ConsistencyError) Public() string {
	return fmt.Sprintf("consistency token %d not reached after %s: checkpoint %s has not applied it yet",
		e.Token, e.Waited.Round(time.Millisecond), e.Checkpoint)
}

// Unwrap makes every ConsistencyError match ErrNotCaughtUp.
func (e *ConsistencyError) Unwrap() error { return ErrNotCaughtUp }

// resourceNotFound is a 404 of something of a user other than the user (an event, an
// entity, a logged event): it words the answer itself, naming the tenant it was looked for
// in. writeError answers every one the same way.
type resourceNotFound interface {
	error
	notFoundIn(tenant string) string
}

func (e *EventNotFoundError) notFoundIn(tenant string) string  { return e.Error() + " for " + tenant }
func (e *EntityNotFoundError) notFoundIn(tenant string) string { return e.Error() + " for " + tenant }
func (e *logNotFoundError) notFoundIn(tenant string) string {
	return e.Error() + " in the log of " + tenant
}
