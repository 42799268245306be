package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func message(user string, i int) *ingest.AddMessage {
	return &ingest.AddMessage{UserIdentifier: user, SessionID: "s", Role: "assistant", Content: fmt.Sprint("message ", i)}
}

// TestAsyncPublisher: fire-and-forget publishing returns the minted ids at once, never has
// more in flight than its bound, and Wait confirms every event stored.
func TestAsyncPublisher(t *testing.T) {
	t.Parallel()
	_, nc, js := testenv.NATS(t)
	const bound, n = 8, 300
	p, err := ingest.NewAsyncPublisher(nc, ingest.Settings{MultiTenant: true, Source: "/engram/client/test"}, ingest.WithMaxInFlight(bound))
	if err != nil {
		t.Fatal(err)
	}
	user := testenv.User(t, "async")
	var sent []ingest.Sent
	for i := range n {
		s, err := p.Publish(t.Context(), message(user, i))
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if s.EventID == "" || s.MessageID == "" || s.UserID != events.UserID(user) {
			t.Fatalf("publish %d: minted %+v", i, s)
		}
		if f := p.InFlight(); f > bound {
			t.Fatalf("%d in flight, bound %d", f, bound)
		}
		sent = append(sent, s)
	}
	if err := p.Wait(t.Context()); err != nil {
		t.Fatalf("wait: %v", err)
	}
	if p.InFlight() != 0 {
		t.Errorf("%d still in flight after Wait", p.InFlight())
	}
	if got := count(t, js); got != n {
		t.Fatalf("stream holds %d events, want %d", got, n)
	}
	// The stored events are the ones Publish answered, in order, with the agent's source.
	m := stored(t, js, 1)
	if m.Header.Get("ce-id") != sent[0].EventID || m.Header.Get("ce-source") != "/engram/client/test" {
		t.Errorf("first stored event headers %v, want id %s", m.Header, sent[0].EventID)
	}
	ev, err := events.Decode(m.Subject, m.Header, m.Data)
	if err != nil || ev.Data.(events.MessageAdded).MessageID != sent[0].MessageID {
		t.Errorf("first stored event %+v, %v", ev, err)
	}
}

// TestAsyncGuardrail: bad input and a write without a user in multi-tenant mode fail in
// Publish, before anything is sent.
func TestAsyncGuardrail(t *testing.T) {
	t.Parallel()
	_, nc, js := testenv.NATS(t)
	p, err := ingest.NewAsyncPublisher(nc, ingest.Settings{MultiTenant: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Publish(t.Context(), &ingest.AddMessage{SessionID: "s", Role: "user", Content: "hi"})
	var fe *ingest.FieldError
	if !errors.Is(err, ingest.ErrInvalid) || !errors.Is(err, events.ErrNoUser) || !errors.As(err, &fe) || fe.Field != "user_identifier" {
		t.Errorf("write without user: %v, want a FieldError on user_identifier wrapping ErrNoUser", err)
	}
	if _, err := p.Publish(t.Context(), &ingest.AddMessage{UserIdentifier: "a@x", SessionID: "s", Role: "boss", Content: "hi"}); !errors.Is(err, ingest.ErrInvalid) {
		t.Errorf("bad role: %v", err)
	}
	if err := p.Wait(t.Context()); err != nil {
		t.Errorf("wait: %v", err)
	}
	if got := count(t, js); got != 0 {
		t.Errorf("stream holds %d events, want 0", got)
	}
}

// TestAsyncReportsEveryFailure: when the stream refuses some events (it is full), Wait names
// every one of them, and publishing them again after the cause is fixed stores them.
func TestAsyncReportsEveryFailure(t *testing.T) {
	t.Parallel()
	_, nc, js := testenv.NATS(t)
	ctx := t.Context()
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 5, jetstream.DiscardNew
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("limit the stream: %v", err)
	}
	p, err := ingest.NewAsyncPublisher(nc, ingest.Settings{MultiTenant: true}, ingest.WithMaxInFlight(4))
	if err != nil {
		t.Fatal(err)
	}
	user := testenv.User(t, "full")
	var ids []string
	for i := range 12 {
		sent, err := p.Publish(ctx, message(user, i))
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		ids = append(ids, sent.EventID)
	}
	err = p.Wait(ctx)
	failures := ingest.Failures(err)
	if len(failures) != 7 {
		t.Fatalf("Wait reported %d failures, want 7: %v", len(failures), err)
	}
	var failedIDs []string
	for _, f := range failures {
		if !errors.Is(f, stream.ErrStreamFull) {
			t.Errorf("failure %v, want ErrStreamFull", f)
		}
		failedIDs = append(failedIDs, f.Event.ID)
	}
	if !slices.IsSorted(failedIDs) {
		t.Errorf("failures not in event id order: %v", failedIDs)
	}
	if got := count(t, js); got != 5 {
		t.Fatalf("stream holds %d, want 5", got)
	}
	// The stored events and the failed ones are exactly the published ones.
	storedIDs := make([]string, 0, 5)
	for seq := uint64(1); seq <= 5; seq++ {
		storedIDs = append(storedIDs, stored(t, js, seq).Header.Get("ce-id"))
	}
	all := slices.Concat(storedIDs, failedIDs)
	slices.Sort(all)
	if !slices.Equal(all, ids) {
		t.Errorf("stored %v + failed %v, want the published %v", storedIDs, failedIDs, ids)
	}
	if err := p.Wait(ctx); err != nil {
		t.Errorf("second Wait reported again: %v", err)
	}

	// Lift the limit and publish the failures again, unchanged: all stored, once.
	cfg.MaxMsgs = -1
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for _, f := range failures {
		if err := p.PublishEvent(ctx, f.Event); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("republish: %v", err)
	}
	if got := count(t, js); got != 12 {
		t.Errorf("stream holds %d, want 12", got)
	}
}

// TestAsyncWaitDeadline: a Wait whose context ends reports the events still in flight as
// unconfirmed and nothing else; they stay tracked and a later Wait settles them.
func TestAsyncWaitDeadline(t *testing.T) {
	t.Parallel()
	_, nc, js := testenv.NATS(t)
	p, err := ingest.NewAsyncPublisher(nc, ingest.Settings{MultiTenant: true})
	if err != nil {
		t.Fatal(err)
	}
	user := testenv.User(t, "deadline")
	for i := range 50 {
		if _, err := p.Publish(t.Context(), message(user, i)); err != nil {
			t.Fatal(err)
		}
	}
	done, cancel := context.WithCancel(t.Context())
	cancel()
	for _, f := range ingest.Failures(p.Wait(done)) {
		if !errors.Is(f, ingest.ErrUnconfirmed) {
			t.Errorf("failure %v, want only ErrUnconfirmed", f)
		}
	}
	ctx, stop := context.WithTimeout(t.Context(), 10*time.Second)
	defer stop()
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("wait: %v", err)
	}
	if got := count(t, js); got != 50 {
		t.Errorf("stream holds %d, want 50", got)
	}
}

// BenchmarkAsyncPublisher is the Go client's fire-and-forget publisher per event (build,
// validate, encode, PublishMsgAsync, the acknowledgement matched) next to raw PublishMsgAsync
// of the same events already encoded, both with 4096 in flight on an embedded JetStream (the
// bench's publish row measures the same against the stack's NATS):
// go test -run '^$' -bench BenchmarkAsyncPublisher -benchmem ./internal/ingest/
func BenchmarkAsyncPublisher(b *testing.B) {
	_, nc, _ := testenv.NATS(b)
	user := testenv.User(b, "bench-async")
	const inFlight = 4096
	cmds := make([]*ingest.AddMessage, 1000)
	for i := range cmds {
		cmds[i] = &ingest.AddMessage{UserIdentifier: user, SessionID: fmt.Sprint("s-", i%7), Role: "user",
			Content: fmt.Sprintf("message %d: find me a senior consultant team for a healthcare project in Berlin", i)}
	}
	b.Run("publisher", func(b *testing.B) {
		p, err := ingest.NewAsyncPublisher(nc, ingest.Settings{MultiTenant: true, Source: "/engram/client/bench"}, ingest.WithMaxInFlight(inFlight))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := p.Publish(b.Context(), cmds[i%len(cmds)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		if err := p.Wait(b.Context()); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("raw", func(b *testing.B) {
		ajs, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(inFlight))
		if err != nil {
			b.Fatal(err)
		}
		msgs := make([]*nats.Msg, b.N)
		for i := range msgs {
			ev, _, err := ingest.Build(cmds[i%len(cmds)], ingest.Settings{MultiTenant: true, Source: "/engram/client/bench"})
			if err == nil {
				msgs[i], err = events.Encode(ev)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for _, m := range msgs {
			if _, err := ajs.PublishMsgAsync(m); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-ajs.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("acknowledgements not all in within a minute")
		}
	})
}
