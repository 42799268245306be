package projection

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-memory/engram/internal/events"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := LoadConfig(nil, env())
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.Group != "projector" || c.BatchSize != 500 || c.BatchWait != 0 || !slices.Equal(c.Partitions, AllPartitions()) ||
		c.Common.HTTPAddr != DefaultHTTPAddr || c.Common.Service != "projector" || c.AckWait != time.Minute || c.PinTimeout != 2*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	c, err = LoadConfig([]string{"-batch-size", "50"}, env("PROJECTOR_GROUP", "g-1", "PROJECTOR_PARTITIONS", "0, 2-4", "PROJECTOR_BATCH_SIZE", "7"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Group != "g-1" || c.BatchSize != 50 || !slices.Equal(c.Partitions, []int{0, 2, 3, 4}) {
		t.Errorf("overrides: %+v", c)
	}

	_, err = LoadConfig(nil, env("PROJECTOR_GROUP", "a.b", "PROJECTOR_BATCH_SIZE", "0", "PROJECTOR_RETRY_MIN", "2s",
		"PROJECTOR_RETRY_MAX", "1s", "PROJECTOR_PIN_TIMEOUT", "1s", "PROJECTOR_PARTITIONS", "3,9,3"))
	if err == nil {
		t.Fatal("no error for bad settings")
	}
	for _, want := range []string{"PROJECTOR_GROUP", "PROJECTOR_BATCH_SIZE", "PROJECTOR_RETRY_MAX", "PROJECTOR_PIN_TIMEOUT", "partition 9", "partition 3 listed twice"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := LoadConfig(nil, env("PROJECTOR_PARTITIONS", "x")); err == nil || !strings.Contains(err.Error(), "PROJECTOR_PARTITIONS") {
		t.Errorf("bad partitions: %v", err)
	}
	if _, err := LoadConfig([]string{"-h"}, env()); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 50: time.Second} {
		for range 20 {
			if d := b.Delay(n); d < want/2 || d > want {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", n, d, want/2, want)
			}
		}
	}
}

func TestIsRejection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{&neo4j.Neo4jError{Code: "Neo.ClientError.Schema.ConstraintValidationFailed"}, true},
		{fmt.Errorf("apply: %w", &neo4j.Neo4jError{Code: "Neo.ClientError.Statement.TypeError"}), true},
		{&neo4j.Neo4jError{Code: "Neo.TransientError.Transaction.DeadlockDetected"}, false},
		{&neo4j.Neo4jError{Code: "Neo.ClientError.Statement.SyntaxError"}, false},
		{&neo4j.Neo4jError{Code: "Neo.ClientError.Security.Unauthorized"}, false},
		{&neo4j.Neo4jError{Code: "Neo.DatabaseError.General.UnknownError"}, false},
		{&neo4j.ConnectivityError{}, false},
		{errors.New("anything else"), false},
	}
	for _, tt := range tests {
		if got := isRejection(tt.err); got != tt.want {
			t.Errorf("isRejection(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if !isUnreachable(fmt.Errorf("x: %w", &neo4j.ConnectivityError{})) || isUnreachable(errors.New("x")) {
		t.Error("isUnreachable")
	}
}

func TestReasonOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want Reason
	}{
		{fmt.Errorf("%w: x", events.ErrUndecodable), ReasonUndecodable},
		{fmt.Errorf("%w: x", events.ErrUnknownType), ReasonUnknownType},
		{fmt.Errorf("%w: x", events.ErrInvalidData), ReasonSchemaInvalid},
		{fmt.Errorf("%w: x", events.ErrNoUser), ReasonNoUser},
		{errors.New("other"), ReasonUndecodable},
	}
	for _, tt := range tests {
		if got := ReasonOf(tt.err); got != tt.want {
			t.Errorf("ReasonOf(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestDecodeGuardrail(t *testing.T) {
	t.Parallel()
	ev := &events.Event{ID: events.NewID(), Source: "/t", Time: time.Now(),
		Data: events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID("", "s"), SessionID: "s", Role: "user", Content: "x"}}
	msg, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(msg.Subject+".1", msg.Header, msg.Data, 9, time.Now(), false); err != nil {
		t.Errorf("single-tenant mode: %v", err)
	}
	_, err = Decode(msg.Subject+".1", msg.Header, msg.Data, 9, time.Now(), true)
	var rej *Rejection
	if !errors.As(err, &rej) || rej.Reason != ReasonNoUser || rej.Sequence != 9 || !errors.Is(err, events.ErrNoUser) {
		t.Errorf("multi-tenant mode: %v", err)
	}
}

func TestDeadLetterMsg(t *testing.T) {
	t.Parallel()
	h := nats.Header{}
	h.Set("ce-id", "abc")
	h.Set(nats.MsgIdHdr, "abc")
	h.Set("Nats-Expected-Stream", "MEM")
	h.Set("Nats-Pin-Id", "pin")
	stored := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	m := DeadLetterMsg(DeadLetter{Subject: "mem.a.message_added.3", Sequence: 42, Stored: stored, Header: h, Data: []byte("x"),
		Reason: ReasonSchemaInvalid, Err: errors.New("bad\nfield " + strings.Repeat("é", 1000))}, "g")
	if m.Subject != "dlq.mem.a.message_added.3" || string(m.Data) != "x" {
		t.Errorf("subject %s data %q", m.Subject, m.Data)
	}
	want := map[string]string{
		"ce-id": "abc", HeaderDlqReason: "schema_invalid", HeaderDlqSeq: "42", HeaderDlqStream: "MEM",
		HeaderDlqSubject: "mem.a.message_added.3", HeaderDlqGroup: "g", HeaderDlqMsgID: "abc",
		HeaderDlqStoredAt: "2026-01-02T03:04:05.000000006Z", nats.MsgIdHdr: "MEM-42",
		"Nats-Expected-Stream": "", "Nats-Pin-Id": "",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	e := m.Header.Get(HeaderDlqError)
	if len(e) > maxErrorHeader || strings.ContainsAny(e, "\n\r") || !strings.HasPrefix(e, "bad field") || !strings.ContainsRune(e, 'é') {
		t.Errorf("error header %q", e)
	}
	if strings.ToValidUTF8(e, "?") != e {
		t.Error("error header is not valid UTF-8")
	}
}

func TestConsumerConfig(t *testing.T) {
	t.Parallel()
	cfg := testConfig("grp")
	c, err := ConsumerConfig(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	if c.Durable != "grp-p5" || c.FilterSubject != PartitionFilter(5) || c.AckWait != cfg.AckWait || c.PinnedTTL != cfg.PinTimeout ||
		c.PriorityGroups[0] != "projector" {
		t.Errorf("consumer %+v", c)
	}
	if CheckpointName("projector", 3) != "projector-p3" {
		t.Error(CheckpointName("projector", 3))
	}
	if _, err := ConsumerConfig(cfg, 8); err == nil {
		t.Error("partition 8 accepted")
	}
}

// TestIsolation: when Neo4j rejects a batch, the worker applies its events one per
// transaction, dead-letters the one that fails alone (graph_rejected) and applies the others.
func TestIsolation(t *testing.T) {
	t.Parallel()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{cfg: Config{BatchSize: 10}, metrics: m, log: testLogger(t), forced: map[uint64]*Rejection{},
		backoff: Backoff{Min: time.Millisecond, Max: time.Millisecond}}
	for seq := uint64(1); seq <= 6; seq++ {
		w.pending = append(w.pending, &entry{seq: seq})
	}
	const bad = 4
	var applied, lettered []uint64
	var sizes []int
	w.apply = func(context.Context) (stepStats, error) {
		n := min(w.limit, len(w.pending))
		plan := &stepPlan{apply: slices.Clone(w.pending[:n]), last: w.pending[n-1].seq}
		for _, e := range plan.apply {
			if r := w.forced[e.seq]; r != nil {
				e.rejection = r
			}
		}
		w.plan = plan
		for _, e := range plan.apply {
			if e.seq == bad && e.rejection == nil {
				return stepStats{}, errors.Join(errRejectedByGraph, errors.New("constraint"))
			}
		}
		sizes = append(sizes, n)
		for _, e := range plan.apply {
			if e.rejection != nil {
				lettered = append(lettered, e.seq)
			} else {
				applied = append(applied, e.seq)
			}
		}
		return stepStats{}, nil
	}
	if err := w.process(t.Context(), t.Context()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, []uint64{1, 2, 3, 5, 6}) || !slices.Equal(lettered, []uint64{bad}) {
		t.Errorf("applied %v, dead-lettered %v", applied, lettered)
	}
	if !slices.Equal(sizes, []int{1, 1, 1, 1, 1, 1}) || w.isolateTo != 0 || len(w.pending) != 0 || len(w.forced) != 0 {
		t.Errorf("steps of %v; isolateTo %d, pending %d, forced %d", sizes, w.isolateTo, len(w.pending), len(w.forced))
	}
	// Back to full batches afterwards.
	for seq := uint64(7); seq <= 9; seq++ {
		w.pending = append(w.pending, &entry{seq: seq})
	}
	sizes = nil
	if err := w.process(t.Context(), t.Context()); err != nil || !slices.Equal(sizes, []int{3}) {
		t.Errorf("after isolation: steps %v, err %v", sizes, err)
	}
}

// TestPanicIsolated: a step that panics on one event does not crash the worker; the event is
// dead-lettered as internal_error and the others are applied.
func TestPanicIsolated(t *testing.T) {
	t.Parallel()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{cfg: Config{BatchSize: 10}, metrics: m, log: testLogger(t), forced: map[uint64]*Rejection{},
		backoff: Backoff{Min: time.Millisecond, Max: time.Millisecond}}
	for seq := uint64(1); seq <= 3; seq++ {
		w.pending = append(w.pending, &entry{seq: seq})
	}
	var reasons []Reason
	step := func(context.Context) (stepStats, error) {
		n := min(w.limit, len(w.pending))
		plan := &stepPlan{apply: slices.Clone(w.pending[:n]), last: w.pending[n-1].seq}
		for _, e := range plan.apply {
			if r := w.forced[e.seq]; r != nil {
				e.rejection = r
			}
		}
		w.plan = plan
		for _, e := range plan.apply {
			if e.seq == 2 && e.rejection == nil {
				panic("boom")
			}
		}
		for _, e := range plan.apply {
			if e.rejection != nil {
				reasons = append(reasons, e.rejection.Reason)
			}
		}
		return stepStats{}, nil
	}
	w.apply = withRejectionCheck(withRecover(step, w.log))
	if err := w.process(t.Context(), t.Context()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(reasons, []Reason{ReasonInternal}) || len(w.pending) != 0 {
		t.Errorf("dead-letter reasons %v, pending %d", reasons, len(w.pending))
	}
}
