package stream

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

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
)

// A tenant is erased from its last user_erased tombstone until the first user_recreated
// stored after it: the writes stored in between are refused by the ingestor (410) and dropped
// by the projector, so that a writer still at work cannot bring the user back by accident
// (docs/replay.md, "Writes after the erasure"). Everything here reads that from the log
// itself, with JetStream's direct get on the tenant's two subjects. The ingestor remembers
// the answers for users not erased, and stores each write on the condition that the user's
// erasure subject is unchanged (internal/ingest/erasurecache.go): an erasure another ingestor
// stored a moment ago must already count.

// directGetAPI is the subject of MEM's direct get: the request names what it wants in its
// body, or, with the stored subject appended, asks for that subject's last message.
const directGetAPI = "$JS.API.DIRECT.GET." + MemoryStream

// Erasure is what the log holds of a tenant's erasures: its last tombstone and its last
// re-creation (0 when there is none).
type Erasure struct {
	Tombstone uint64
	ErasedAt  time.Time // when the last tombstone was stored
	// Recreation is the sequence of the last user_recreated, RecreationID its event id.
	Recreation   uint64
	RecreationID string
}

// Erased reports whether writes for the tenant are refused now: it has a tombstone and no
// re-creation after it.
func (e Erasure) Erased() bool { return e.Tombstone > 0 && e.Recreation < e.Tombstone }

// StoredSubject is the stored subject of user's events of kind k: mem.<token>.<kind>.<partition>.
// A tenant's events all lie in one partition, so this is the one subject the last of them is on.
func StoredSubject(user string, k events.Kind) (string, error) {
	token, err := events.TenantToken(user)
	if err != nil {
		return "", err
	}
	return storedSubject(token, k, strconv.Itoa(events.Partition(token, natsdeploy.Partitions))), nil
}

func storedSubject(token string, k events.Kind, partition string) string {
	return events.SubjectRoot + "." + token + "." + string(k) + "." + partition
}

// LastErasure reads user's Erasure with two last-by-subject direct gets
// ($JS.API.DIRECT.GET.MEM.mem.<token>.user_erased.<p> and ...user_recreated.<p>), sent at
// once. Those two subject patterns are all the ingestor's NATS user may read
// (deploy/nats/accounts.conf).
func LastErasure(ctx context.Context, nc *nats.Conn, user string) (Erasure, error) {
	erasedSubj, err := StoredSubject(user, events.KindUserErased)
	if err != nil {
		return Erasure{}, err
	}
	recreatedSubj, err := StoredSubject(user, events.KindUserRecreated)
	if err != nil {
		return Erasure{}, err
	}
	type answer struct {
		m   *stored
		err error
	}
	rec := make(chan answer, 1)
	go func() {
		m, err := lastBySubject(ctx, nc, recreatedSubj)
		rec <- answer{m, err}
	}()
	tomb, err := lastBySubject(ctx, nc, erasedSubj)
	r := <-rec
	if err = errors.Join(err, r.err); err != nil {
		return Erasure{}, fmt.Errorf("read the user's erasures: %w", err)
	}
	var e Erasure
	if tomb != nil {
		e.Tombstone, e.ErasedAt = tomb.seq, tomb.time
	}
	if r.m != nil {
		e.Recreation, e.RecreationID = r.m.seq, r.m.header.Get("ce-id")
	}
	return e, nil
}

// Erasure is LastErasure on the publisher's connection.
func (p *Publisher) Erasure(ctx context.Context, user string) (Erasure, error) {
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	return LastErasure(ctx, p.js.Conn(), user)
}

// ErasedAt reports whether the event stored at seq on subject (mem.<token>.<kind>.<p>) lies
// in an erased stretch of its tenant: after the tenant's last tombstone, and before the first
// re-creation that follows it (or with none). An event before the last tombstone is not: the
// tombstone deletes what it did, and the erasure purges it from the log. It asks with direct
// gets whose request is in the body ($JS.API.DIRECT.GET.MEM), the only form the projector's
// and the query service's NATS users may send: one for a tenant never erased, two or three
// otherwise. Tombstone is the last tombstone's sequence (0: none).
func ErasedAt(ctx context.Context, nc *nats.Conn, subject string, seq uint64) (erased bool, tombstone uint64, err error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != events.SubjectRoot {
		return false, 0, fmt.Errorf("erasure check: %q is not a stored event subject", subject)
	}
	token, partition := parts[1], parts[3]
	erasedSubj := storedSubject(token, events.KindUserErased, partition)
	recreatedSubj := storedSubject(token, events.KindUserRecreated, partition)
	tomb, err := directGet(ctx, nc, directRequest{LastFor: erasedSubj})
	if err != nil || tomb == nil || tomb.seq >= seq {
		return false, seqOf(tomb), err
	}
	last, err := directGet(ctx, nc, directRequest{LastFor: recreatedSubj})
	switch {
	case err != nil:
		return false, tomb.seq, err
	case last == nil || last.seq < tomb.seq:
		return true, tomb.seq, nil
	case last.seq < seq:
		return false, tomb.seq, nil
	}
	// A re-creation follows the event; is there an earlier one between tombstone and event?
	first, err := directGet(ctx, nc, directRequest{Seq: tomb.seq + 1, NextFor: recreatedSubj})
	if err != nil {
		return false, tomb.seq, err
	}
	return first == nil || first.seq > seq, tomb.seq, nil
}

// PurgeRefused removes from the log the tenant's events the projector dropped as written
// after its erasure: everything of user's subjects stored before the re-creation at sequence
// recreation, but the tombstone (the proof of the erasure) and the re-creations. Below the
// tombstone the erasure purged already, so what goes is what lies between the two. One purge
// per kind, because a purge takes one filter.
func PurgeRefused(ctx context.Context, js jetstream.JetStream, user string, recreation uint64) error {
	if recreation == 0 {
		return errors.New("purge refused writes: the re-creation's sequence is required")
	}
	token, err := events.TenantToken(user)
	if err != nil {
		return err
	}
	for _, k := range events.Kinds {
		if k == events.KindUserErased || k == events.KindUserRecreated {
			continue
		}
		if err := purge(ctx, js, MemoryStream, events.SubjectRoot+"."+token+"."+string(k)+".>", recreation); err != nil {
			// Not the filter: it names the tenant, and this error reaches the ingestor's log.
			return fmt.Errorf("purge the tenant's %s events below %d: %w", k, recreation, err)
		}
	}
	return nil
}

// PurgeRefused is stream.PurgeRefused on the publisher's JetStream.
func (p *Publisher) PurgeRefused(ctx context.Context, user string, recreation uint64) error {
	return PurgeRefused(ctx, p.js, user, recreation)
}

func seqOf(m *stored) uint64 {
	if m == nil {
		return 0
	}
	return m.seq
}

// stored is a direct get's answer: where the message is, and its headers.
type stored struct {
	seq    uint64
	time   time.Time
	header nats.Header
}

// directRequest is the body of a direct get (nats-server's JSApiMsgGetRequest).
type directRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

// directGet sends a direct get with its request in the body; nil when no message matches.
func directGet(ctx context.Context, nc *nats.Conn, req directRequest) (*stored, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	m, err := nc.RequestWithContext(ctx, directGetAPI, body)
	if err != nil {
		return nil, classify(err)
	}
	return directAnswer(m)
}

// lastBySubject sends the last-by-subject direct get of subject; nil when the subject holds
// no message.
func lastBySubject(ctx context.Context, nc *nats.Conn, subject string) (*stored, error) {
	m, err := nc.RequestWithContext(ctx, directGetAPI+"."+subject, nil)
	if err != nil {
		return nil, classify(err)
	}
	return directAnswer(m)
}

func directAnswer(m *nats.Msg) (*stored, error) {
	switch status := m.Header.Get("Status"); status {
	case "":
	case "404":
		return nil, nil
	default:
		return nil, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct get: answer without a valid %s header: %w", jetstream.SequenceHeader, err)
	}
	at, err := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("direct get: answer without a valid %s header: %w", jetstream.TimeStampHeaer, err)
	}
	return &stored{seq: seq, time: at.UTC(), header: m.Header}, nil
}

// FirstRecreation is the sequence of user's first re-creation stored after the sequence
// after, 0 when there is none: with the last tombstone, it bounds the writes refused since
// the erasure.
func FirstRecreation(ctx context.Context, nc *nats.Conn, user string, after uint64) (uint64, error) {
	subj, err := StoredSubject(user, events.KindUserRecreated)
	if err != nil {
		return 0, err
	}
	m, err := directGet(ctx, nc, directRequest{Seq: after + 1, NextFor: subj})
	if err != nil {
		return 0, fmt.Errorf("read the user's re-creations: %w", err)
	}
	return seqOf(m), nil
}
