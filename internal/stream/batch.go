package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/engram-memory/engram/internal/events"
)

// MaxAtomicBatch is nats-server's default limit on the messages of one atomic batch
// (jetstream.limits.max_batch_size); a larger batch is refused by the server.
const MaxAtomicBatch = 1000

// MaxOpenAtomicBatches is nats-server's default limit on the atomic batches open at once on
// one stream (jetstream.limits.max_batch_inflight_per_stream), shared by every publisher: a
// batch beyond it is refused (ErrUnavailable).
const MaxOpenAtomicBatches = 50

// batchAckEvery makes the batch publisher wait for the server's flow-control ack every so many
// messages, so a large batch cannot outrun the stream's ingest queue.
const batchAckEvery = 100

// ErrDuplicateInBatch means an atomic batch held an event id the stream already stored within its
// duplicate window, so JetStream refused the whole batch and stored none of it. For a
// retried batch (same event ids) this means the first attempt was stored.
var ErrDuplicateInBatch = errors.New("batch holds an event the stream already stored")

// PublishBatch stores the events atomically with JetStream's atomic batch publish: every one
// of them or none. It returns only after the server committed the batch; the events' stream
// sequences are consecutive, in the order given. Each event gets the Nats-Msg-Id Publish would
// give it, so an event of the batch published again later is recognised as a duplicate; a
// batch holding an event the stream already stored (same tenant and event id) is refused
// whole (ErrDuplicateInBatch).
func (p *Publisher) PublishBatch(ctx context.Context, evs []*events.Event) ([]Stored, error) {
	msgs := make([]*nats.Msg, len(evs))
	ids := make([]string, len(evs))
	for i, e := range evs {
		m, err := events.Encode(e)
		if err != nil {
			return nil, err
		}
		msgs[i], ids[i] = m, e.ID
	}
	return p.PublishBatchMsgs(ctx, ids, msgs)
}

// PublishBatchMsgs stores encoded events atomically; ids[i] is the event id of msgs[i].
func (p *Publisher) PublishBatchMsgs(ctx context.Context, ids []string, msgs []*nats.Msg) ([]Stored, error) {
	switch {
	case len(msgs) == 0:
		return nil, fmt.Errorf("publish batch: %w: no events", ErrRejected)
	case len(msgs) != len(ids):
		return nil, fmt.Errorf("publish batch: %d ids for %d events", len(ids), len(msgs))
	case len(msgs) > MaxAtomicBatch:
		return nil, fmt.Errorf("publish batch: %w: %d events, at most %d", ErrRejected, len(msgs), MaxAtomicBatch)
	}
	// A message handed to a reconnecting connection would be buffered and sent later, after
	// the caller heard of the failure; refuse at once instead.
	if !p.js.Conn().IsConnected() {
		return nil, fmt.Errorf("publish batch of %d: %w: not connected", len(msgs), ErrUnavailable)
	}
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout+p.leaderWait)
		defer cancel()
	}
	for i, m := range msgs {
		if _, err := p.sign(ids[i], m); err != nil {
			return nil, fmt.Errorf("publish batch: %w", err)
		}
		m.Header.Set(jetstream.ExpectedStreamHeader, MemoryStream)
	}
	fc := jetstreamext.BatchFlowControl{AckFirst: true, AckEvery: batchAckEvery, AckTimeout: p.timeout}
	// A stream electing its leader answers the batch's first message (sent as a request,
	// AckFirst) with no responders, before anything is staged: tried again, as a single
	// publish is (WithLeaderWait). No acknowledgement in time is not tried again here: the
	// batch may have been stored, and a second one would be refused whole as a duplicate.
	leaderDeadline := time.Now().Add(p.leaderWait)
	pause := leaderPauseMin
	var ack *jetstreamext.BatchAck
	var err error
	for {
		ack, err = jetstreamext.PublishMsgBatch(ctx, p.js, msgs, fc)
		if err == nil || p.leaderWait == 0 || ctx.Err() != nil || !noResponders(err) ||
			!time.Now().Before(leaderDeadline) || !p.js.Conn().IsConnected() {
			break
		}
		leaderPause(ctx, leaderDeadline, &pause)
	}
	if err != nil {
		return nil, fmt.Errorf("publish batch of %d (first event %s): %w", len(msgs), ids[0], classify(err))
	}
	if ack.BatchSize != uint64(len(msgs)) || ack.Sequence < ack.BatchSize {
		return nil, fmt.Errorf("publish batch of %d: %w: ack for %d events at sequence %d", len(msgs), ErrTimeout, ack.BatchSize, ack.Sequence)
	}
	first := ack.Sequence - ack.BatchSize + 1
	out := make([]Stored, len(msgs))
	for i := range msgs {
		out[i] = Stored{EventID: ids[i], Sequence: first + uint64(i)}
	}
	return out, nil
}
