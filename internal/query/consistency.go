package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/stream"
)

// Read-your-writes. A write answers with its consistency token: the stream sequence JetStream
// stored it at. The projector keeps one checkpoint per partition, (:EngramCheckpoint {name:
// "<group>-p<partition>", stream_seq}), written in the transaction that applied the events up
// to stream_seq. A user's events all go to the partition events.Partition(token) names, in
// stored order, so for a read about the user who wrote, "checkpoint >= token" is exact.
//
// A token of another user's write (another partition) is covered too once the user's
// partition holds nothing unapplied at or below it and can get nothing more there (the token
// is not beyond the stream's end); sequences are global, so the reader asks the stream
// (PartitionLog) for the partition's first event after its checkpoint instead of waiting for a
// checkpoint that may never pass the token.

const checkpointByName = `
MATCH (c:EngramCheckpoint {name: $name})
RETURN c {.stream_seq} AS checkpoint
`

// Poll intervals of WaitFor: short at first, since the projector usually catches up within a
// batch, growing so that a slow wait costs few queries.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 50 * time.Millisecond
)

// PartitionLog tells which events a projection partition holds.
type PartitionLog interface {
	// NextInPartition returns the stream sequence of the partition's first event in
	// [from, upTo]; 0 when it has none there and can get none (upTo is at or below the
	// stream's last sequence); a value above upTo when it cannot tell yet (upTo lies beyond
	// the stream's end, so a future event of the partition could still take a sequence below it).
	NextInPartition(ctx context.Context, partition int, from, upTo uint64) (uint64, error)
}

// StreamLog is the PartitionLog of the memory stream: the stored subject of an event ends in
// its partition (mem.<tenant-token>.<kind>.<partition>), and JetStream finds the next message
// of a subject filter by sequence without a consumer.
type StreamLog struct {
	js   jetstream.JetStream
	mu   sync.Mutex
	s    jetstream.Stream
	keys *keys.Ring // opens sealed events for the log reads (uilog.go)
}

// NewStreamLog returns the memory stream's PartitionLog.
func NewStreamLog(js jetstream.JetStream) *StreamLog {
	return &StreamLog{js: js, keys: keys.Default(js)}
}

func (l *StreamLog) codec() events.Codec { return events.Codec{Keys: l.keys} }

// NextInPartition implements PartitionLog.
func (l *StreamLog) NextInPartition(ctx context.Context, partition int, from, upTo uint64) (uint64, error) {
	s, err := l.stream(ctx)
	if err != nil {
		return 0, err
	}
	subject := events.SubjectRoot + ".*.*." + strconv.Itoa(partition)
	msg, err := s.GetMsg(ctx, from, jetstream.WithGetMsgSubject(subject))
	switch {
	case err == nil && msg.Sequence <= upTo:
		return msg.Sequence, nil
	case err == nil:
		return 0, nil // a later event exists, so every sequence up to upTo is taken
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, fmt.Errorf("next event of partition %d from %d: %w", partition, from, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream.MemoryStream, err)
	}
	if info.State.LastSeq >= upTo {
		return 0, nil
	}
	return math.MaxUint64, nil
}

func (l *StreamLog) stream(ctx context.Context) (jetstream.Stream, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, nil
	}
	s, err := l.js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream.MemoryStream, err)
	}
	l.s = s
	return s, nil
}

// CheckpointName is the name of the projector checkpoint that covers identifier's writes.
func (r *Reader) CheckpointName(identifier string) (string, error) {
	owner, err := tenant(identifier)
	if err != nil {
		return "", err
	}
	return r.group + "-p" + strconv.Itoa(events.Partition(owner, r.partitions)), nil
}

// WaitFor returns once the graph reflects the write of consistency token for reads about
// identifier, or a *ConsistencyError (ErrNotCaughtUp) after wait. It returns ctx's error when
// ctx ends first, and an error matching ErrUnavailable when Neo4j does not answer.
func (r *Reader) WaitFor(ctx context.Context, identifier string, token uint64, wait time.Duration) error {
	name, err := r.CheckpointName(identifier)
	if err != nil {
		return err
	}
	if token == 0 || token > math.MaxInt64 {
		return badArg("consistency", "%d is not a stream sequence: want 1 to %d", token, int64(math.MaxInt64))
	}
	owner, _ := events.TenantToken(identifier)
	partition := events.Partition(owner, r.partitions)
	start := time.Now()
	// Every call below is bounded by the wait, so a slow Neo4j or NATS cannot stretch it.
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var reached uint64
	late := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return &ConsistencyError{Token: token, Checkpoint: name, Reached: reached, Waited: time.Since(start)}
	}
	poll := firstPoll
	var pending uint64 // the partition's first unapplied event at or below token, once known
	timer := time.NewTimer(maxPoll)
	defer timer.Stop()
	answered := false // whether the checkpoint was read at all
	for {
		// Taken before the read: a commit between the read and the wait still wakes it.
		committed := r.progress.Changed(partition)
		// A fresh notification of the partition's checkpoint stands for reading it back: at or
		// past the token the read is covered; below it the projector is committing the
		// partition and will say when it passes the token, so the checkpoint is not read from
		// Neo4j meanwhile. Read at every poll of every waiting read, it told nothing new and
		// loaded the database the projector needed: under a backlog the waiting reads polled
		// Neo4j thousands of times a second, which slowed the projection they waited for
		// (issue 11, docs/query.md). The graph is read when no fresh notification is there (an
		// idle partition, a projector that stopped, notifications lost).
		if notified := r.progress.Reached(partition); notified >= token {
			return nil
		} else if notified > 0 {
			answered, reached = true, notified
			if r.skipAhead(wctx, partition, token, &reached, &pending); reached >= token {
				return nil
			}
			if !r.pause(wctx, timer, poll, committed) {
				return late()
			}
			poll = min(poll*3/2, maxPoll)
			continue
		}
		cur, err := r.checkpoint(wctx, name)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, ErrUnavailable):
				return err
			case wctx.Err() != nil && !answered:
				// Neo4j did not answer once in the whole wait: that is an unavailable graph
				// (503), not a projection that is behind (504 with a position never read).
				return fmt.Errorf("checkpoint %s: %w: no answer within %s: %w", name, ErrUnavailable, wait, err)
			case wctx.Err() != nil:
				return late()
			}
			return err
		}
		answered = true
		reached = cur
		if reached >= token {
			return nil
		}
		if r.skipAhead(wctx, partition, token, &reached, &pending); reached >= token {
			return nil
		}
		if !r.pause(wctx, timer, poll, committed) {
			return late()
		}
		poll = min(poll*3/2, maxPoll)
	}
}

// skipAhead asks the log whether the partition holds anything unapplied between the
// checkpoint *reached and token (once per position past *pending): when it holds nothing and
// can get nothing there, the read is covered, and *reached is set to token. Errors only lose
// the shortcut; the checkpoint comparison stays exact.
func (r *Reader) skipAhead(ctx context.Context, partition int, token uint64, reached, pending *uint64) {
	if r.log == nil || *reached < *pending {
		return
	}
	next, err := r.log.NextInPartition(ctx, partition, *reached+1, token)
	switch {
	case err != nil:
	case next == 0:
		*reached = token
	case next <= token:
		*pending = next // no need to ask again before the checkpoint passes it
	}
}

// pause waits for the next poll or a notification of a commit; false when ctx ended.
func (r *Reader) pause(ctx context.Context, timer *time.Timer, poll time.Duration, committed <-chan struct{}) bool {
	timer.Reset(poll)
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
	case <-committed:
		timer.Stop()
	}
	return true
}

// checkpoint returns the stream sequence the checkpoint reached, 0 when it does not exist yet.
func (r *Reader) checkpoint(ctx context.Context, name string) (uint64, error) {
	rows, err := r.read(ctx, "checkpoint", checkpointByName, map[string]any{"name": name})
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	if seq := int64p(rows[0], "stream_seq"); seq != nil && *seq > 0 {
		return uint64(*seq), nil
	}
	return 0, nil
}
