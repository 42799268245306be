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
