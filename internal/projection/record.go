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
	// ReasonShredded: the event's data key was destroyed with its user's erasure
	// (events.ErrShredded). Not a dead-letter reason: such an event is acknowledged and
	// skipped, counted with the erased user's (engram_projector_events_skipped_total
	// {cause="user_erased"}), and never copied to the dead-letter stream.
	ReasonShredded Reason = "shredded"
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
	case errors.Is(err, events.ErrShredded):
		return ReasonShredded
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

// Decode is Decoder{}.Decode: without data keys, so a sealed event is undecodable.
func Decode(subject string, header nats.Header, data []byte, seq uint64, stored time.Time, multiTenant bool) (Record, error) {
	return Decoder{}.Decode(subject, header, data, seq, stored, multiTenant)
}

// Decoder decodes stored messages, opening sealed ones with Keys (events.Codec): the one
// decoder of the live projector, replay and verify.
type Decoder struct {
	Keys events.Keyring
}

// keyRetryFor bounds how long an event's data key is asked for again while the key store does
// not answer (NATS down or restarting, a leader election of the bucket's stream: 5-16 s on the
// three-node cluster, docs/operations.md), the partition waiting meanwhile as it waits for
// Neo4j; after it the event is dead-lettered undecodable (its copy is sealed, and memctl dlq
// retry brings it back). A few seconds would dead-letter good events at every election.
const keyRetryFor = time.Minute

// Decode turns a stored message into a Record, enforcing the multi-tenant guardrail: with
// multiTenant on, an event without a user is rejected (ReasonNoUser). The error is a
// *Rejection; an event whose key was destroyed is one with ReasonShredded.
func (d Decoder) Decode(subject string, header nats.Header, data []byte, seq uint64, stored time.Time, multiTenant bool) (Record, error) {
	codec := events.Codec{Keys: d.Keys}
	ev, err := codec.DecodeStored(subject, header, data)
	for start, wait := time.Now(), 100*time.Millisecond; err != nil && !isDecodeError(err) && time.Since(start) < keyRetryFor; wait = min(2*wait, 2*time.Second) {
		time.Sleep(wait)
		ev, err = codec.DecodeStored(subject, header, data)
	}
	if err != nil {
		return Record{}, &Rejection{Sequence: seq, Reason: ReasonOf(err), Err: err}
	}
	if multiTenant && ev.User == "" {
		return Record{}, &Rejection{Sequence: seq, Reason: ReasonNoUser,
			Err: fmt.Errorf("%w: %s event %s without a user while multi-tenant mode is on", events.ErrNoUser, ev.Kind, ev.ID)}
	}
	return Record{Event: ev, Sequence: seq, Stored: stored.UTC(), Subject: subject}, nil
}

// isDecodeError reports whether err is the event's own fault (or its shredding), not the key
// store's: retrying cannot change it.
func isDecodeError(err error) bool {
	return errors.Is(err, events.ErrUndecodable) || errors.Is(err, events.ErrUnknownType) ||
		errors.Is(err, events.ErrInvalidData) || errors.Is(err, events.ErrNoUser)
}
