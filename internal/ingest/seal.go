package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/stream"
)

// WithKeys makes the handler seal every user's events with their data key (events.Codec)
// and destroy the keys when it erases the user. ring should be NewRing's, whose key creation
// is checked against the log.
func WithKeys(ring *keys.Ring) Option {
	return func(h *Handler) error {
		if ring == nil {
			return errors.New("ingest: nil key ring")
		}
		h.ring = ring
		return nil
	}
}

// NewRing returns the ingestor's key ring over store: after it creates a user's keys (their
// first write, or the first of a new life) it reads the user's erasures again, and when the
// user is erased now it destroys the keys it made and the write is refused (410). So a write
// racing an erasure leaves no key behind: a key created after the erasure's last destroy is
// destroyed here, and one created before it by the erasure (Handler.erase). A batch that
// re-creates the user itself is let through (recreating).
func NewRing(store keys.Store, erasureOf func(context.Context, string) (stream.Erasure, error)) (*keys.Ring, error) {
	return keys.NewRing(store, keys.WithCreated(func(ctx context.Context, user string) error {
		if recreating(ctx, user) {
			return nil
		}
		e, err := erasureOf(ctx, user)
		if err != nil {
			return err
		}
		if e.Erased() {
			return &GoneError{User: user, ErasedAt: e.ErasedAt, Tombstone: e.Tombstone}
		}
		return nil
	}))
}

type recreatingKey struct{}

// withRecreating marks ctx as a request that re-creates users before it writes for them.
func withRecreating(ctx context.Context, evs []*events.Event) context.Context {
	var users map[string]bool
	for _, ev := range evs {
		if ev.Kind == events.KindUserRecreated {
			if users == nil {
				users = map[string]bool{}
			}
			users[ev.User] = true
		}
	}
	if users == nil {
		return ctx
	}
	return context.WithValue(ctx, recreatingKey{}, users)
}

func recreating(ctx context.Context, user string) bool {
	users, _ := ctx.Value(recreatingKey{}).(map[string]bool)
	return users[user]
}

// seal seals an encoded event of ev's user. A user the log shows erased at some time (e is
// what checkErasures read) is sealed with keys read from the store, not the cache: another
// ingestor may have erased and re-created them within the cache's lifetime.
func (h *Handler) seal(ctx context.Context, ev *events.Event, msg *nats.Msg, e stream.Erasure) error {
	if h.ring == nil || !h.cfg.Sealing() || !events.Sealable(ev.User, ev.Kind) {
		return nil
	}
	if e.Tombstone > 0 {
		h.ring.Forget(ev.User)
	}
	err := events.Codec{Keys: h.ring}.Seal(ctx, ev.User, msg)
	if err == nil || errors.Is(err, ErrGone) {
		return err
	}
	return fmt.Errorf("the user's data key: %w", stream.Classify(err))
}

// destroyKeys destroys user's data keys (erasure). The erasure runs it before it stores the
// tombstone, so that even an erasure whose purge fails has shredded the events, and again
// after the purge, for a key a racing write created in between.
func (h *Handler) destroyKeys(ctx context.Context, user string) error {
	if h.ring == nil {
		return nil
	}
	if err := h.ring.Destroy(ctx, user); err != nil {
		return fmt.Errorf("destroying the user's data keys failed (repeat the request; it is idempotent): %w", stream.Classify(err))
	}
	return nil
}

// recreatedAfter reports whether evs re-create user.
func recreatedAfter(evs []Built, user string) bool {
	for _, b := range evs {
		if b.Event.Kind == events.KindUserRecreated && b.Event.User == user {
			return true
		}
	}
	return false
}
