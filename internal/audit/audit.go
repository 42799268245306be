// Package audit reads a user's history from the log itself — the stream, not the graph — so an
// auditor can see every change of a user's preferences with its time, source and actor.
package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

// Entry is one stored event of the user.
type Entry struct {
	Sequence uint64        `json:"sequence"`
	Recorded time.Time     `json:"recorded_at"` // when JetStream stored it (transaction time)
	Event    *events.Event `json:"-"`
	Kind     events.Kind   `json:"kind"`
	ID       string        `json:"event_id"`
	Time     time.Time     `json:"time"` // the writer's event time
	Source   string        `json:"source"`
	Actor    string        `json:"actor,omitempty"`
	Data     any           `json:"data,omitempty"`
	Error    string        `json:"error,omitempty"` // set when the stored message does not decode
}

// PreferenceKinds are the kinds that make up a user's preference history.
var PreferenceKinds = []events.Kind{events.KindPreferenceAdded, events.KindPreferenceSuperseded, events.KindUserErased}

// Read returns the user's stored events in stream order, only those of kinds when given.
// Messages that do not decode are returned with Error set rather than hidden: an audit shows
// everything the log holds for the user.
func Read(ctx context.Context, js jetstream.JetStream, user string, kinds ...events.Kind) ([]Entry, error) {
	filter, err := events.TenantSubjects(user)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", user, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", user, err)
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	if total == 0 {
		return nil, nil
	}
	cons, err := js.OrderedConsumer(ctx, stream.MemoryStream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{filter},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 10 * time.Second, // removed soon after the audit, not in five minutes
	})
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", user, err)
	}
	want := map[events.Kind]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	var out []Entry
	for seen := uint64(0); seen < total; {
		batch, err := cons.Fetch(int(min(500, total-seen)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("audit %s: %w", user, err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			seen++
			md, err := msg.Metadata()
			if err != nil {
				return nil, err
			}
			e := Entry{Sequence: md.Sequence.Stream, Recorded: md.Timestamp.UTC()}
			ev, derr := events.Decode(msg.Subject(), msg.Headers(), msg.Data())
			if derr != nil {
				e.Error = derr.Error()
				e.ID = msg.Headers().Get("ce-id")
				out = append(out, e)
				continue
			}
			if len(want) > 0 && !want[ev.Kind] {
				continue
			}
			e.Event, e.Kind, e.ID, e.Time, e.Source, e.Actor, e.Data = ev, ev.Kind, ev.ID, ev.Time, ev.Source, ev.Actor, ev.Data
			out = append(out, e)
			if md.NumPending == 0 {
				seen = total
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("audit %s: %w", user, err)
		}
		if got == 0 {
			break
		}
	}
	return out, nil
}
