package projection

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

// Writes after an erasure (docs/replay.md). The ingestor refuses writes for an erased user,
// but some reach the log anyway: an agent publishing over NATS, a Go program publishing with
// ingest.AsyncPublisher. The projector is the last guard: an event of a tenant stored after
// its last tombstone, and not after a re-creation that follows it, is dropped —
// acknowledged, nothing applied, and no dead letter, which would keep the erased user's
// data. The rule is the log's, so replay (internal/replay) and the fate read
// (internal/query) apply the same one.
//
// A partition's worker sees its tenants' events in stream order, so it keeps exact state per
// tenant: whether the tenant is erased after the last event it applied. At the first sight of
// a tenant it asks the log (stream.ErasedAt: one direct get for a tenant never erased), then
// follows the tombstones and re-creations it applies itself. The state is exact only while
// this worker applied everything up to its checkpoint: when the checkpoint it finds is not
// the one it committed last (another process held the partition meanwhile), it starts over.

// erasures is a worker's state of its tenants' erasures.
type erasures struct {
	erased  map[string]bool // tenant token → erased after the event at through
	through uint64          // the checkpoint erased is exact at
	lookup  func(ctx context.Context, subject string, seq uint64) (bool, error)
}

func newErasures(js jetstream.JetStream) *erasures {
	return &erasures{erased: map[string]bool{}, lookup: func(ctx context.Context, subject string, seq uint64) (bool, error) {
		erased, _, err := stream.ErasedAt(ctx, js.Conn(), subject, seq)
		return erased, err
	}}
}

// erasureView is one step's view of the erasures: what the step's events change is kept
// apart until the step commits (worker.finish), so that a step tried again starts from the
// same state.
type erasureView struct {
	base    *erasures
	changed map[string]bool
}

// view starts a step at checkpoint cp.
func (e *erasures) view(cp uint64) *erasureView {
	if cp != e.through {
		clear(e.erased)
		e.through = cp
	}
	return &erasureView{base: e, changed: map[string]bool{}}
}

// commit takes a committed step's changes; the state is exact at last now.
func (e *erasures) commit(v *erasureView, last uint64) {
	if v == nil || v.base != e {
		return
	}
	for token, erased := range v.changed {
		e.erased[token] = erased
	}
	e.through = last
}

// refused reports whether the event at seq on the stored subject is to be dropped, and moves
// the view past it: a tombstone erases its tenant, a re-creation ends the erasure; both are
// applied.
func (v *erasureView) refused(ctx context.Context, subject string, seq uint64) (bool, error) {
	token, kind, err := events.ParseSubject(subject)
	if err != nil || token == events.SharedTenantToken {
		return false, nil // no tenant that can be erased: decoding decides
	}
	switch kind {
	case events.KindUserErased:
		v.changed[token] = true
		return false, nil
	case events.KindUserRecreated:
		v.changed[token] = false
		return false, nil
	}
	if erased, ok := v.changed[token]; ok {
		return erased, nil
	}
	if erased, ok := v.base.erased[token]; ok {
		return erased, nil
	}
	erased, err := v.base.lookup(ctx, subject, seq)
	if err != nil {
		return false, fmt.Errorf("%w: is the tenant of sequence %d erased: %w", errNATS, seq, err)
	}
	v.changed[token] = erased
	return erased, nil
}

// markRefused decides, for each event the step applies, whether it is dropped for its
// tenant's erasure (entry.refused). It runs inside the step's transaction, so the tenants the
// worker meets for the first time are looked up at once, before the events are walked in
// order: a step that brings many new tenants (a projector's start) waits one round trip, not
// one per tenant.
func (w *worker) markRefused(ctx context.Context, cp uint64, plan *stepPlan) error {
	plan.erasures = w.erasures.view(cp)
	if err := plan.erasures.prefetch(ctx, plan.apply); err != nil {
		return err
	}
	for _, e := range plan.apply {
		refused, err := plan.erasures.refused(ctx, e.subject, e.seq)
		if err != nil {
			return err
		}
		e.refused = refused
	}
	return nil
}

// maxLookups bounds the look-ups of one step in flight at once.
const maxLookups = 16

// prefetch looks up, concurrently, every tenant whose first event in entries would need the
// log (refused's look-up: not known, and that first event no tombstone or re-creation, which
// decide by themselves), and records the answers as refused would have.
func (v *erasureView) prefetch(ctx context.Context, entries []*entry) error {
	type first struct {
		subject string
		seq     uint64
	}
	todo := map[string]first{}
	seen := map[string]bool{}
	for _, e := range entries {
		token, kind, err := events.ParseSubject(e.subject)
		if err != nil || token == events.SharedTenantToken || seen[token] {
			continue
		}
		seen[token] = true
		if _, known := v.changed[token]; known {
			continue
		}
		if _, known := v.base.erased[token]; known || kind == events.KindUserErased || kind == events.KindUserRecreated {
			continue
		}
		todo[token] = first{e.subject, e.seq}
	}
	if len(todo) < 2 {
		return nil // refused looks the one up itself
	}
	type answer struct {
		token  string
		erased bool
		err    error
	}
	answers := make(chan answer, len(todo))
	slots := make(chan struct{}, maxLookups)
	for token, f := range todo {
		go func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			erased, err := v.base.lookup(ctx, f.subject, f.seq)
			answers <- answer{token, erased, err}
		}()
	}
	var errs []error
	for range todo {
		a := <-answers
		if a.err != nil {
			errs = append(errs, a.err)
			continue
		}
		v.changed[a.token] = a.erased
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: are the step's tenants erased: %w", errNATS, err)
	}
	return nil
}

// Erasures applies the same rule to events read in stream order by a replay, which commits
// in order and starts over when it fails: the state moves with each event at once.
type Erasures struct{ e *erasures }

// NewErasures starts with no tenant known; lookup says whether the tenant of the event at seq
// on subject is erased there, for a tenant seen for the first time (stream.ErasedAt; a
// replay that reads the stream from its start knows that none is).
func NewErasures(lookup func(ctx context.Context, subject string, seq uint64) (bool, error)) *Erasures {
	return &Erasures{e: &erasures{erased: map[string]bool{}, lookup: lookup}}
}

// Refused reports whether the event at seq on the stored subject is dropped for its tenant's
// erasure; events must come in stream order.
func (x *Erasures) Refused(ctx context.Context, subject string, seq uint64) (bool, error) {
	v := &erasureView{base: x.e, changed: x.e.erased}
	return v.refused(ctx, subject, seq)
}
