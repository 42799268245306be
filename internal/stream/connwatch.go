package stream

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// A publish in flight when its connection is lost is not lost with it. The request went to
// the server the connection had; that server may have stored the event (or passed it to the
// stream's leader, which stored it) and its answer died with the connection, or it may not
// have. Waiting out the publish's timeout then answered 503 for a write the cluster may well
// hold, 5 s after a node that was not even the stream's leader died (issue 19: "non-leader
// kill", test/cluster). Now the publisher notices the loss at once (connWatch), waits for the
// connection to come back, on another node of the cluster's URL list, and sends the same
// message again: the same Nats-Msg-Id, so JetStream stores it at most once and answers the
// first copy's sequence when that one was stored. A publish that finds the connection down
// waits for it as long (reconnectGrace), instead of 503 at once: on a cluster the client is
// back within a few of its reconnect attempts. Nothing is ever handed to a reconnecting
// connection's buffer (there is none: stream.Connect), so nothing is sent after the caller
// heard of a failure.

// reconnectGrace bounds how long a publish waits for a lost connection to come back before it
// answers ErrUnavailable (the caller's own deadline may end it sooner). The services reconnect
// every 250 ms (stream.Connect), to the next server of their URL list first.
const reconnectGrace = time.Second

// connWatch follows a connection's status: a context that ends when the connection is lost,
// renewed when it is back, and a channel closed while it is connected.
type connWatch struct {
	nc     *nats.Conn
	mu     sync.Mutex
	live   context.Context // ends when the connection is lost
	cancel context.CancelFunc
	up     chan struct{} // closed while connected
}

// watch starts following nc's status; it stops when nc is closed.
func watch(nc *nats.Conn) *connWatch {
	w := &connWatch{nc: nc, up: make(chan struct{})}
	w.live, w.cancel = context.WithCancel(context.Background())
	ch := nc.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	if !nc.IsConnected() {
		w.cancel()
	} else {
		close(w.up)
	}
	go func() {
		for st := range ch {
			switch st {
			case nats.CONNECTED:
				w.regain()
			case nats.CLOSED:
				w.lose()
				nc.RemoveStatusListener(ch)
				return
			default:
				w.lose()
			}
		}
	}()
	// A change between the first look and the listener's registration: look again.
	if nc.IsConnected() {
		w.regain()
	} else {
		w.lose()
	}
	return w
}

// state returns the context of the connection now (ended when it is not connected) and a
// channel closed once it is connected.
func (w *connWatch) state() (context.Context, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.live, w.up
}

func (w *connWatch) lose() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.live.Err() != nil {
		return
	}
	w.cancel()
	w.up = make(chan struct{})
}

func (w *connWatch) regain() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.live.Err() == nil {
		return
	}
	w.live, w.cancel = context.WithCancel(context.Background())
	close(w.up)
}

// connected waits until the connection is up, for at most reconnectGrace or ctx, and returns
// its context; false when it did not come back. nats.go drops a status event its listener's
// buffer has no room for, so the connection itself is asked too.
func (w *connWatch) connected(ctx context.Context) (context.Context, bool) {
	deadline := time.Now().Add(reconnectGrace)
	for {
		live, up := w.state()
		if live.Err() == nil {
			return live, true
		}
		if w.nc.IsConnected() {
			w.regain() // its event was lost
			continue
		}
		wait := min(50*time.Millisecond, time.Until(deadline))
		if wait <= 0 {
			return nil, false
		}
		t := time.NewTimer(wait)
		select {
		case <-up:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, false
		}
		t.Stop()
	}
}
