package projection

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/stream"
)

// Headers of a dead letter: the event's own headers (CloudEvents ce-*) are kept, JetStream's
// control headers (Nats-*) are dropped, and these say why and where from.
const (
	HeaderDlqReason   = "Engram-Dlq-Reason"     // a Reason, e.g. schema_invalid
	HeaderDlqError    = "Engram-Dlq-Error"      // the error message, one line
	HeaderDlqStream   = "Engram-Dlq-Stream"     // MEM
	HeaderDlqSeq      = "Engram-Dlq-Stream-Seq" // the event's stream sequence
	HeaderDlqSubject  = "Engram-Dlq-Subject"    // the event's stored subject
	HeaderDlqStoredAt = "Engram-Dlq-Stored-At"  // when the memory stream stored it (RFC 3339)
	HeaderDlqGroup    = "Engram-Dlq-Group"      // the projector group that dead-lettered it
	HeaderDlqMsgID    = "Engram-Dlq-Msg-Id"     // the event's Nats-Msg-Id, if it had one
	// HeaderDlqOmitted, set to "event", marks a dead letter that carries no copy of the event
	// (neither its data nor its headers) because the copy would not fit in a NATS message:
	// the event is the one at Engram-Dlq-Stream-Seq in MEM.
	HeaderDlqOmitted = "Engram-Dlq-Omitted"
)

// DeadLetterSubjectPrefix starts the subject of every dead letter: dlq.<stored subject>.
const DeadLetterSubjectPrefix = "dlq."

// maxErrorHeader bounds the Engram-Dlq-Error header.
const maxErrorHeader = 1024

// DeadLetter is a stored event the projector could not apply.
type DeadLetter struct {
	Subject  string // stored subject
	Sequence uint64 // stream sequence
	Stored   time.Time
	Header   nats.Header
	Data     []byte
	Reason   Reason
	Err      error
}

// DeadLetters copies events to the dead-letter stream MEM_DLQ.
type DeadLetters struct {
	js      jetstream.JetStream
	group   string
	timeout time.Duration
}

// NewDeadLetters returns a sender of dead letters marked with group; each publish waits at
// most timeout for JetStream's acknowledgement.
func NewDeadLetters(js jetstream.JetStream, group string, timeout time.Duration) *DeadLetters {
	return &DeadLetters{js: js, group: group, timeout: timeout}
}

// Send stores d on dlq.<stored subject>. Its message id is derived from the stream sequence, so
// sending one event again (a retried batch) within the duplicate window stores it once. A dead
// letter always fits: when the copy of the event with the headers added would exceed the
// connection's max payload, the letter is a reference to the event in MEM instead (see
// HeaderDlqOmitted), so one oversized event cannot stall its partition.
func (s *DeadLetters) Send(ctx context.Context, d DeadLetter) error {
	msg := DeadLetterMsg(d, s.group)
	if limit := s.js.Conn().MaxPayload(); limit > 0 && msgSize(msg) > limit {
		msg = referenceMsg(msg, d)
	}
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(stream.DeadLetterStream)); err != nil {
		return fmt.Errorf("%w: dead-letter stream sequence %d: %w", errNATS, d.Sequence, err)
	}
	return nil
}

// PurgeTenant removes every dead letter of user's tenant (stream.PurgeDeadLetters), within
// the send timeout.
func (s *DeadLetters) PurgeTenant(ctx context.Context, user string) error {
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if err := stream.PurgeDeadLetters(ctx, s.js, user); err != nil {
		return fmt.Errorf("%w: %w", errNATS, err)
	}
	return nil
}

// DeadLetterMsg builds the dead-letter message of d.
func DeadLetterMsg(d DeadLetter, group string) *nats.Msg {
	h := nats.Header{}
	for k, vs := range d.Header {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		h[k] = append([]string(nil), vs...)
	}
	if id := d.Header.Get(nats.MsgIdHdr); id != "" {
		h.Set(HeaderDlqMsgID, id)
	}
	h.Set(HeaderDlqReason, string(d.Reason))
	if d.Err != nil {
		h.Set(HeaderDlqError, oneLine(d.Err.Error(), maxErrorHeader))
	}
	h.Set(HeaderDlqStream, stream.MemoryStream)
	h.Set(HeaderDlqSeq, strconv.FormatUint(d.Sequence, 10))
	h.Set(HeaderDlqSubject, d.Subject)
	if !d.Stored.IsZero() {
		h.Set(HeaderDlqStoredAt, d.Stored.UTC().Format(time.RFC3339Nano))
	}
	h.Set(HeaderDlqGroup, group)
	h.Set(nats.MsgIdHdr, stream.MemoryStream+"-"+strconv.FormatUint(d.Sequence, 10))
	return &nats.Msg{Subject: DeadLetterSubjectPrefix + d.Subject, Header: h, Data: d.Data}
}

// msgSize is what a message counts against NATS's max payload: its data and its encoded headers.
func msgSize(m *nats.Msg) int64 {
	n := len(m.Data) + len("NATS/1.0\r\n\r\n")
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + len(": \r\n")
		}
	}
	return int64(n)
}

// referenceMsg is the dead letter of d without the copy of the event: only the Engram-Dlq-*
// headers (the error clipped shorter), no data.
func referenceMsg(full *nats.Msg, d DeadLetter) *nats.Msg {
	h := nats.Header{}
	for k, vs := range full.Header {
		if strings.HasPrefix(k, "Engram-Dlq-") || k == nats.MsgIdHdr {
			h[k] = vs
		}
	}
	if d.Err != nil {
		h.Set(HeaderDlqError, oneLine(d.Err.Error(), 256))
	}
	h.Set(HeaderDlqOmitted, "event")
	return &nats.Msg{Subject: full.Subject, Header: h}
}

// oneLine makes s fit a header: control characters become spaces, at most n bytes of it.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return s
}
