package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
)

// rawPublisher publishes the bytes of encoded Engram events, unchanged but for a fresh
// Nats-Msg-Id, to a stream of the run's own that is configured like the memory stream (file
// storage, duplicate window, the partitioning subject transform). No validation, no encoding,
// no HTTP: the machine's JetStream limit for messages of Engram's size.
type rawPublisher struct {
	js      jetstream.JetStream
	stream  string
	subject string // prefix: <subject>.<token>.<kind>
	msgs    []*nats.Msg
	seq     atomic.Uint64
	runID   string
	avgSize int
	steps   int // of syncFromProcess, each under Nats-Msg-Ids of its own
}

// AsyncWindow bounds the raw async publishes in flight; the same bound as Engram's async
// publisher keeps the comparison fair (see publish scenario).
const AsyncWindow = 4096

func newRawPublisher(ctx context.Context, s *Stack, sample []*events.Event) (*rawPublisher, error) {
	name := "BENCH_RAW_" + s.RunID
	subj := "benchraw." + s.RunID
	cfg, err := natsdeploy.MemoryStream(2 * time.Minute)
	if err != nil {
		return nil, err
	}
	cfg.Name = name
	cfg.Description = "memctl bench: raw publish baseline of run " + s.RunID + " (deleted at the end of the run)"
	cfg.Subjects = []string{subj + ".*.*"}
	cfg.SubjectTransform = &jetstream.SubjectTransformConfig{
		Source:      subj + ".*.*",
		Destination: subj + ".{{wildcard(1)}}.{{wildcard(2)}}.{{partition(8,1)}}",
	}
	if _, err := s.JS.CreateOrUpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("create baseline stream %s: %w", name, err)
	}
	p := &rawPublisher{js: s.JS, stream: name, subject: subj, runID: s.RunID}
	total := 0
	for _, e := range sample {
		m, err := events.Encode(e)
		if err != nil {
			return nil, err
		}
		tok, kind, _ := events.ParseSubject(m.Subject)
		m.Subject = subj + "." + tok + "." + string(kind)
		p.msgs = append(p.msgs, m)
		total += len(m.Data)
		for k, vs := range m.Header {
			for _, v := range vs {
				total += len(k) + len(v)
			}
		}
	}
	if len(p.msgs) > 0 {
		p.avgSize = total / len(p.msgs)
	}
	return p, nil
}

// next returns a copy of the next sample message with a unique Nats-Msg-Id.
func (p *rawPublisher) next() *nats.Msg {
	n := p.seq.Add(1)
	src := p.msgs[int(n)%len(p.msgs)]
	h := make(nats.Header, len(src.Header))
	for k, v := range src.Header {
		h[k] = v
	}
	h.Set(nats.MsgIdHdr, p.runID+"-"+strconv.FormatUint(n, 10))
	return &nats.Msg{Subject: src.Subject, Header: h, Data: src.Data}
}

func (p *rawPublisher) delete(ctx context.Context) error {
	if err := p.js.DeleteStream(ctx, p.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete baseline stream %s: %w", p.stream, err)
	}
	return nil
}

// sync publishes with c concurrent synchronous publishers for d (after warmup) and returns the
// acknowledged rate and latencies.
func (p *rawPublisher) sync(ctx context.Context, c int, warmup, d time.Duration) (float64, Summary) {
	return closedLoop(ctx, c, warmup, d, func(ctx context.Context) (int, error) {
		_, err := p.js.PublishMsg(ctx, p.next())
		return 1, err
	})
}

// async publishes with PublishMsgAsync, at most window in flight, for d (after warmup), then
// waits for every outstanding ack; the rate counts acknowledged messages over the whole time.
func (p *rawPublisher) async(ctx context.Context, nc *nats.Conn, window int, warmup, d time.Duration) (float64, Summary, error) {
	var failed atomic.Int64
	var firstErr atomic.Value
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}))
	if err != nil {
		return 0, Summary{}, err
	}
	run := func(d time.Duration) (int64, time.Duration, error) {
		failed.Store(0)
		start := time.Now()
		end := start.Add(d)
		var sent int64
		for time.Now().Before(end) && ctx.Err() == nil {
			if _, err := js.PublishMsgAsync(p.next(), jetstream.WithStallWait(30*time.Second)); err != nil {
				return 0, 0, fmt.Errorf("raw async publish: %w", err)
			}
			sent++
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			return 0, 0, errors.New("raw async publish: acks outstanding after 30s")
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
		return sent - failed.Load(), time.Since(start), nil
	}
	if warmup > 0 {
		if _, _, err := run(warmup); err != nil {
			return 0, Summary{}, err
		}
	}
	acked, elapsed, err := run(d)
	if err != nil {
		return 0, Summary{}, err
	}
	s := Summary{Count: int(acked), Errors: int(failed.Load())}
	if e, ok := firstErr.Load().(error); ok {
		s.First = e
	}
	return float64(acked) / elapsed.Seconds(), s, nil
}

// closedLoop runs c workers calling op back to back for d (after an unmeasured warmup) and
// returns the rate of units op reported done, and the latency of each call.
func closedLoop(ctx context.Context, c int, warmup, d time.Duration, op func(context.Context) (int, error)) (float64, Summary) {
	var lat Latencies
	var done atomic.Int64
	var measuring atomic.Bool
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				n, err := op(ctx)
				if !measuring.Load() {
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						lat.Fail(err)
					}
					continue
				}
				lat.Add(time.Since(t0))
				done.Add(int64(n))
			}
		})
	}
	sleepCtx(ctx, warmup)
	measuring.Store(true)
	start := time.Now()
	sleepCtx(ctx, d)
	measuring.Store(false)
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	return float64(done.Load()) / elapsed.Seconds(), lat.Summary()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
