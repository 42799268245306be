package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/stream"
)

// What became of an entry's event (Entry.Fate). An audit read at face value must not show a
// refused event as if it had happened: a dead-lettered supersede took no effect, and the
// preference history (the query service's /preferences/history) does not show it either.
const (
	// FateApplied: the projector's checkpoint of the user's partition has passed the event
	// and no dead letter names it. (A duplicate of an applied event is applied too: once.)
	FateApplied = "applied"
	// FatePending: stored, and the projector has not reached it yet.
	FatePending = "pending"
	// FateDeadLettered: the projector refused it; Entry.Reason says why.
	FateDeadLettered = "dead_lettered"
	// FateErased: stored before the user's last erasure tombstone, which deleted its effect
	// (the purge that follows an erasure normally removes such events from the log).
	FateErased = "erased"
	// FateStored: not dead-lettered; whether it is applied or pending is unknown because the
	// projector's checkpoint was not read (MarkFates without a checkpoint).
	FateStored = "stored"
	// FateRefused: stored after the user's last erasure tombstone and before the first
	// re-creation that follows it (or with none): the projector drops it, nothing applied, no
	// dead letter. Entry.Reason is RefusedErased. The user's re-creation purges such events.
	FateRefused = "refused"
)

// RefusedErased is the Reason of a FateRefused entry.
const RefusedErased = "user_erased"

// Checkpoint is how far the projector group whose fates an audit shows has come in the user's
// partition: the stream sequence of its checkpoint. Known is false when it was not read.
type Checkpoint struct {
	Sequence uint64
	Known    bool
}

// MarkFates sets Fate, and Reason and ReasonError for a dead letter, on entries, the events of
// user in stream order as Read returns them. The dead letters are read from MEM_DLQ (the
// tenant's, dlq.mem.<token>.>), those of group only (the live projector's: a benchmark or
// replay group may refuse events too), every group's when group is "". Erasure is read from
// the entries themselves: an entry before the last user_erased entry is erased; an entry after
// it and before the first re-creation that follows (read from the log) is refused. An
// undecodable entry is marked like any other: the projector dead-letters it (or, refused,
// drops it).
func MarkFates(ctx context.Context, js jetstream.JetStream, user, group string, cp Checkpoint, entries []Entry) error {
	letters, err := deadLetters(ctx, js, user, group)
	if err != nil {
		return err
	}
	var tombstone uint64
	for _, e := range entries {
		if e.Kind == events.KindUserErased {
			tombstone = max(tombstone, e.Sequence)
		}
	}
	var recreation uint64 // the first re-creation after the tombstone; 0: none
	if tombstone > 0 {
		if recreation, err = stream.FirstRecreation(ctx, js.Conn(), user, tombstone); err != nil {
			return err
		}
	}
	for i := range entries {
		e := &entries[i]
		refused := tombstone > 0 && e.Sequence > tombstone && (recreation == 0 || e.Sequence < recreation) &&
			e.Kind != events.KindUserErased && e.Kind != events.KindUserRecreated
		switch l, dead := letters[e.Sequence]; {
		case refused:
			e.Fate, e.Reason = FateRefused, RefusedErased
		case dead:
			e.Fate, e.Reason, e.ReasonError = FateDeadLettered, l.reason, l.err
		case e.Sequence < tombstone:
			e.Fate = FateErased
		case !cp.Known:
			e.Fate = FateStored
		case e.Sequence <= cp.Sequence:
			e.Fate = FateApplied
		default:
			e.Fate = FatePending
		}
	}
	return nil
}

type letter struct{ reason, err string }

// deadLetters returns the tenant's dead letters by the stream sequence of their event.
func deadLetters(ctx context.Context, js jetstream.JetStream, user, group string) (map[uint64]letter, error) {
	filter, err := events.TenantSubjects(user)
	if err != nil {
		return nil, err
	}
	out := map[uint64]letter{}
	err = stream.Each(ctx, js, stream.DeadLetterStream, projection.DeadLetterSubjectPrefix+filter, true, func(msg jetstream.Msg) error {
		h := msg.Headers()
		if group != "" && h.Get(projection.HeaderDlqGroup) != group {
			return nil
		}
		seq, err := strconv.ParseUint(h.Get(projection.HeaderDlqSeq), 10, 64)
		if err != nil {
			return nil // not a dead letter of the projector's making: names no event
		}
		out[seq] = letter{reason: h.Get(projection.HeaderDlqReason), err: h.Get(projection.HeaderDlqError)}
		return nil
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return out, nil // nothing was ever dead-lettered
	}
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s: %w", user, err)
	}
	return out, nil
}
