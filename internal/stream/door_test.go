package stream_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestAgentsCannotHoldTheOpenBatches is issue 12's finding 5 under the production accounts:
// an agent over NATS opened atomic batches on the memory stream (the first message of each,
// Nats-Batch-Id, never a commit) until the stream's limit of open batches was reached, and
// every tenant's batch endpoint then answered 503. Through the door, each such message is
// refused at once with JetStream's "atomic publish is disabled" (10174), nothing is staged,
// and the ingestor's batch goes through; the agent's single events are stored as before, with
// JetStream's own acknowledgement (stream MEM, its sequence, duplicates recognised).
func TestAgentsCannotHoldTheOpenBatches(t *testing.T) {
	const sara, liam = "sara@omg.com", "liam@omg.com"
	s := testenv.StartProductionNATS(t, sara)
	s.OpenDoor(t)
	anc, ajs := s.ConnectAgent(t, sara)
	ctx := t.Context()

	// A single event: relayed, stored, acknowledged by JetStream.
	ev := prefEvent(sara)
	msg, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := ajs.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("agent's event through the door: %v", err)
	}
	if ack.Stream != stream.MemoryStream || ack.Sequence == 0 || ack.Duplicate {
		t.Fatalf("agent's ack = %+v, want a new event of %s", ack, stream.MemoryStream)
	}
	again, err := ajs.PublishMsg(ctx, msg)
	if err != nil || !again.Duplicate || again.Sequence != ack.Sequence {
		t.Fatalf("the same event again = %+v, %v; want the duplicate of sequence %d", again, err, ack.Sequence)
	}
	_, adminJS := s.Connect(t, "admin")
	mem, err := adminJS.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mem.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := stream.StoredSubject(sara, events.KindPreferenceAdded); got.Subject != want {
		t.Errorf("stored on %q, want %q", got.Subject, want)
	}

	// Every open batch the stream admits, and more: each refused, none staged.
	for i := range stream.MaxOpenAtomicBatches + 10 {
		m, err := events.Encode(prefEvent(sara))
		if err != nil {
			t.Fatal(err)
		}
		m.Header.Set("Nats-Batch-Id", "held-"+strconv.Itoa(i))
		m.Header.Set("Nats-Batch-Sequence", "1")
		resp, err := anc.RequestMsg(m, 5*time.Second)
		if err != nil {
			t.Fatalf("batch message %d: no answer: %v", i, err)
		}
		var r struct {
			Error *struct {
				Code    int    `json:"code"`
				ErrCode int    `json:"err_code"`
				Desc    string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &r); err != nil || r.Error == nil || r.Error.Code != 400 || r.Error.ErrCode != 10174 {
			t.Fatalf("batch message %d answered %s, want a 400 with err_code 10174", i, resp.Data)
		}
	}
	// A commit alone, a lower-case header: refused too; a condition on another tenant's subject
	// as well (it would tell the agent that subject's last sequence).
	liamTok, _ := events.EncodeToken(liam)
	for name, hdr := range map[string][2]string{
		"commit":            {"Nats-Batch-Commit", "1"},
		"lower-case header": {"nats-batch-id", "x"},
		"another tenant":    {"Nats-Expected-Last-Subject-Sequence-Subject", "mem." + liamTok + ".>"},
	} {
		m, _ := events.Encode(prefEvent(sara))
		m.Header[hdr[0]] = []string{hdr[1]}
		_, err := ajs.PublishMsg(ctx, m)
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != 400 {
			t.Errorf("%s: %v, want a 400 from the door", name, err)
		}
	}

	// The ingestor's batch is stored: no slot is held.
	_, ijs := s.Connect(t, "ingestor")
	pub := stream.NewPublisher(ijs, 5*time.Second)
	stored, err := pub.PublishBatch(ctx, []*events.Event{prefEvent(liam), prefEvent(sara)})
	if err != nil {
		t.Fatalf("the ingestor's batch after the agent's: %v", err)
	}
	if len(stored) != 2 || stored[0].Sequence <= ack.Sequence {
		t.Fatalf("batch stored %+v", stored)
	}
	info, err := mem.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Errorf("the stream holds %d events, want 3 (the agent's one and the ingestor's two)", info.State.Msgs)
	}
	if v := s.Violations(); len(v) > 0 {
		t.Errorf("permission violations: %q", v)
	}
}

// TestAgentWithoutDoor: with no ingestor up, an agent's event reaches no stream, and the agent
// hears so at once (no responders) instead of waiting out its timeout.
func TestAgentWithoutDoor(t *testing.T) {
	const sara = "sara@omg.com"
	s := testenv.StartProductionNATS(t, sara)
	_, ajs := s.ConnectAgent(t, sara)
	m, _ := events.Encode(prefEvent(sara))
	start := time.Now()
	_, err := ajs.PublishMsg(t.Context(), m, jetstream.WithRetryAttempts(0))
	if !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("publish without a door: %v, want no responders", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the refusal took %v", d)
	}
}

// BenchmarkDoor: an agent's asynchronous publishes through the door (production accounts)
// next to the same publishes straight into the memory stream (the admin's user, no door), on
// one server: what the relay costs an agent over NATS.
func BenchmarkDoor(b *testing.B) {
	const sara = "sara@omg.com"
	s := testenv.StartProductionNATS(b, sara)
	s.OpenDoor(b)
	_, ajs := s.ConnectAgent(b, sara)
	_, djs := s.Connect(b, "admin")
	for _, v := range []struct {
		name string
		js   jetstream.JetStream
	}{{"direct", djs}, {"door", ajs}} {
		b.Run(v.name, func(b *testing.B) {
			msgs := make([]*nats.Msg, b.N)
			for i := range msgs {
				m, err := events.Encode(prefEvent(sara))
				if err != nil {
					b.Fatal(err)
				}
				msgs[i] = m
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, m := range msgs {
				if _, err := v.js.PublishMsgAsync(m); err != nil {
					b.Fatal(err)
				}
			}
			select {
			case <-v.js.PublishAsyncComplete():
			case <-time.After(time.Minute):
				b.Fatal("acknowledgements not all in within a minute")
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestTwoDoorsKeepTheAgentsOrder: with two ingestors' doors, an agent's pipelined events
// (asynchronous publishes, one tenant) are stored once each and in the order it published
// them; an event without Nats-Msg-Id is deduplicated by its ce-id all the same.
func TestTwoDoorsKeepTheAgentsOrder(t *testing.T) {
	const sara = "sara@omg.com"
	s := testenv.StartProductionNATS(t, sara)
	s.OpenDoor(t)
	s.OpenDoor(t)
	_, ajs := s.ConnectAgent(t, sara)
	ctx := t.Context()
	const n = 300
	var ids []string
	for i := range n {
		ev := prefEvent(sara)
		m, err := events.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			m.Header.Del(nats.MsgIdHdr) // the door sets it from ce-id
		}
		ids = append(ids, ev.ID)
		if _, err := ajs.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-ajs.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("acknowledgements not all in")
	}
	_, adminJS := s.Connect(t, "admin")
	mem, err := adminJS.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := mem.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("the stream holds %d events, want %d (each once)", info.State.Msgs, n)
	}
	for seq := uint64(1); seq <= n; seq++ {
		m, err := mem.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get("ce-id"); got != ids[seq-1] {
			t.Fatalf("sequence %d holds event %s, want %s: stored out of the agent's order", seq, got, ids[seq-1])
		}
	}
}
