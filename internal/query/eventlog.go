package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/stream"
)

// The log side of a fate read (fate.go): an event of a tenant in the memory stream, and its
// dead letter in MEM_DLQ. Everything goes through JetStream's message-get APIs — direct get
// on MEM (batched, by start time and subject filter), the stream leader's message get on
// MEM_DLQ (it allows no direct get) — and never through a consumer, so the query service's
// NATS user needs no consumer permission and leaves no consumer behind
// (deploy/nats/accounts.conf).

// The Engram-Dlq-* headers a fate read looks at. They are the projector's
// (internal/projection/deadletter.go; a test holds them equal), repeated here because the
// query service depends on the contract of the stream, not on the projector.
const (
	dlqReasonHeader = "Engram-Dlq-Reason"
	dlqErrorHeader  = "Engram-Dlq-Error"
	dlqStreamHeader = "Engram-Dlq-Stream"
	dlqSeqHeader    = "Engram-Dlq-Stream-Seq"
	dlqGroupHeader  = "Engram-Dlq-Group"
	// dlqSubjectPrefix starts a dead letter's subject: dlq.<the event's stored subject>.
	dlqSubjectPrefix = "dlq."
)

// JetStream's API subjects used here.
const (
	directGetAPI = "$JS.API.DIRECT.GET."
	msgGetAPI    = "$JS.API.STREAM.MSG.GET."
)

// What one batch of a search asks for: enough events that a search is a few round trips, few
// enough bytes that one answer stays small (events are at most 1 MiB each).
const (
	searchBatch      = 256
	searchBatchBytes = 4 << 20
)

// StoredEvent is a message of the memory stream as a fate read sees it.
type StoredEvent struct {
	Subject  string // the stored subject, mem.<tenant-token>.<kind>.<partition>
	Sequence uint64
	Stored   time.Time
	Header   nats.Header
}

// DeadLetterInfo is what a dead letter says about why its event was not applied.
type DeadLetterInfo struct {
	Sequence uint64 // in MEM_DLQ
	Stored   time.Time
	Reason   string // Engram-Dlq-Reason, e.g. missing_reference
	Error    string // Engram-Dlq-Error
}

// EventLog finds the events and dead letters a fate read needs.
type EventLog interface {
	// EventAt returns the memory stream's message at seq, nil when there is none (never
	// stored, purged by an erasure, or beyond the stream's end).
	EventAt(ctx context.Context, seq uint64) (*StoredEvent, error)
	// FindEvent returns the first message on filter stored from from to until whose ce-id is
	// eventID, looking at most at most messages; nil when none is there, with limited set when
	// the search stopped at most before until.
	FindEvent(ctx context.Context, filter, eventID string, from, until time.Time, most int) (ev *StoredEvent, limited bool, err error)
	// DeadLetter returns group's dead letter of the event at seq stored on subject, looking at
	// the letters on dlq.<subject> stored since since, at most most of them; nil when there is
	// none.
	DeadLetter(ctx context.Context, subject string, seq uint64, since time.Time, group string, most int) (*DeadLetterInfo, error)
}

// errTooManyLetters: a fate read gave up on the dead letters of an event's subject before
// finding or excluding its own (more than the read looks at were stored since the event).
var errTooManyLetters = errors.New("too many dead letters to search")

// EventAt implements EventLog.
func (l *StreamLog) EventAt(ctx context.Context, seq uint64) (*StoredEvent, error) {
	msg, err := l.msgAt(ctx, seq)
	if msg == nil || err != nil {
		return nil, err
	}
	e := storedEvent(msg)
	return &e, nil
}

// msgAt is the memory stream's message at seq; nil, nil when there is none. Errors match
// ErrLogUnavailable.
func (l *StreamLog) msgAt(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	s, err := l.stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLogUnavailable, err)
	}
	msg, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: event at sequence %d: %w", ErrLogUnavailable, seq, err)
	}
	return msg, nil
}

// storedEvent is the envelope of a stored message.
func storedEvent(msg *jetstream.RawStreamMsg) StoredEvent {
	return StoredEvent{Subject: msg.Subject, Sequence: msg.Sequence, Stored: msg.Time.UTC(), Header: msg.Header}
}

// directRequest is JetStream's message-get request (nats-server's JSApiMsgGetRequest).
type directRequest struct {
	Seq       uint64     `json:"seq,omitempty"`
	NextFor   string     `json:"next_by_subj,omitempty"`
	StartTime *time.Time `json:"start_time,omitempty"`
	Batch     int        `json:"batch,omitempty"`
	MaxBytes  int        `json:"max_bytes,omitempty"`
}

// FindEvent implements EventLog with batched direct gets: the first from the stream's first
// message stored at or after from, the next ones from the sequence after the last seen.
func (l *StreamLog) FindEvent(ctx context.Context, filter, eventID string, from, until time.Time, most int) (*StoredEvent, bool, error) {
	req := directRequest{StartTime: &from, NextFor: filter}
	seen := 0
	for seen < most {
		req.Batch, req.MaxBytes = min(searchBatch, most-seen), searchBatchBytes
		msgs, err := l.directBatch(ctx, stream.MemoryStream, req)
		if err != nil {
			return nil, false, err
		}
		if len(msgs) == 0 {
			return nil, false, nil
		}
		for _, ev := range msgs {
			if ev.Stored.After(until) {
				return nil, false, nil
			}
			if hasEventID(ev.Header, eventID) {
				return ev, false, nil
			}
			seen++
			req = directRequest{Seq: ev.Sequence + 1, NextFor: filter}
		}
	}
	return nil, true, nil
}

// directBatch sends one batched direct get and collects its answer: the messages, then an
// end-of-batch status (204), or a 404 when nothing matched.
func (l *StreamLog) directBatch(ctx context.Context, streamName string, req directRequest) ([]*StoredEvent, error) {
	nc := l.js.Conn()
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("%w: direct get from %s: %w", ErrLogUnavailable, streamName, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishMsg(&nats.Msg{Subject: directGetAPI + streamName, Reply: inbox, Data: body}); err != nil {
		return nil, fmt.Errorf("%w: direct get from %s: %w", ErrLogUnavailable, streamName, err)
	}
	var out []*StoredEvent
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: direct get from %s: %w", ErrLogUnavailable, streamName, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204", "404":
			return out, nil
		default:
			return nil, fmt.Errorf("%w: direct get from %s: status %s %s", ErrLogUnavailable, streamName, status, m.Header.Get("Description"))
		}
		ev, err := directEvent(m)
		if err != nil {
			return nil, fmt.Errorf("direct get from %s: %w", streamName, err)
		}
		out = append(out, ev)
	}
}

// directEvent reads a direct get's answer: JetStream adds the stored subject, sequence and
// time as Nats-* headers.
func directEvent(m *nats.Msg) (*StoredEvent, error) {
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("answer without a valid %s header: %w", jetstream.SequenceHeader, err)
	}
	stored, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("answer without a valid %s header: %w", jetstream.TimeStampHeaer, err)
	}
	return &StoredEvent{Subject: m.Header.Get(jetstream.SubjectHeader), Sequence: seq, Stored: stored.UTC(), Header: m.Header}, nil
}

// hasEventID reports whether header names eventID as the CloudEvents id. NATS headers are
// case-sensitive; a ce-id in another case is still the event's id to the CloudEvents binding.
func hasEventID(h nats.Header, eventID string) bool {
	for k, vs := range h {
		if strings.EqualFold(k, "ce-id") {
			for _, v := range vs {
				if v == eventID {
					return true
				}
			}
		}
	}
	return false
}

// msgGetResponse is the stream leader's answer to a message get.
type msgGetResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
	Message *struct {
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs"`
		Time     time.Time `json:"time"`
	} `json:"message"`
}

// DeadLetter implements EventLog with the stream leader's message get on MEM_DLQ, one letter
// per request: the first letter on dlq.<subject> stored at or after since, then the next.
// Only the dead letters of the same tenant and kind are on that subject, and only those
// stored after the event can be its.
func (l *StreamLog) DeadLetter(ctx context.Context, subject string, seq uint64, since time.Time, group string, most int) (*DeadLetterInfo, error) {
	nc := l.js.Conn()
	filter := dlqSubjectPrefix + subject
	want := strconv.FormatUint(seq, 10)
	req := directRequest{StartTime: &since, NextFor: filter}
	for range most {
		body, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		reply, err := nc.RequestWithContext(ctx, msgGetAPI+stream.DeadLetterStream, body)
		if err != nil {
			return nil, fmt.Errorf("%w: dead letters on %s: %w", ErrLogUnavailable, filter, err)
		}
		var resp msgGetResponse
		if err := json.Unmarshal(reply.Data, &resp); err != nil {
			return nil, fmt.Errorf("dead letters on %s: answer not understood: %w", filter, err)
		}
		if resp.Error != nil {
			if resp.Error.Code == 404 {
				return nil, nil
			}
			return nil, fmt.Errorf("%w: dead letters on %s: %d %s", ErrLogUnavailable, filter, resp.Error.Code, resp.Error.Description)
		}
		if resp.Message == nil {
			return nil, fmt.Errorf("dead letters on %s: answer without a message", filter)
		}
		h, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err != nil {
			return nil, fmt.Errorf("dead letter %d: headers: %w", resp.Message.Sequence, err)
		}
		if h.Get(dlqSeqHeader) == want && h.Get(dlqStreamHeader) == stream.MemoryStream && h.Get(dlqGroupHeader) == group {
			return &DeadLetterInfo{Sequence: resp.Message.Sequence, Stored: resp.Message.Time.UTC(),
				Reason: h.Get(dlqReasonHeader), Error: h.Get(dlqErrorHeader)}, nil
		}
		req = directRequest{Seq: resp.Message.Sequence + 1, NextFor: filter}
	}
	return nil, fmt.Errorf("%w: more than %d on %s since %s", errTooManyLetters, most, filter, since.Format(time.RFC3339))
}
