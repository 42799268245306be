package ingest

import (
	"context"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

// What the ingestor remembers of users' erasures, and why that changes no answer.
//
// Every write names a user, and a write for an erased user is refused (410, erased.go). Asking
// the log at every write (stream.LastErasure: two direct gets) cost more than the write's own
// publish: on two cores, single-command ingest runs 1.15–1.42× as fast with the answer
// remembered as with the log read at every write (same-run A/B, docs/BENCHMARKS.md). Now the ingestor keeps what the log said of users who are not erased
// (erasureCache), and every event it stores for such a user carries a condition JetStream
// checks as it stores the event, atomically with the store: the user's erasure subject
// (mem.<token>.user_erased.<partition>) still ends at the tombstone the ingestor knows, 0 for
// none (Nats-Expected-Last-Subject-Sequence with Nats-Expected-Last-Subject-Sequence-Subject).
// An erasure stored since, by this ingestor or another, makes JetStream refuse the write
// (wrong last sequence): the ingestor forgets the user, reads the log and decides again, so the
// write is answered 410, or stored on the second try when the user was erased and re-created
// in between. The cache saves the reads, never an erasure: a write stored after a tombstone
// without a re-creation between cannot happen through the ingestor, as before.
//
// A user the cache would hold as erased is not kept: a refusal is rare and must be right, and
// another ingestor may have re-created the user since, so it is read from the log each time.
// Events whose request erases or re-creates their user before them are not conditional: the
// request orders those itself, and the re-creation is conditional on its own subject
// (expectRecreation).

// erasureCacheSize bounds the users remembered: at most this many entries (two generations of
// half as many; about 100 bytes each), so a deployment with many more active users reads the
// log for the ones least recently written for, as it did for everyone before.
const erasureCacheSize = 1 << 16

// maxConditionalTries bounds how often a write is tried again after JetStream refused its
// condition: each refusal means an erasure or a re-creation of its user was stored meanwhile,
// and the log is read afresh before the next try.
const maxConditionalTries = 3

// erasureCache remembers users' Erasure as the log last said, for users not erased. Safe for
// concurrent use; a nil cache remembers nothing.
type erasureCache struct {
	mu        sync.Mutex
	cur, prev map[string]stream.Erasure
	half      int
}

func newErasureCache(size int) *erasureCache {
	half := max(1, size/2)
	return &erasureCache{cur: make(map[string]stream.Erasure), prev: map[string]stream.Erasure{}, half: half}
}

// get returns what is remembered of user.
func (c *erasureCache) get(user string) (stream.Erasure, bool) {
	if c == nil {
		return stream.Erasure{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cur[user]; ok {
		return e, true
	}
	e, ok := c.prev[user]
	if ok {
		c.keep(user, e) // written for again: keep it through the next generation
	}
	return e, ok
}

// put remembers e for user, or forgets the user when e says erased.
func (c *erasureCache) put(user string, e stream.Erasure) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Erased() {
		delete(c.cur, user)
		delete(c.prev, user)
		return
	}
	c.keep(user, e)
}

// forget drops user: the log is read at the next write for them.
func (c *erasureCache) forget(user string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cur, user)
	delete(c.prev, user)
}

// keep stores e in the current generation; a full one becomes the previous, whose entries
// not written for since are dropped.
func (c *erasureCache) keep(user string, e stream.Erasure) {
	c.cur[user] = e
	delete(c.prev, user)
	if len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, make(map[string]stream.Erasure, c.half)
	}
}

// lastErasure is the user's Erasure: remembered, unless fresh, or read from the log.
func (h *Handler) lastErasure(ctx context.Context, user string, fresh bool) (stream.Erasure, error) {
	if !fresh {
		if e, ok := h.erasures.get(user); ok {
			h.metrics.erasureLookup("cache")
			return e, nil
		}
	}
	e, err := h.erasureOf(ctx, user)
	if err != nil {
		return e, err
	}
	h.metrics.erasureLookup("log")
	h.erasures.put(user, e)
	return e, nil
}

// conditional reports, for each event, whether its storing is to be conditional on its
// user's erasures (expectErasures): every event naming a user, but erasures, re-creations and
// the events after one of those for the same user in the request.
func conditional(evs []*events.Event) []bool {
	out := make([]bool, len(evs))
	var ordered map[string]bool // users the request erases or re-creates
	for i, ev := range evs {
		if ev.User == "" {
			continue // the shared tenant cannot be erased
		}
		if ev.Kind == events.KindUserErased || ev.Kind == events.KindUserRecreated {
			if ordered == nil {
				ordered = map[string]bool{}
			}
			ordered[ev.User] = true
			continue
		}
		out[i] = !ordered[ev.User]
	}
	return out
}

// expectErasures makes JetStream store msg (an event of user) only while the user's erasure
// subject ends at e's tombstone (0: it holds none).
func expectErasures(msg *nats.Msg, user string, e stream.Erasure) error {
	subject, err := stream.StoredSubject(user, events.KindUserErased)
	if err != nil {
		return err
	}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(e.Tombstone, 10))
	msg.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, subject)
	return nil
}
