// Package audit reads a user's history from the log itself — the stream, not the graph — so an
// auditor can see every change of a user's preferences with its time, source and actor, and
// whether the ingestor vouched for them or a publisher over NATS only claimed them.
package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	datakeys "github.com/engram-memory/engram/internal/keys"
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
	// Vouch says who stands for Source, Actor and the rest of the event: VouchIngestor,
	// VouchClaimed or VouchUnchecked.
	Vouch string `json:"vouch"`
	Data  any    `json:"data,omitempty"`
	Error string `json:"error,omitempty"` // set when the stored message does not decode
	// Fate is what became of the event (FateApplied, FateDeadLettered…), set by MarkFates;
	// Reason and ReasonError are a dead letter's reason and error message.
	Fate        string `json:"fate,omitempty"`
	Reason      string `json:"reason,omitempty"`
	ReasonError string `json:"reason_error,omitempty"`
}

// What an Entry's Vouch says.
const (
	// VouchIngestor: the event carries a vouch (stream.VouchHeader) that verifies with one of
	// the ingestors' keys, so the ingestor wrote it as shown: its actor is the principal the
	// ingestor authenticated.
	VouchIngestor = "ingestor"
	// VouchClaimed: no valid vouch. Everything the event says of itself — source, actor — is
	// what its publisher claimed: an agent over NATS, or an operator's tool.
	VouchClaimed = "claimed"
	// VouchUnchecked: the audit was read without the ingestors' keys (Read), so nothing was
	// verified.
	VouchUnchecked = "unchecked"
)

// PreferenceKinds are the kinds that make up a user's preference history.
var PreferenceKinds = []events.Kind{events.KindPreferenceAdded, events.KindPreferenceSuperseded, events.KindUserErased}

// Read returns the user's stored events in stream order, only those of kinds when given.
// Messages that do not decode are returned with Error set rather than hidden: an audit shows
// everything the log holds for the user. Nothing is verified: every entry's Vouch is
// VouchUnchecked (ReadVerified checks them).
func Read(ctx context.Context, js jetstream.JetStream, user string, kinds ...events.Kind) ([]Entry, error) {
	return read(ctx, js, nil, user, kinds)
}

// ReadVerified is Read, checking each event's vouch with the ingestors' keys: Vouch is
// VouchIngestor or VouchClaimed.
func ReadVerified(ctx context.Context, js jetstream.JetStream, keys stream.Keys, user string, kinds ...events.Kind) ([]Entry, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("audit %s: %w", user, stream.ErrNoKey)
	}
	return read(ctx, js, keys, user, kinds)
}

func read(ctx context.Context, js jetstream.JetStream, keys stream.Keys, user string, kinds []events.Kind) ([]Entry, error) {
	filter, err := events.TenantSubjects(user)
	if err != nil {
		return nil, err
	}
	want := map[events.Kind]bool{}
	for _, k := range kinds {
		want[k] = true
	}
	codec := events.Codec{Keys: datakeys.Default(js)}
	var out []Entry
	err = stream.Each(ctx, js, stream.MemoryStream, filter, false, func(msg jetstream.Msg) error {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		e := Entry{Sequence: md.Sequence.Stream, Recorded: md.Timestamp.UTC(), Vouch: VouchUnchecked}
		if keys != nil {
			e.Vouch = VouchClaimed
			if keys.Verify(msg.Subject(), msg.Headers(), msg.Data()) {
				e.Vouch = VouchIngestor
			}
		}
		// The vouch covers the event as stored (sealed); the entry shows it opened.
		ev, derr := codec.Decode(ctx, msg.Subject(), msg.Headers(), msg.Data())
		if derr != nil {
			e.Error = derr.Error()
			e.ID = msg.Headers().Get("ce-id")
			out = append(out, e)
			return nil
		}
		if len(want) > 0 && !want[ev.Kind] {
			return nil
		}
		e.Event, e.Kind, e.ID, e.Time, e.Source, e.Actor, e.Data = ev, ev.Kind, ev.ID, ev.Time, ev.Source, ev.Actor, ev.Data
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", user, err)
	}
	return out, nil
}
