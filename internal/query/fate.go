package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

// A write answered 202 is only stored; the projector may still refuse it and dead-letter it.
// A fate read tells the writer which: it finds the event in its tenant's part of the log,
// then reads the partition's checkpoint, then looks for the event's dead letter. In that
// order: the projector sends an event's dead letter before it commits the checkpoint that
// passes the event (internal/projection, group.go), so once the checkpoint read has passed
// it, a dead letter it did not find was never sent.

// FateStatus is what became of an event.
type FateStatus string

// The fates of an event.
const (
	// FateStored: in the log, and the projector has not decided yet.
	FateStored FateStatus = "stored"
	// FateApplied: the partition's checkpoint passed the event, and no dead letter names it.
	FateApplied FateStatus = "applied"
	// FateDeadLettered: the projector refused the event; Reason and Error say why.
	FateDeadLettered FateStatus = "dead_lettered"
	// FateRefused: stored after its user's erasure and not after a re-creation that follows
	// it, so the projector drops it: nothing applied, no dead letter (Reason user_erased).
	// The rule is the log's (stream.ErasedAt), so this is the event's fate before the
	// projector reached it too.
	FateRefused FateStatus = "refused"
)

// RefusedErased is the Reason of a FateRefused.
const RefusedErased = "user_erased"

// erasureLog is the part of an EventLog that tells an event written after its user's
// erasure. StreamLog has it; an EventLog without it reports no refusal.
type erasureLog interface {
	ErasedAt(ctx context.Context, subject string, seq uint64) (erased bool, tombstone uint64, err error)
}

// ErasedAt implements erasureLog: stream.ErasedAt, with the query service's direct gets.
func (l *StreamLog) ErasedAt(ctx context.Context, subject string, seq uint64) (bool, uint64, error) {
	erased, tombstone, err := stream.ErasedAt(ctx, l.js.Conn(), subject, seq)
	if err != nil {
		return false, 0, fmt.Errorf("%w: %w", ErrLogUnavailable, err)
	}
	return erased, tombstone, nil
}

// Fate is what became of one event of a tenant.
type Fate struct {
	EventID  string     `json:"event_id"`
	Sequence uint64     `json:"sequence"` // the stream sequence: the receipt's consistency token
	Kind     string     `json:"kind"`     // from the stored subject, e.g. preference_added
	StoredAt time.Time  `json:"stored_at"`
	Status   FateStatus `json:"status"`
	// Reason (e.g. missing_reference) and Error (the projector's message) of a dead letter,
	// or user_erased and why for a refusal; null otherwise. DeadLetteredAt is when MEM_DLQ
	// stored the dead letter, null unless Status is dead_lettered.
	Reason         *string    `json:"reason"`
	Error          *string    `json:"error"`
	DeadLetteredAt *time.Time `json:"dead_lettered_at"`
}

// The bounds of a fate read without a sequence, which searches the tenant's events by the
// time in the event id (a UUIDv7 carries the millisecond it was minted; the stream orders by
// the time it stored): from SearchBefore before that time (the clocks of the minter — an
// ingestor or an agent — and of NATS may differ) to SearchAfter after it (a writer stores an
// event within its publish timeout and retries, and JetStream deduplicates a retry only within
// its two-minute window), looking at no more than SearchLimit of the tenant's events.
const (
	SearchBefore = time.Minute
	SearchAfter  = 2 * time.Minute
	SearchLimit  = 10_000
)

// Bounds of the dead-letter search: the letters of the event's tenant and kind stored since
// the event, less letterSkew (MEM and MEM_DLQ may have leaders on servers whose clocks
// differ), at most letterLimit of them.
const (
	letterSkew  = time.Minute
	letterLimit = 1000
)

// EventNotFoundError is a fate read's 404: the tenant's log does not hold the event — never
// stored, stored for another user, or erased since — or, without a sequence, not within the
// bounds searched.
type EventNotFoundError struct {
	EventID  string
	Sequence uint64    // the sequence given, 0 for a search
	From     time.Time // a search's bounds
	Until    time.Time
	Limited  bool // the search stopped at SearchLimit events before Until
}

func (e *EventNotFoundError) Error() string {
	switch {
	case e.Sequence > 0:
		return fmt.Sprintf("event %s not found at sequence %d", e.EventID, e.Sequence)
	case e.Limited:
		return fmt.Sprintf("event %s not found in the first %d events stored from %s: pass the receipt's sequence",
			e.EventID, SearchLimit, e.From.Format(time.RFC3339))
	}
	return fmt.Sprintf("event %s not found among the events stored from %s to %s: pass the receipt's sequence",
		e.EventID, e.From.Format(time.RFC3339), e.Until.Format(time.RFC3339))
}

// Unwrap makes every EventNotFoundError match ErrNotFound.
func (e *EventNotFoundError) Unwrap() error { return ErrNotFound }

// WithEventLog enables Fate (without it Fate fails): the memory stream and its dead letters.
func WithEventLog(l EventLog) Option {
	return func(r *Reader) error {
		if l == nil {
			return errors.New("event log is nil")
		}
		r.events = l
		return nil
	}
}

// Fate returns what became of the event eventID of identifier's tenant ("" is the shared
// tenant). With seq (the receipt's sequence) it reads that one message; with 0 it searches
// the tenant's events stored around the time in eventID, which must then be a UUIDv7 (see
// SearchBefore). An event the tenant's log does not hold is an *EventNotFoundError
// (ErrNotFound) — also when seq names another tenant's event, so nothing tells a caller
// whether it exists. An unreachable NATS is ErrLogUnavailable, an unreachable Neo4j
// ErrUnavailable.
func (r *Reader) Fate(ctx context.Context, identifier, eventID string, seq uint64) (*Fate, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return nil, err
	}
	if err := checkText("event_id", eventID, maxTextRunes); err != nil {
		return nil, err
	}
	if seq > math.MaxInt64 {
		return nil, badArg("sequence", "%d is not a stream sequence: want 1 to %d", seq, int64(math.MaxInt64))
	}
	var minted time.Time
	if seq == 0 {
		if minted, err = uuidV7Time(eventID); err != nil {
			return nil, err
		}
	}
	if r.events == nil {
		return nil, errors.New("query: fate read without an event log (WithEventLog)")
	}
	ev, err := r.findEvent(ctx, owner, eventID, seq, minted)
	if err != nil {
		return nil, err
	}
	_, kind, _ := events.ParseSubject(ev.Subject)
	f := &Fate{EventID: eventID, Sequence: ev.Sequence, Kind: string(kind), StoredAt: ev.Stored, Status: FateStored}
	if el, ok := r.events.(erasureLog); ok && kind != events.KindUserErased && kind != events.KindUserRecreated {
		erased, tombstone, err := el.ErasedAt(ctx, ev.Subject, ev.Sequence)
		if err != nil {
			return nil, err
		}
		if erased {
			reason := RefusedErased
			msg := fmt.Sprintf("stored after the user's erasure (stream sequence %d) and before any re-creation: dropped, nothing applied; an admin re-creates the user with POST /v1/users/{identifier}/recreate", tombstone)
			f.Status, f.Reason, f.Error = FateRefused, &reason, &msg
			return f, nil
		}
	}
	checkpoint, err := r.checkpoint(ctx, r.group+"-p"+strconv.Itoa(events.Partition(owner, r.partitions)))
	if err != nil {
		return nil, err
	}
	letter, err := r.events.DeadLetter(ctx, ev.Subject, ev.Sequence, ev.Stored.Add(-letterSkew), r.group, letterLimit)
	switch {
	case err != nil:
		return nil, err
	case letter != nil:
		f.Status = FateDeadLettered
		f.Reason, f.Error, f.DeadLetteredAt = &letter.Reason, &letter.Error, &letter.Stored
	case checkpoint >= ev.Sequence:
		f.Status = FateApplied
	}
	return f, nil
}

// findEvent returns the event of owner's tenant with id eventID: at seq, or searched around
// minted.
func (r *Reader) findEvent(ctx context.Context, owner, eventID string, seq uint64, minted time.Time) (*StoredEvent, error) {
	if seq > 0 {
		ev, err := r.events.EventAt(ctx, seq)
		if err != nil {
			return nil, err
		}
		if ev == nil || !ownedBy(ev.Subject, owner) || !hasEventID(ev.Header, eventID) {
			return nil, &EventNotFoundError{EventID: eventID, Sequence: seq}
		}
		return ev, nil
	}
	from, until := minted.Add(-SearchBefore), minted.Add(SearchAfter)
	filter := events.SubjectRoot + "." + owner + ".>"
	ev, limited, err := r.events.FindEvent(ctx, filter, eventID, from, until, SearchLimit)
	if err != nil {
		return nil, err
	}
	if ev == nil {
		return nil, &EventNotFoundError{EventID: eventID, From: from, Until: until, Limited: limited}
	}
	return ev, nil
}

// ownedBy reports whether a stored subject, mem.<token>.<kind>.<partition>, is owner's.
func ownedBy(subject, owner string) bool {
	return strings.HasPrefix(subject, events.SubjectRoot+"."+owner+".")
}

// uuidV7Time returns the instant a UUIDv7 was minted: its first 48 bits, Unix milliseconds.
func uuidV7Time(id string) (time.Time, error) {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 || u.String() != id {
		return time.Time{}, badArg("event_id", "%q is not a UUIDv7 in canonical form, so the time to search from is unknown: pass the receipt's sequence", clip(id))
	}
	ms := int64(u[0])<<40 | int64(u[1])<<32 | int64(u[2])<<24 | int64(u[3])<<16 | int64(u[4])<<8 | int64(u[5])
	return time.UnixMilli(ms).UTC(), nil
}
