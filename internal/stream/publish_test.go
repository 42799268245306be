package stream_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func upsert(user string) *events.Event {
	return &events.Event{ID: events.NewID(), Source: "/t", User: user, Time: time.Now(),
		Data: events.UserUpserted{UserID: events.UserID(user), Identifier: user}}
}

func TestPublishDeduplicatesByEventID(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	pub := stream.NewPublisher(js, 5*time.Second)
	ev := upsert("sara@omg.com")
	first, err := pub.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	again, err := pub.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Sequence != first.Sequence {
		t.Fatalf("second publish %+v, first %+v: want a duplicate of the same sequence", again, first)
	}
	info, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	t.Run("stream full", func(t *testing.T) {
		t.Parallel()
		_, _, js := testenv.NATS(t)
		s, err := js.Stream(t.Context(), stream.MemoryStream)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.MaxMsgs, cfg.Discard = 1, jetstream.DiscardNew
		if _, err := js.UpdateStream(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		pub := stream.NewPublisher(js, 5*time.Second)
		if _, err := pub.Publish(t.Context(), upsert("a@x.com")); err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(t.Context(), upsert("b@x.com")); !errors.Is(err, stream.ErrStreamFull) {
			t.Fatalf("error %v, want ErrStreamFull", err)
		}
	})
	t.Run("server down", func(t *testing.T) {
		t.Parallel()
		srv, _, js := testenv.NATS(t)
		srv.Shutdown()
		pub := stream.NewPublisher(js, time.Second)
		if _, err := pub.Publish(t.Context(), upsert("a@x.com")); !errors.Is(err, stream.ErrUnavailable) && !errors.Is(err, stream.ErrTimeout) {
			t.Fatalf("error %v, want ErrUnavailable or ErrTimeout", err)
		}
	})
	t.Run("no stream", func(t *testing.T) {
		t.Parallel()
		_, _, js := testenv.NATS(t)
		if err := js.DeleteStream(t.Context(), stream.MemoryStream); err != nil {
			t.Fatal(err)
		}
		pub := stream.NewPublisher(js, time.Second)
		if _, err := pub.Publish(t.Context(), upsert("a@x.com")); !errors.Is(err, stream.ErrUnavailable) {
			t.Fatalf("error %v, want ErrUnavailable", err)
		}
	})
}

// TestPublishRidesThroughLeaderElection: while no server answers for the stream (here: the
// stream is not there, as a clustered stream is not between its leader's loss and the next
// election), a publisher WithLeaderWait tries again and stores the event once the stream
// answers, instead of refusing it; without it the publish is refused at once, and with it
// the refusal comes when the wait is over.
func TestPublishRidesThroughLeaderElection(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	ctx := t.Context()
	if err := js.DeleteStream(ctx, stream.MemoryStream); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.NewPublisher(js, time.Second).Publish(ctx, prefEvent("sara@omg.com")); !errors.Is(err, stream.ErrUnavailable) {
		t.Fatalf("without a leader wait: %v, want ErrUnavailable at once", err)
	}
	start := time.Now()
	if _, err := stream.NewPublisher(js, 200*time.Millisecond, stream.WithLeaderWait(300*time.Millisecond)).Publish(ctx, prefEvent("sara@omg.com")); !errors.Is(err, stream.ErrUnavailable) {
		t.Fatalf("the wait over: %v, want ErrUnavailable", err)
	} else if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("refused after %v, before the 300ms wait", d)
	}

	pub := stream.NewPublisher(js, time.Second, stream.WithLeaderWait(10*time.Second))
	type result struct {
		st  stream.Stored
		err error
	}
	done := make(chan result, 1)
	ev := prefEvent("sara@omg.com")
	go func() {
		st, err := pub.Publish(ctx, ev)
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("published without a stream: %+v, %v", r.st, r.err)
	case <-time.After(700 * time.Millisecond):
	}
	if err := stream.Ensure(ctx, js, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.st.Sequence == 0 || r.st.Duplicate {
		t.Fatalf("after the stream came back: %+v, %v; want the event stored", r.st, r.err)
	}
	if n := streamMsgs(t, js); n != 1 {
		t.Errorf("the stream holds %d events, want 1", n)
	}

	// An atomic batch too: its first message finds no responders, and nothing is staged.
	if err := js.DeleteStream(ctx, stream.MemoryStream); err != nil {
		t.Fatal(err)
	}
	batchDone := make(chan error, 1)
	var stored []stream.Stored
	go func() {
		var err error
		stored, err = pub.PublishBatch(ctx, []*events.Event{prefEvent("sara@omg.com"), prefEvent("liam@omg.com")})
		batchDone <- err
	}()
	select {
	case err := <-batchDone:
		t.Fatalf("batch published without a stream: %v", err)
	case <-time.After(700 * time.Millisecond):
	}
	if err := stream.Ensure(ctx, js, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := <-batchDone; err != nil || len(stored) != 2 || stored[1].Sequence != stored[0].Sequence+1 {
		t.Fatalf("batch after the stream came back: %+v, %v", stored, err)
	}
	if n := streamMsgs(t, js); n != 2 {
		t.Errorf("the stream holds %d events after the batch, want 2", n)
	}
}
