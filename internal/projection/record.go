package projection

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/events"
)

// Record is one stored event to apply: the decoded event and where JetStream stored it. The
// stream metadata gives the transaction time (recorded_at, recorded_seq) of what it creates.
type Record struct {
	Event    *events.Event
	Sequence uint64    // stream sequence
	Stored   time.Time // when JetStream stored it
	Subject  string    // stored subject, mem.<tenant-token>.<kind>.<partition>
}

// Reason is the machine-readable cause of a dead letter, sent as the Engram-Dlq-Reason header.
type Reason string

// Dead-letter reasons.
const (
	// ReasonUndecodable: not a CloudEvent of ours (envelope, subject or headers wrong).
	ReasonUndecodable Reason = "undecodable"
	// ReasonSchemaInvalid: the data does not satisfy the kind's JSON Schema or its rules.
	ReasonSchemaInvalid Reason = "schema_invalid"
	// ReasonUnknownType: the CloudEvents type is not in the catalogue.
	ReasonUnknownType Reason = "unknown_type"
	// ReasonNoUser: an event without a user while multi-tenant mode is on.
	ReasonNoUser Reason = "no_user"
	// ReasonForeignReference: the event names a node of another owner (an id it does not own).
	ReasonForeignReference Reason = "foreign_reference"
	// ReasonMissingReference: the event names a node that does not exist (yet): a supersede of
	// an unknown preference, a step of an unknown trace, an entity id never created.
	ReasonMissingReference Reason = "missing_reference"
	// ReasonConflict: the event contradicts the graph, e.g. superseding a preference that is
	// already superseded, or by itself.
	ReasonConflict Reason = "conflict"
	// ReasonGraphRejected: Neo4j refused the event's statement with a non-transient error.
	ReasonGraphRejected Reason = "graph_rejected"
	// ReasonInternal: applying the event panicked (a bug in the projector).
	ReasonInternal Reason = "internal_error"
)

// Reasons lists every reason in a stable order (metrics are initialised with it).
var Reasons = []Reason{
	ReasonUndecodable, ReasonSchemaInvalid, ReasonUnknownType, ReasonNoUser,
	ReasonForeignReference, ReasonMissingReference, ReasonConflict, ReasonGraphRejected, ReasonInternal,
}

// ErrRejected marks an event that cannot be applied; a *Rejection carries it with its reason.
var ErrRejected = errors.New("event rejected")

// Rejection is an event Apply (or decoding) refused, with the reason it is dead-lettered for.
type Rejection struct {
	Sequence uint64
	Reason   Reason
	Err      error
}

// Error implements error.
func (r *Rejection) Error() string {
	return fmt.Sprintf("stream sequence %d: %s: %v", r.Sequence, r.Reason, r.Err)
}

// Unwrap lets errors.Is find ErrRejected and the cause.
func (r *Rejection) Unwrap() []error { return []error{ErrRejected, r.Err} }

// ReasonOf maps a decoding error (events.Decode) onto its dead-letter reason.
func ReasonOf(err error) Reason {
	switch {
	case errors.Is(err, events.ErrUnknownType):
		return ReasonUnknownType
	case errors.Is(err, events.ErrNoUser):
		return ReasonNoUser
	case errors.Is(err, events.ErrInvalidData):
		return ReasonSchemaInvalid
	default:
		return ReasonUndecodable
	}
}

// Decode turns a stored message into a Record, enforcing the multi-tenant guardrail: with
// multiTenant on, an event without a user is rejected (ReasonNoUser). The error is a
// *Rejection.
func Decode(subject string, header nats.Header, data []byte, seq uint64, stored time.Time, multiTenant bool) (Record, error) {
	ev, err := events.Decode(subject, header, data)
	if err != nil {
		return Record{}, &Rejection{Sequence: seq, Reason: ReasonOf(err), Err: err}
	}
	if multiTenant && ev.User == "" {
		return Record{}, &Rejection{Sequence: seq, Reason: ReasonNoUser,
			Err: fmt.Errorf("%w: %s event %s without a user while multi-tenant mode is on", events.ErrNoUser, ev.Kind, ev.ID)}
	}
	return Record{Event: ev, Sequence: seq, Stored: stored.UTC(), Subject: subject}, nil
}
