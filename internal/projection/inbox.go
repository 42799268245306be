package projection

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// inbox receives a partition's deliveries in a goroutine of its own while the worker applies
// the events received before.
//
// Why not read the iterator from the worker itself: the iterator sends its pull requests (and
// so renews the partition's pin, which JetStream resets on every pull request of the pinned
// client) only from inside Next. A worker that is in a transaction does not call Next, so with
// a short pin timeout a long batch would lose the partition, and events that arrive meanwhile
// would wait for the end of the transaction even to be fetched. With the inbox the pulls go
// on, the next batch is already here when a transaction commits, and batching needs no wait:
// whatever arrived during one transaction is the next one.
//
// The inbox holds at most limit deliveries; while it is full the goroutine stops taking
// deliveries (the iterator's own buffer, one batch, holds the rest) until the worker takes a
// batch.
type inbox struct {
	it    jetstream.MessagesContext
	limit int

	mu       sync.Mutex
	msgs     []jetstream.Msg
	stopping bool          // close was called: receive what the iterator still has, however many
	err      error         // why the iterator ended; set once, with closed
	ready    chan struct{} // a send (never blocking) when msgs or err changed
	space    chan struct{} // a send (never blocking) when the worker took deliveries
	closed   chan struct{} // closed when the goroutine returned
}

func newInbox(it jetstream.MessagesContext, limit int) *inbox {
	in := &inbox{it: it, limit: max(limit, 1), ready: make(chan struct{}, 1), space: make(chan struct{}, 1),
		closed: make(chan struct{})}
	go in.fill()
	return in
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (in *inbox) fill() {
	defer close(in.closed)
	for {
		in.mu.Lock()
		full := len(in.msgs) >= in.limit && !in.stopping
		in.mu.Unlock()
		if full {
			<-in.space
			continue
		}
		msg, err := in.it.Next()
		in.mu.Lock()
		if err != nil {
			in.err = err
			in.mu.Unlock()
			notify(in.ready)
			return
		}
		in.msgs = append(in.msgs, msg)
		in.mu.Unlock()
		notify(in.ready)
	}
}

// take waits until deliveries are there (or ctx ends) and returns up to n of them, in delivery
// order. It returns the iterator's error once the iterator ended and everything before it was
// taken.
func (in *inbox) take(ctx context.Context, n int) ([]jetstream.Msg, error) {
	for {
		in.mu.Lock()
		if len(in.msgs) > 0 {
			k := min(n, len(in.msgs))
			out := make([]jetstream.Msg, k)
			copy(out, in.msgs)
			rest := copy(in.msgs, in.msgs[k:])
			clear(in.msgs[rest:])
			in.msgs = in.msgs[:rest]
			in.mu.Unlock()
			notify(in.space)
			return out, nil
		}
		err := in.err
		in.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-in.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// poll returns up to n deliveries that are already there, without waiting (none from a nil
// inbox).
func (in *inbox) poll(n int) []jetstream.Msg {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	k := min(n, len(in.msgs))
	if k == 0 {
		return nil
	}
	out := make([]jetstream.Msg, k)
	copy(out, in.msgs)
	rest := copy(in.msgs, in.msgs[k:])
	clear(in.msgs[rest:])
	in.msgs = in.msgs[:rest]
	notify(in.space)
	return out
}

// close stops the iterator. With drain, the deliveries it had buffered are still received
// (for the caller to hand back); the goroutine ends once they are. It returns what was received
// and not taken.
func (in *inbox) close(ctx context.Context, drain bool) []jetstream.Msg {
	in.mu.Lock()
	in.stopping = true
	in.mu.Unlock()
	notify(in.space)
	if drain {
		in.it.Drain()
	} else {
		in.it.Stop()
	}
	select {
	case <-in.closed:
	case <-ctx.Done():
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	out := in.msgs
	in.msgs = nil
	return out
}

// iteratorClosed reports whether err only says the iterator was stopped or drained.
func iteratorClosed(err error) bool { return errors.Is(err, jetstream.ErrMsgIteratorClosed) }
