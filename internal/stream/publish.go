package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/engram-memory/engram/internal/events"
)

// Sentinel errors of a publish; callers branch on them with errors.Is. The ingestor maps
// ErrUnavailable and ErrTimeout to 503 with Retry-After, ErrStreamFull to 507.
var (
	// ErrUnavailable: NATS is not connected or no stream listens on the subject.
	ErrUnavailable = errors.New("event store unavailable")
	// ErrTimeout: JetStream did not acknowledge in time; the event may or may not be stored,
	// and publishing it again (same id) is safe.
	ErrTimeout = errors.New("event store did not acknowledge in time")
	// ErrStreamFull: the stream refused the event because it reached a limit.
	ErrStreamFull = errors.New("event store is full")
	// ErrRejected: the stream refused the event for another reason (e.g. too large).
	ErrRejected = errors.New("event store rejected the event")
	// ErrConflict: the event expected its subject's last message at a sequence, and another
	// was stored there first (JetStream's wrong last sequence); nothing was stored.
	ErrConflict = errors.New("event store holds a newer event on the subject")
	// ErrBusy: the event expected a subject's last message at a sequence while another event
	// with an expectation on that subject was still being stored, which a clustered stream
	// refuses until that one is replicated (nats-server's "in process" check; JetStream's
	// wrong last sequence, constant variant); nothing was stored. It also matches ErrConflict.
	// Trying again a moment later is the remedy: the subject may well be unchanged.
	ErrBusy = errors.New("event store is storing another event checked against the same subject")
)

// Stored says where JetStream stored an event: the consistency token a read can wait for.
type Stored struct {
	EventID   string `json:"event_id"`
	Sequence  uint64 `json:"sequence"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// Publisher publishes events synchronously: Publish returns only after the PubAck.
type Publisher struct {
	js         jetstream.JetStream
	timeout    time.Duration
	leaderWait time.Duration // WithLeaderWait
	keys       Keys
	conn       *connWatch // the connection's status (connwatch.go)
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// WithKeys makes the publisher the ingestors': every event's Nats-Msg-Id is keyed
// (Key.MsgID) and every event carries the first key's vouch (VouchHeader). Without keys
// the Nats-Msg-Id is events.MsgID's and nothing is vouched for.
func WithKeys(ks Keys) PublisherOption {
	return func(p *Publisher) { p.keys = slices.Clone(ks) }
}

// WithLeaderWait makes a publish ride through a leader election of the stream: while the
// connection is up but no server answers for the stream (no responders, JetStream's 503, or
// no acknowledgement within the timeout), the publish is tried again, with the same
// Nats-Msg-Id, for up to d beyond its first timeout, instead of failing at once. On a
// three-node cluster the stream is without a leader for the seconds an election takes after
// its leader's node is lost (5.1-7.2 s measured, test/cluster); with a wait longer than that,
// writers see a slower write, not a refusal. 0 (the default) fails at once.
func WithLeaderWait(d time.Duration) PublisherOption {
	return func(p *Publisher) { p.leaderWait = max(d, 0) }
}

// NewPublisher returns a Publisher whose publishes give up after timeout.
func NewPublisher(js jetstream.JetStream, timeout time.Duration, opts ...PublisherOption) *Publisher {
	p := &Publisher{js: js, timeout: timeout, conn: watch(js.Conn())}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Publish encodes e and stores it. The Nats-Msg-Id is derived from the tenant and the event
// id (sign), so publishing the same event again within the duplicate window stores nothing
// new and returns the first sequence, while another tenant's event of the same id is its own.
func (p *Publisher) Publish(ctx context.Context, e *events.Event) (Stored, error) {
	msg, err := events.Encode(e)
	if err != nil {
		return Stored{}, err
	}
	return p.PublishMsg(ctx, e.ID, msg)
}

// PublishMsg stores an encoded event whose event id is id; its Nats-Msg-Id (and vouch) are
// set here, whatever msg carried.
func (p *Publisher) PublishMsg(ctx context.Context, id string, msg *nats.Msg) (Stored, error) {
	msgID, err := p.sign(id, msg)
	if err != nil {
		return Stored{}, err
	}
	// The whole publish, its rides through a leader election included (WithLeaderWait); each
	// attempt waits at most timeout for its answer.
	var leaderDeadline time.Time
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout+p.leaderWait)
		defer cancel()
		leaderDeadline = time.Now().Add(p.leaderWait)
	}
	// A message handed to a reconnecting connection would be buffered and sent later, after
	// the caller heard of the failure; it waits for the connection instead (connwatch.go).
	// A publish whose connection was lost while it waited for its answer is sent again, with
	// the same Nats-Msg-Id, once the connection is back. An answer "duplicate" to such a copy
	// is most likely about the lost one, so it is not reported as a duplicate; likewise after
	// an attempt that timed out (the stream may have stored it and lost its leader).
	maybeStored := false
	pause := leaderPauseMin
	for {
		live, ok := p.conn.connected(ctx)
		if !ok {
			if maybeStored {
				return Stored{}, fmt.Errorf("publish %s: %w: the connection was lost before the answer and did not come back", id, ErrTimeout)
			}
			return Stored{}, fmt.Errorf("publish %s: %w: not connected", id, ErrUnavailable)
		}
		var actx context.Context
		var cancel context.CancelFunc
		if p.timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, p.timeout)
		} else {
			actx, cancel = context.WithCancel(ctx)
		}
		stop := context.AfterFunc(live, cancel)
		opts := []jetstream.PublishOpt{jetstream.WithMsgID(msgID), jetstream.WithExpectStream(MemoryStream)}
		if p.leaderWait > 0 {
			// This loop tries again, telling "no responders" from "no answer in time";
			// nats.go's own retries of no responders would blur the two.
			opts = append(opts, jetstream.WithRetryAttempts(0))
		}
		ack, err := p.js.PublishMsg(actx, msg, opts...)
		stop()
		cancel()
		if err != nil && ctx.Err() == nil && live.Err() != nil {
			maybeStored = true
			continue // the connection went away with the answer: ask again
		}
		if err != nil && p.leaderWait > 0 && ctx.Err() == nil && leaderless(err) && time.Now().Before(leaderDeadline) {
			if errors.Is(classify(err), ErrTimeout) {
				maybeStored = true
			}
			leaderPause(ctx, leaderDeadline, &pause)
			continue // the stream is electing a leader: ask again a moment later
		}
		if err != nil {
			return Stored{}, fmt.Errorf("publish %s: %w", id, classify(err))
		}
		return Stored{EventID: id, Sequence: ack.Sequence, Duplicate: ack.Duplicate && !maybeStored}, nil
	}
}

// errCodeDuplicateInProcess is nats-server's JSStreamDuplicateMessageConflict ("duplicate
// message id is in process", 409) of a clustered stream: a message with the same Nats-Msg-Id
// is being replicated. Found by test/cluster when a publish tried again after a lost
// acknowledgement met its first copy still in flight after a loss of quorum.
const errCodeDuplicateInProcess = 10158

// Pauses between the tries of a publish riding through a leader election.
const (
	leaderPauseMin = 25 * time.Millisecond
	leaderPauseMax = 400 * time.Millisecond
)

// leaderPause waits *pause before the next try of a publish riding through an election,
// never past deadline (the try after it is the last, and its answer the caller's), and
// doubles *pause up to leaderPauseMax.
func leaderPause(ctx context.Context, deadline time.Time, pause *time.Duration) {
	t := time.NewTimer(max(min(*pause, time.Until(deadline)), time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	*pause = min(2**pause, leaderPauseMax)
}

// leaderless reports whether a publish's error is what a stream without a leader answers:
// no server took it (no responders), JetStream said it is unavailable (an API error with code
// 503), or no acknowledgement came in time.
func leaderless(err error) bool {
	return noResponders(err) || errors.Is(classify(err), ErrTimeout)
}

// noResponders: no server took the publish, or JetStream answered with its own trouble (a 5xx
// API error, a full stream aside); either way nothing was stored.
func noResponders(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code >= 500 && !errors.Is(classify(err), ErrStreamFull)
	}
	return false
}

// Classify maps an error of a JetStream publish (synchronous, asynchronous or batch) onto the
// sentinels above, keeping the original in the chain; other errors are returned as they are.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	return classify(err)
}

// classify maps nats.go's errors onto the sentinels above, keeping the original in the chain.
func classify(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrNoServers),
		errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, nats.ErrReconnectBufExceeded):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, jetstream.ErrAsyncPublishTimeout), errors.Is(err, jetstreamext.ErrInvalidBatchAck):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case errors.Is(err, nats.ErrMaxPayload):
		return fmt.Errorf("%w: %w", ErrRejected, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeDuplicateInProcess:
		// A copy with the same Nats-Msg-Id (an earlier try of this publish) is still being
		// replicated: it may be stored, and asking again once it is done answers its sequence.
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant:
		return fmt.Errorf("%w: %w: %w", ErrConflict, ErrBusy, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishDuplicateMsgID:
		return fmt.Errorf("%w: %w", ErrDuplicateInBatch, err)
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishIncomplete ||
		apiErr.ErrorCode == jetstreamext.JSErrCodeAtomicPublishTooManyInflight ||
		apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishTooManyInflight):
		// An abandoned (incomplete) batch stored nothing and too many open batches is load:
		// both are worth retrying.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.As(err, &apiErr):
		// 10077 is JSStreamStoreFailed; its description carries the store's reason.
		if apiErr.ErrorCode == 10077 || apiErr.ErrorCode == 10023 {
			d := strings.ToLower(apiErr.Description)
			if strings.Contains(d, "maximum") || strings.Contains(d, "resources") {
				return fmt.Errorf("%w: %w", ErrStreamFull, err)
			}
			if strings.Contains(d, "too large") {
				return fmt.Errorf("%w: %w", ErrRejected, err)
			}
		}
		if apiErr.Code >= 500 {
			// JetStream's own trouble, not the event's: 503 unavailable, or 500 such as
			// "cluster can not handle request" (10009) or "stream is offline" (10118), which
			// a stream regaining its quorum answers. Nothing was stored; worth retrying.
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("%w: %w", ErrRejected, err)
	}
	return err
}
