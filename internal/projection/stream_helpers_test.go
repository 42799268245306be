package projection

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

// testGroup is a projector group name unique to the test, so its checkpoints on the shared
// database are its own.
func testGroup(t testing.TB, name string) string {
	t.Helper()
	return name + "-" + strings.ReplaceAll(events.NewID()[24:], "-", "")
}

// testConfig is a projector configuration with quick retries and take-overs.
func testConfig(group string) Config {
	c := DefaultConfig(app.Common{Service: "projector", MultiTenant: true, PublishTimeout: 5 * time.Second})
	c.Group = group
	c.RetryMin, c.RetryMax = 20*time.Millisecond, 500*time.Millisecond
	c.PinTimeout, c.AckWait = 2*time.Second, 5*time.Second
	return c
}

// startProjector runs a projector of cfg in-process until the test ends (or stop is called).
func startProjector(t testing.TB, cfg Config, d neo4j.DriverWithContext, js jetstream.JetStream) (*Projector, *prometheus.Registry, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	p, err := New(cfg, d, js, WithRegisterer(reg), WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := p.Stop(ctx); err != nil {
				t.Errorf("stop projector: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return p, reg, stop
}

// published tracks what a test stored in the memory stream: the highest sequence of every
// partition, which is where each partition's checkpoint must end up.
type published struct {
	mu   sync.Mutex
	last map[int]uint64
	n    int
}

func newPublished() *published { return &published{last: map[int]uint64{}} }

func (p *published) add(token string, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	part := events.Partition(token, natsdeploy.Partitions)
	p.last[part] = max(p.last[part], seq)
	p.n++
}

func (p *published) snapshot() map[int]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[int]uint64, len(p.last))
	for k, v := range p.last {
		out[k] = v
	}
	return out
}

// publishEvents stores evs in order and returns their sequences.
func publishEvents(ctx context.Context, t testing.TB, js jetstream.JetStream, pub *published, evs ...*events.Event) []uint64 {
	t.Helper()
	p := stream.NewPublisher(js, 10*time.Second)
	seqs := make([]uint64, len(evs))
	for i, ev := range evs {
		st, err := p.Publish(ctx, ev)
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		tok, _ := events.TenantToken(ev.User)
		pub.add(tok, st.Sequence)
		seqs[i] = st.Sequence
	}
	return seqs
}

// publishRaw stores a message as it is, on mem.<token>.<kind>.
func publishRaw(ctx context.Context, t testing.TB, js jetstream.JetStream, pub *published, token, kind string, h nats.Header, data []byte) uint64 {
	t.Helper()
	msg := &nats.Msg{Subject: events.SubjectRoot + "." + token + "." + kind, Header: h, Data: data}
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("publish raw: %v", err)
	}
	pub.add(token, ack.Sequence)
	return ack.Sequence
}

// waitCaughtUp waits until group's checkpoints cover everything published.
func waitCaughtUp(ctx context.Context, t testing.TB, d neo4j.DriverWithContext, group string, pub *published, timeout time.Duration) {
	t.Helper()
	want := pub.snapshot()
	deadline := time.Now().Add(timeout)
	for {
		behind := map[int]string{}
		for part, seq := range want {
			got, err := ReadCheckpoint(ctx, d, "", CheckpointName(group, part))
			if err != nil || got < seq {
				behind[part] = fmt.Sprintf("%d/%d (%v)", got, seq, err)
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s did not catch up within %s: partitions behind %v", group, timeout, behind)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// deadLetters reads every message of the dead-letter stream.
func deadLetters(ctx context.Context, t testing.TB, js jetstream.JetStream) []jetstream.Msg {
	t.Helper()
	s, err := js.Stream(ctx, stream.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	n := s.CachedInfo().State.Msgs
	if n == 0 {
		return nil
	}
	c, err := js.OrderedConsumer(ctx, stream.DeadLetterStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for uint64(len(out)) < n {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read dead letters: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// counter reads a counter of reg, summed over the label sets matching labels.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// testLogger logs to stderr at the level of ENGRAM_TEST_LOG (debug, info, warn), else not.
func testLogger(testing.TB) *slog.Logger {
	lvl := os.Getenv("ENGRAM_TEST_LOG")
	if lvl == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var l slog.Level
	_ = l.UnmarshalText([]byte(lvl))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
