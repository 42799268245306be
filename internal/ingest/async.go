package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

// Defaults of an AsyncPublisher.
const (
	DefaultMaxInFlight = 256
	DefaultAckTimeout  = 5 * time.Second
)

// ErrUnconfirmed means Wait ended (its context) before JetStream acknowledged the event. It may
// still be stored; publishing the same event again is safe (same id, stored once).
var ErrUnconfirmed = errors.New("event not acknowledged yet")

// ErrInFlight means an event with the same id is already in flight on this publisher.
var ErrInFlight = errors.New("event already in flight")

// PublishError is one event an AsyncPublisher could not store. Event is the event as sent, so
// the caller can publish it again unchanged (PublishEvent) without a second copy being stored.
type PublishError struct {
	Event *events.Event
	Err   error // wraps stream.ErrUnavailable, ErrTimeout, ErrStreamFull, ErrRejected or ErrUnconfirmed
}

// Error names the event and why it failed.
func (e *PublishError) Error() string {
	return fmt.Sprintf("event %s (%s): %v", e.Event.ID, e.Event.Kind, e.Err)
}

// Unwrap returns the cause.
func (e *PublishError) Unwrap() error { return e.Err }

// Failures returns every *PublishError in err (as returned by Wait).
func Failures(err error) []*PublishError {
	switch e := err.(type) { //nolint:errorlint // walks the errors.Join tree itself, level by level
	case *PublishError:
		return []*PublishError{e}
	case interface{ Unwrap() []error }:
		var out []*PublishError
		for _, x := range e.Unwrap() {
			out = append(out, Failures(x)...)
		}
		return out
	}
	return nil
}

// Sent is what Publish returns at once: the event's id and the ids the command minted.
type Sent struct {
	EventID string
	Minted
}

// AsyncPublisher publishes commands straight to JetStream without waiting for each
// acknowledgement (fire-and-forget for agents), with a bounded number in flight. Publish
// validates, applies the multi-tenant guardrail and returns the minted ids before anything
// is acknowledged; Wait reports every event that failed. It is safe for concurrent use.
type AsyncPublisher struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	settings Settings
	slots    chan struct{}

	mu      sync.Mutex
	pending map[string]*events.Event // by Nats-Msg-Id
	failed  []error
	idle    chan struct{} // closed when pending drains to zero; nil when nobody waits
}

// AsyncOption configures an AsyncPublisher.
type AsyncOption func(*asyncOptions) error

type asyncOptions struct {
	maxInFlight int
	ackTimeout  time.Duration
}

// WithMaxInFlight bounds the events published but not yet acknowledged; Publish blocks (within
// its context) while the bound is reached. Default DefaultMaxInFlight.
func WithMaxInFlight(n int) AsyncOption {
	return func(o *asyncOptions) error {
		if n < 1 {
			return fmt.Errorf("ingest: max in flight %d: must be at least 1", n)
		}
		o.maxInFlight = n
		return nil
	}
}

// WithAckTimeout sets how long an event may wait for its acknowledgement before it counts as
// failed (stream.ErrTimeout). Default DefaultAckTimeout.
func WithAckTimeout(d time.Duration) AsyncOption {
	return func(o *asyncOptions) error {
		if d <= 0 {
			return fmt.Errorf("ingest: ack timeout %s: must be positive", d)
		}
		o.ackTimeout = d
		return nil
	}
}

// NewAsyncPublisher returns a publisher on nc building events with s (s.Source defaults to
// DefaultSource; agents should name themselves, e.g. /engram/client/<agent>).
func NewAsyncPublisher(nc *nats.Conn, s Settings, opts ...AsyncOption) (*AsyncPublisher, error) {
	if nc == nil {
		return nil, errors.New("ingest: nil nats connection")
	}
	o := asyncOptions{maxInFlight: DefaultMaxInFlight, ackTimeout: DefaultAckTimeout}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	p := &AsyncPublisher{
		nc:       nc,
		settings: s,
		slots:    make(chan struct{}, o.maxInFlight),
		pending:  map[string]*events.Event{},
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(o.maxInFlight),
		jetstream.WithPublishAsyncTimeout(o.ackTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			p.done(m.Header.Get(nats.MsgIdHdr), nil)
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			p.done(m.Header.Get(nats.MsgIdHdr), err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("ingest: jetstream: %w", err)
	}
	p.js = js
	return p, nil
}

// Publish builds cmd's event and sends it without waiting for the acknowledgement. Bad input
// and the multi-tenant guardrail fail here, before anything is sent; so does a publisher
// that is not connected (stream.ErrUnavailable). Failures after sending are reported by Wait.
func (p *AsyncPublisher) Publish(ctx context.Context, cmd Command) (Sent, error) {
	ev, minted, err := Build(cmd, p.settings)
	if err != nil {
		return Sent{}, err
	}
	if err := p.PublishEvent(ctx, ev); err != nil {
		return Sent{}, err
	}
	return Sent{EventID: ev.ID, Minted: minted}, nil
}

// PublishEvent sends a built event (e.g. one that failed, again: same id, stored once).
func (p *AsyncPublisher) PublishEvent(ctx context.Context, ev *events.Event) error {
	msg, err := events.Encode(ev)
	if err != nil {
		return err
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("publish %s: waiting for a slot in flight: %w", ev.ID, ctx.Err())
	}
	// A reconnecting connection would buffer the message and send it after its ack timed
	// out; refuse at once instead.
	if !p.nc.IsConnected() {
		<-p.slots
		return fmt.Errorf("publish %s: %w: not connected", ev.ID, stream.ErrUnavailable)
	}
	// Acknowledgements are matched by the message's Nats-Msg-Id (events.MsgID: tenant and
	// event id), which the ack handlers see.
	msgID := msg.Header.Get(nats.MsgIdHdr)
	p.mu.Lock()
	if _, dup := p.pending[msgID]; dup {
		p.mu.Unlock()
		<-p.slots
		return fmt.Errorf("publish %s: %w", ev.ID, ErrInFlight)
	}
	p.pending[msgID] = ev
	p.mu.Unlock()
	if _, err := p.js.PublishMsgAsync(msg, jetstream.WithExpectStream(stream.MemoryStream)); err != nil {
		p.mu.Lock()
		delete(p.pending, msgID)
		p.signalIdle()
		p.mu.Unlock()
		<-p.slots
		return fmt.Errorf("publish %s: %w", ev.ID, stream.Classify(err))
	}
	return nil
}

// done settles the event of Nats-Msg-Id id: acknowledged (err nil) or failed.
func (p *AsyncPublisher) done(id string, err error) {
	p.mu.Lock()
	ev, ok := p.pending[id]
	if ok {
		delete(p.pending, id)
		if err != nil {
			p.failed = append(p.failed, &PublishError{Event: ev, Err: stream.Classify(err)})
		}
		p.signalIdle()
	}
	p.mu.Unlock()
	if ok {
		<-p.slots
	}
}

// signalIdle wakes waiters once nothing is pending. p.mu is held.
func (p *AsyncPublisher) signalIdle() {
	if len(p.pending) == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// InFlight returns the number of events sent and not yet settled.
func (p *AsyncPublisher) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// Wait blocks until every event sent so far is acknowledged or failed, or ctx ends. It returns
// the events that failed since the previous Wait, each a *PublishError (errors.Join; see
// Failures), in event id order; when ctx ends first, the events still in flight are reported
// too, wrapping ErrUnconfirmed (they stay in flight and may yet be stored). Each failure is
// reported once.
func (p *AsyncPublisher) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		if len(p.pending) == 0 {
			errs := p.takeFailed()
			p.mu.Unlock()
			return errs
		}
		if p.idle == nil {
			p.idle = make(chan struct{})
		}
		idle := p.idle
		p.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			p.mu.Lock()
			for _, ev := range p.pending {
				p.failed = append(p.failed, &PublishError{Event: ev, Err: fmt.Errorf("%w: %w", ErrUnconfirmed, ctx.Err())})
			}
			errs := p.takeFailed()
			p.mu.Unlock()
			return errs
		}
	}
}

// takeFailed returns the recorded failures, joined in event id order, and forgets them.
// p.mu is held.
func (p *AsyncPublisher) takeFailed() error {
	failed := p.failed
	p.failed = nil
	slices.SortFunc(failed, func(a, b error) int {
		return strings.Compare(a.(*PublishError).Event.ID, b.(*PublishError).Event.ID) //nolint:errorlint // p.failed holds only *PublishError
	})
	return errors.Join(failed...)
}
