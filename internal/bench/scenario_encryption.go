package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/stream"
)

// ScenarioEncryption measures what crypto-shredding costs (docs/security.md).
const ScenarioEncryption = "encryption" // ingest and projection with and without sealing

// Tenant groups of the encryption scenario.
const (
	groupEncryptionIngest     = "ei"
	groupEncryptionProjection = "ep"
)

func init() {
	scenarios[ScenarioEncryption] = encryption
}

// encryption: the same work with and without sealing, in the same run, in the order off, on,
// on, off (so that a drift of the machine's load falls on both alike); each row is the mean of
// its two steps, and the on row is divided by the off row.
//
// Ingest: two ingest handlers in the driver's process on loopback listeners, on the run's
// NATS, one without keys (INGEST_ENCRYPTION=off) and one sealing with the data keys of the
// run's bucket (on), single-command requests at the highest concurrency level. The pool's
// keys are made during the first on step's warm-up, as a user's first write makes them.
//
// Projection: the run's projector (which opens sealed events with its key ring) applies a mix
// of events published plaintext, and the same mix sealed, for users new to it: its ring's
// cache misses once per user (a key read) and then opens each event from memory.
func encryption(ctx context.Context, r *runner) error {
	if err := r.encryptionIngest(ctx); err != nil {
		return err
	}
	return r.encryptionProjection(ctx)
}

func (r *runner) encryptionIngest(ctx context.Context) error {
	r.quiesceProjector(ctx)
	cfg := ingest.Config{MaxBatch: ingest.DefaultMaxBatch, MaxBodyBytes: ingest.DefaultMaxBodyBytes, Source: ingest.DefaultSource,
		MaxOpenBatches: ingest.DefaultMaxOpenBatches, Encryption: "on"}
	cfg.Common.MultiTenant = true
	pub := stream.NewPublisher(r.stack.JS, 5*time.Second)
	ring, err := ingest.NewRing(keys.NewKV(r.stack.JS), pub.Erasure)
	if err != nil {
		return err
	}
	c := slices.Max(r.cfg.Concurrency)
	variants := []struct {
		name string
		opts []ingest.Option
	}{{"off", nil}, {"on", []ingest.Option{ingest.WithKeys(ring)}}}
	writers := make([]*writer, len(variants))
	for i, v := range variants {
		h, err := ingest.NewHandler(pub, cfg, v.opts...)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		writers[i] = &writer{base: "http://" + ln.Addr().String(), client: httpClient(c)}
	}
	src := newEventSource(r.tenants, groupEncryptionIngest, ingestPool, &r.written)
	defer func() { _ = r.purge(context.Background(), groupEncryptionIngest) }()
	var rows [2]Result
	for step, i := range []int{0, 1, 1, 0} {
		w := writers[i]
		rate, sum := closedLoop(ctx, c, r.cfg.Warmup, r.cfg.Duration, func(ctx context.Context) (int, error) {
			cmd, err := Command(src.Next())
			if err != nil {
				return 0, err
			}
			_, err = w.send(ctx, cmd)
			return 1, err
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if step < 2 {
			rows[i] = latencyResult(ScenarioEncryption, fmt.Sprintf("ingest encryption %s c=%d", variants[i].name, c), "req/s", rate, sum)
			continue
		}
		rows[i] = meanOf(rows[i], rate, sum)
	}
	note := "single-command POST /v1/messages to an ingest handler in the driver's process; mean of 2 steps (ABBA)"
	r.addPair(rows, note)
	return nil
}

func (r *runner) encryptionProjection(ctx context.Context) error {
	if _, err := r.projector(ctx); err != nil {
		return err
	}
	ring, err := keys.NewRing(keys.NewKV(r.stack.JS))
	if err != nil {
		return err
	}
	n := max(r.cfg.Events/4, 100)
	defer func() { r.seal = events.Codec{} }()
	// An unmeasured step first: the first projection of a run is slower (a cold projector
	// and page cache), which ABBA alone would put on the off row.
	warm := groupEncryptionProjection + "w"
	r.written.used(warm, MixUsers(n/2))
	if _, err := r.project(ctx, Mix(r.tenants, warm, n/2, time.Now().UTC().Add(-3*time.Hour)), "encryption warm-up", r.stack.ProjectorGroup); err != nil {
		return err
	}
	var rows [2]Result
	for step, i := range []int{0, 1, 1, 0} {
		r.seal = events.Codec{}
		if i == 1 {
			r.seal = events.Codec{Keys: ring}
		}
		group := fmt.Sprintf("%s%d", groupEncryptionProjection, step)
		evs := Mix(r.tenants, group, n, time.Now().UTC().Add(-2*time.Hour))
		r.written.used(group, MixUsers(n))
		pr, err := r.project(ctx, evs, fmt.Sprintf("encryption step %d", step), r.stack.ProjectorGroup)
		if err != nil {
			return err
		}
		name := map[int]string{0: "off", 1: "on"}[i]
		sum := Summary{Count: pr.applied, Errors: pr.deadLettered}
		if step < 2 {
			rows[i] = Result{Scenario: ScenarioEncryption, Variant: fmt.Sprintf("projection encryption %s, %d events", name, n),
				Metric: "events/s", Value: pr.steady, Count: sum.Count, Errors: sum.Errors}
			continue
		}
		rows[i] = meanOf(rows[i], pr.steady, sum)
	}
	note := fmt.Sprintf("applied events/s between 10%% and 90%% of the events applied, the run's projector; %d users new to it per step; mean of 2 steps (ABBA)", MixUsers(n))
	r.addPair(rows, note)
	return nil
}

// meanOf is res with the second step's rate and summary averaged in.
func meanOf(res Result, rate float64, sum Summary) Result {
	res.Value = (res.Value + rate) / 2
	res.Count += sum.Count
	res.Errors += sum.Errors
	if sum.P50 > 0 && res.P50 > 0 {
		res.P50, res.P99 = (res.P50+ms(sum.P50))/2, (res.P99+ms(sum.P99))/2
	}
	return res
}

// addPair reports an off row and the on row divided by it.
func (r *runner) addPair(rows [2]Result, note string) {
	rows[0] = withNote(rows[0], note)
	rows[1] = ratioTo(withNote(rows[1], note), rows[0], 0)
	for _, res := range rows {
		r.report.Add(res)
		r.log.Info("measured", "row", res.Name(), "value", int(res.Value), "ratio", fmt.Sprintf("%.2f", res.Ratio))
	}
}

// destroyKeys destroys the data keys of the first users of group, so that a run leaves no key
// in the bucket, as it leaves no event in the stream.
func destroyKeys(ctx context.Context, js jetstream.JetStream, t Tenants, group string, users int) error {
	store := keys.NewKV(js)
	for i := range users {
		if err := store.Destroy(ctx, t.User(group, i)); err != nil {
			return fmt.Errorf("destroy the data keys of group %s: %w", group, err)
		}
	}
	return nil
}
