package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

// Writes after an erasure (docs/replay.md). Until an admin re-creates an erased user, every
// write naming them is refused with 410 Gone: an agent still at work would otherwise bring the
// user back with its next write, and nothing would tell it. An erasure another ingestor stored
// a moment ago must already count: the ingestor reads the log (stream.LastErasure, two direct
// gets) or remembers what it read, and then stores the write on the condition that the user's
// erasures are still what it read, which JetStream checks as it stores (erasurecache.go). What
// slips through (an agent over NATS) the projector drops.

// Sentinels of the erasure rule; the HTTP answers are 410 and 409.
var (
	// ErrGone: the command names a user who is erased and not re-created since.
	ErrGone = errors.New("user erased")
	// ErrNotErased: a re-creation of a user who is not erased (never, or re-created since).
	ErrNotErased = errors.New("user not erased")
)

// GoneError refuses a write for an erased user: when they were erased, and how to re-create
// them. It wraps ErrGone.
type GoneError struct {
	Field string // the command inside a batch (commands[2]); "" for a single command
	User  string
	// ErasedAt and Tombstone are the stored tombstone's; zero when an erasure earlier in the
	// same batch erases the user.
	ErasedAt  time.Time
	Tombstone uint64
}

// Error says when the user was erased and how an admin brings them back.
func (e *GoneError) Error() string {
	when := "by an earlier command of this batch"
	if e.Tombstone > 0 {
		when = fmt.Sprintf("at %s (stream sequence %d)", e.ErasedAt.UTC().Format(time.RFC3339), e.Tombstone)
	}
	msg := fmt.Sprintf("user %q was erased %s: writes for them are refused until an admin re-creates the user "+
		"with POST /v1/users/{identifier}/recreate (or a batch's recreate_user command)", clip(e.User), when)
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	return msg
}

// Unwrap makes a GoneError match ErrGone.
func (e *GoneError) Unwrap() error { return ErrGone }

// NotErasedError refuses a re-creation of a user the log shows as not erased. It wraps
// ErrNotErased.
type NotErasedError struct {
	Field   string
	User    string
	Erasure stream.Erasure
}

// Error says why there is nothing to re-create.
func (e *NotErasedError) Error() string {
	msg := fmt.Sprintf("user %q was never erased: there is nothing to re-create (upsert the user instead)", clip(e.User))
	if e.Erasure.Tombstone > 0 {
		msg = fmt.Sprintf("user %q was re-created already (stream sequence %d) after their erasure (stream sequence %d): writes for them are accepted",
			clip(e.User), e.Erasure.Recreation, e.Erasure.Tombstone)
	}
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	return msg
}

// Unwrap makes a NotErasedError match ErrNotErased.
func (e *NotErasedError) Unwrap() error { return ErrNotErased }

// recreated reports whether the user was re-created after their last erasure: a re-creation
// asked again is then a retry.
func (e *NotErasedError) recreated() bool { return e.Erasure.Tombstone > 0 && !e.Erasure.Erased() }

// checkErasures walks the events a request writes in their order, with each user's erasure
// as the log holds it (one look-up per user) and as the request's own erasures and
// re-creations change it: a write for an erased user is a *GoneError, a re-creation of a user
// not erased a *NotErasedError. field names the event inside a batch ("" for a single
// command). It returns the erasure each event was checked against. Users remembered as not
// erased are not read unless fresh (lastErasure); a refusal is always read from the log.
func (h *Handler) checkErasures(ctx context.Context, evs []*events.Event, field func(int) string, fresh bool) ([]stream.Erasure, error) {
	type life struct {
		log    stream.Erasure
		erased bool // now, in the request's order
		early  bool // erased by an earlier event of the request
	}
	lives := map[string]*life{}
	seen := make([]stream.Erasure, len(evs))
	// A re-creation is refused (409) when the user is not erased: that answer is read from the
	// log too, never remembered.
	var recreates map[string]bool
	for _, ev := range evs {
		if ev.Kind == events.KindUserRecreated {
			if recreates == nil {
				recreates = map[string]bool{}
			}
			recreates[ev.User] = true
		}
	}
	for i, ev := range evs {
		if ev.User == "" {
			continue // the shared tenant cannot be erased
		}
		l := lives[ev.User]
		if l == nil {
			e, err := h.lastErasure(ctx, ev.User, fresh || recreates[ev.User])
			if err != nil {
				return nil, err
			}
			l = &life{log: e, erased: e.Erased()}
			lives[ev.User] = l
		}
		seen[i] = l.log
		switch ev.Kind {
		case events.KindUserErased:
			l.erased, l.early = true, true
		case events.KindUserRecreated:
			if !l.erased {
				return nil, &NotErasedError{Field: strings.TrimPrefix(field(i)+".identifier", "."), User: ev.User, Erasure: l.log}
			}
			l.erased, l.early = false, false
		default:
			if l.erased {
				g := &GoneError{Field: field(i), User: ev.User}
				if !l.early {
					g.ErasedAt, g.Tombstone = l.log.ErasedAt, l.log.Tombstone
				}
				return nil, g
			}
		}
	}
	return seen, nil
}

// expectRecreation makes the re-creation's publish conditional on the log it was checked
// against: JetStream stores it only if the user's last re-creation is still the one e names.
// Two admins re-creating at once then store one re-creation, whose purge (PurgeRefused) cannot
// remove writes accepted after the other.
func expectRecreation(msg *nats.Msg, e stream.Erasure) {
	msg.Header.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(e.Recreation, 10))
}

// recreate stores a single re-creation and purges the writes the projector dropped before it.
// A re-creation of a user re-created already is a retry: it finishes that one's purge and
// answers its receipt, a duplicate.
func (h *Handler) recreate(ctx context.Context, ev *events.Event, msg *nats.Msg, checked stream.Erasure, minted Minted) (Accepted, error) {
	expectRecreation(msg, checked)
	stored, err := h.pub.PublishMsg(ctx, ev.ID, msg)
	if errors.Is(err, stream.ErrConflict) {
		// Another re-creation was stored since the check: this one is that one's retry now.
		e, lerr := h.erasureOf(ctx, ev.User)
		if lerr != nil {
			return Accepted{}, lerr
		}
		if ne := (&NotErasedError{User: ev.User, Erasure: e}); ne.recreated() {
			return h.finishRecreation(ctx, ne, minted)
		}
		return Accepted{}, err
	}
	if err != nil {
		return Accepted{}, err
	}
	h.metrics.stored(string(ev.Kind), stored.Duplicate)
	h.erasures.forget(ev.User)
	if err := h.pub.PurgeRefused(ctx, ev.User, stored.Sequence); err != nil {
		return Accepted{}, fmt.Errorf("re-creation recorded, but purging the writes refused since the erasure failed (repeat the request; it is idempotent): %w", err)
	}
	h.logger.Info("user re-created", "sequence", stored.Sequence)
	return Accepted{EventID: ev.ID, Sequence: stored.Sequence, Duplicate: stored.Duplicate, Minted: minted}, nil
}

// finishRecreation answers a re-creation asked again: the purge of the stored one runs again
// (idempotent: it finishes one a failure interrupted) and its receipt is the answer.
func (h *Handler) finishRecreation(ctx context.Context, ne *NotErasedError, minted Minted) (Accepted, error) {
	if err := h.pub.PurgeRefused(ctx, ne.User, ne.Erasure.Recreation); err != nil {
		return Accepted{}, fmt.Errorf("purging the writes refused since the erasure failed (repeat the request; it is idempotent): %w", err)
	}
	return Accepted{EventID: ne.Erasure.RecreationID, Sequence: ne.Erasure.Recreation, Duplicate: true, Minted: minted}, nil
}
