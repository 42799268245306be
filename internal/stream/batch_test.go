package stream_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func prefEvent(user string) *events.Event {
	return &events.Event{
		ID: events.NewID(), Source: "/engram/test", User: user, Time: time.Now().UTC(),
		Data: events.PreferenceAdded{PreferenceID: events.NewID(), Category: "c", Preference: "p"},
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestPublishBatchAtomic checks what the write path relies on: an atomic batch goes through
// the stream's subject transform, keeps each event's tenant-scoped Nats-Msg-Id for later deduplication, and
// is stored with consecutive sequences.
func TestPublishBatchAtomic(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	pub := stream.NewPublisher(js, 5*time.Second)
	users := []string{"sara@omg.com", "liam@omg.com", "sara@omg.com"}
	var evs []*events.Event
	for _, u := range users {
		evs = append(evs, prefEvent(u))
	}
	stored, err := pub.PublishBatch(t.Context(), evs)
	if err != nil {
		t.Fatalf("publish batch: %v", err)
	}
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range stored {
		if st.EventID != evs[i].ID {
			t.Errorf("stored[%d] event %s, want %s", i, st.EventID, evs[i].ID)
		}
		if i > 0 && st.Sequence != stored[i-1].Sequence+1 {
			t.Errorf("sequences %d then %d, want consecutive", stored[i-1].Sequence, st.Sequence)
		}
		raw, err := s.GetMsg(t.Context(), st.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := events.TenantToken(users[i])
		want := "mem." + tok + ".preference_added." + strconv.Itoa(events.Partition(tok, natsdeploy.Partitions))
		if raw.Subject != want {
			t.Errorf("stored subject %q, want %q", raw.Subject, want)
		}
		if got, want := raw.Header.Get(nats.MsgIdHdr), events.MsgID(tok, evs[i].ID); got != want {
			t.Errorf("Nats-Msg-Id %q, want %q", got, want)
		}
		if _, err := events.Decode(raw.Subject, raw.Header, raw.Data); err != nil {
			t.Errorf("decode stored batch event: %v", err)
		}
	}
	// An event of the batch published again alone is a duplicate of the batch's copy.
	again, err := pub.Publish(t.Context(), evs[1])
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Sequence != stored[1].Sequence {
		t.Errorf("republished batch event: %+v, want duplicate of sequence %d", again, stored[1].Sequence)
	}
	if n := streamMsgs(t, js); n != 3 {
		t.Errorf("stream holds %d messages, want 3", n)
	}
}

// TestPublishBatchRefusedWhole: whatever the server refuses in a batch, it stores none of it.
func TestPublishBatchRefusedWhole(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	pub := stream.NewPublisher(js, 5*time.Second)
	first := prefEvent("sara@omg.com")
	if _, err := pub.Publish(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		batch   func() []*events.Event
		wantErr error
	}{
		{"holds a stored event", func() []*events.Event {
			return []*events.Event{prefEvent("a@x"), first, prefEvent("b@x")}
		}, stream.ErrDuplicateInBatch},
		{"holds one event twice", func() []*events.Event {
			e := prefEvent("a@x")
			return []*events.Event{e, prefEvent("b@x"), e}
		}, stream.ErrDuplicateInBatch},
	}
	for _, tt := range tests {
		_, err := pub.PublishBatch(t.Context(), tt.batch())
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	// A batch cut short by the client (a message over the server's max_payload) and a batch
	// whose middle message the stream refuses at commit (a TTL on a stream without TTLs).
	for name, spoil := range map[string]func(m *nats.Msg){
		"cut short":         func(m *nats.Msg) { m.Data = []byte(strings.Repeat("x", 1<<20)) },
		"refused at commit": func(m *nats.Msg) { m.Header.Set(jetstream.MsgTTLHeader, "1m") },
	} {
		msgs := make([]*nats.Msg, 3)
		ids := make([]string, 3)
		for i := range msgs {
			e := prefEvent("c@x")
			m, err := events.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			msgs[i], ids[i] = m, e.ID
		}
		spoil(msgs[1])
		if _, err := pub.PublishBatchMsgs(t.Context(), ids, msgs); !errors.Is(err, stream.ErrRejected) {
			t.Errorf("%s: error %v, want %v", name, err, stream.ErrRejected)
		}
	}
	if n := streamMsgs(t, js); n != 1 {
		t.Errorf("stream holds %d messages after refused batches, want 1", n)
	}
}

// BenchmarkBatchPublish is what one batch of 100 events costs JetStream by itself, on the
// embedded server the dev stack and the bench run (one replica, file storage), per event:
// an atomic batch (PublishBatchMsgs, what POST /v1/batch stores with) against the same 100
// encoded events published asynchronously and all acknowledged (not all or nothing). On one
// replica nats-server stages every atomic batch in a file store of its own, created,
// flushed with fsync and removed per batch (newBatchStore, jetstream_batching.go; with more
// replicas it stages in memory), which is most of the difference:
// go test -run '^$' -bench BenchmarkBatchPublish -benchmem ./internal/stream/
func BenchmarkBatchPublish(b *testing.B) {
	const sara = "sara@omg.com"
	_, _, js := testenv.NATS(b)
	pub := stream.NewPublisher(js, 5*time.Second)
	batch := func(b *testing.B) ([]string, []*nats.Msg) {
		ids := make([]string, 100)
		msgs := make([]*nats.Msg, 100)
		for i := range msgs {
			ev := prefEvent(sara)
			m, err := events.Encode(ev)
			if err != nil {
				b.Fatal(err)
			}
			ids[i], msgs[i] = ev.ID, m
		}
		return ids, msgs
	}
	b.Run("atomic_100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			ids, msgs := batch(b)
			b.StartTimer()
			if _, err := pub.PublishBatchMsgs(b.Context(), ids, msgs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
	})
	b.Run("async_100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			_, msgs := batch(b)
			b.StartTimer()
			for _, m := range msgs {
				if _, err := js.PublishMsgAsync(m); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("acknowledgements not all in within a minute")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
	})
}
