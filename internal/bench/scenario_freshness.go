package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/engram-memory/engram/internal/events"
)

func init() {
	scenarios[ScenarioFreshness] = freshness
}

// freshnessLowRate is the first offered rate of the freshness scenario (issue 11's 500
// events/s step).
const freshnessLowRate = 500

// freshnessTarget is issue 11's ack→visible p99 target at an offered rate: 50 ms up to 500
// events/s, 150 ms above.
func freshnessTarget(rate float64) time.Duration {
	if rate <= freshnessLowRate {
		return 50 * time.Millisecond
	}
	return 150 * time.Millisecond
}

// probesPerSecond is how many of the offered writes are followed until visible: enough for
// a stable p99 in a short run, few enough that the reads do not add much load.
const probesPerSecond = 50

// freshness: single-command writes through the ingestor at a fixed offered rate (an open
// loop: a write is sent when it is due, whatever the answers before it), the projector and the
// query service running. For a sample of the preference writes, the driver asks the query
// service for the user's preferences with the write's consistency token (read-your-writes: the
// read waits until the projector's checkpoint covers the token) and measures from the write's
// acknowledgement to the answer that contains the preference. It runs at a tenth of the rate
// first (a load this machine sustains), then at the rate the target names.
func freshness(ctx context.Context, r *runner) error {
	ing, err := r.stack.Service(ServiceIngestor)
	if err != nil {
		return err
	}
	q, err := r.stack.Service(ServiceQuery)
	if err != nil {
		return err
	}
	proj, err := r.projector(ctx)
	if err != nil {
		return err
	}
	src := newEventSource(r.tenants, groupFreshness, ingestPool, &r.written)
	// Issue 11's two targets: p99 ≤ 50 ms at 500 offered events/s and ≤ 150 ms at 2000, with
	// every offered write accepted. -rate sets the second step (and the only one when ≤ 500).
	type step struct {
		rate   float64
		target time.Duration
	}
	steps := []step{{r.cfg.Rate, freshnessTarget(r.cfg.Rate)}}
	if r.cfg.Rate > freshnessLowRate {
		steps = []step{{freshnessLowRate, freshnessTarget(freshnessLowRate)}, steps[0]}
	}
	for _, st := range steps {
		rate := st.rate
		before, merr := scrape(ctx, proj.URL+"/metrics")
		start := time.Now()
		cpu := r.startCPUSplit(ServiceIngestor, ServiceProjector, ServiceQuery)
		wres, res := r.freshnessAt(ctx, rate, src, ing.URL, q.URL)
		if n := cpu.note(int64(rate*(r.cfg.Duration+r.cfg.Warmup).Seconds()), "offered write"); n != "" {
			res = withNote(res, n)
		}
		if after, err := scrape(ctx, proj.URL+"/metrics"); err == nil && merr == nil {
			if b := projectorBreakdown(before, after, time.Since(start)); b != "" {
				res = withNote(res, b)
			}
		}
		res.Target = fmt.Sprintf("p99 ≤ %s, every write accepted", st.target)
		res.Status = met(res.Count > 0 && res.P99 <= ms(st.target) && res.Errors == 0 && wres.Value >= 0.95*rate)
		r.report.Add(wres)
		r.report.Add(res)
		r.log.Info("measured", "row", res.Name(), "p50_ms", res.P50, "p99_ms", res.P99, "writes_per_s", int(wres.Value))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	// What the projector has not applied yet would compete with the next scenarios.
	r.quiesceProjector(ctx)
	return nil
}

// freshnessAt runs one offered rate and returns the writes' row and the freshness row.
func (r *runner) freshnessAt(ctx context.Context, rate float64, src *eventSource, ingURL, queryURL string) (Result, Result) {
	// Enough workers that the driver never bounds the offered rate: at 2000 events/s and 100 ms
	// answers under load, 200 requests are in flight.
	workers := min(1024, max(16, int(rate/10)))
	client := httpClient(workers + 64)
	w := &writer{base: ingURL, client: client}
	prefShare := 10.0 / EventsPerUser // preferences are 10 of a script's events
	probeEvery := max(1, int(rate*prefShare/probesPerSecond))

	var lat, writes Latencies
	var waited, reads, rest Latencies // the probes' answers split by their Server-Timing
	var acked, prefSeen, lastAck atomic.Int64
	var probes sync.WaitGroup
	type job struct {
		due time.Time
		ev  *events.Event
	}
	// One queue per worker and every user's events on one worker, so each user's events are
	// stored in the order the script has them (an add before its supersede). The queues are
	// deep: a write waits in it when the service falls behind, and its latency counts from
	// when it was due.
	total := int(rate*(r.cfg.Duration+r.cfg.Warmup).Seconds()) + 1
	queues := make([]chan job, workers)
	for i := range queues {
		queues[i] = make(chan job, total/workers+1024)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	measureFrom := time.Now().Add(r.cfg.Warmup)
	var wg sync.WaitGroup
	for _, queue := range queues {
		wg.Go(func() {
			for j := range queue {
				cmd, err := Command(j.ev)
				if err != nil {
					writes.Fail(err)
					continue
				}
				seq, err := w.send(ctx, cmd)
				ackAt := time.Now()
				if j.due.Before(measureFrom) {
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						writes.Fail(err)
					}
					continue
				}
				writes.Add(ackAt.Sub(j.due))
				acked.Add(1)
				for {
					last := lastAck.Load()
					if ackAt.UnixNano() <= last || lastAck.CompareAndSwap(last, ackAt.UnixNano()) {
						break
					}
				}
				e := j.ev
				if p, ok := e.Data.(events.PreferenceAdded); ok && prefSeen.Add(1)%int64(probeEvery) == 0 {
					probes.Go(func() {
						st, err := r.probe(ctx, client, queryURL, e.User, p.PreferenceID, seq)
						if err != nil {
							if ctx.Err() == nil {
								lat.Fail(err)
								r.log.Debug("probe failed", "err", err)
							}
							return
						}
						d := time.Since(ackAt)
						lat.Add(d)
						if st.ok {
							waited.Add(st.consistency)
							reads.Add(st.read)
							rest.Add(max(0, d-st.consistency-st.read))
						}
						if d > 200*time.Millisecond {
							r.log.Debug("slow probe", "user", e.User, "seq", seq, "acked", ackAt, "visible_after", d)
						}
					})
				}
			}
		})
	}
	// The open loop: one write due every 1/rate seconds.
	start := time.Now()
	end := measureFrom.Add(r.cfg.Duration)
	interval := time.Duration(float64(time.Second) / rate)
	for i := 0; ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(end) {
			break
		}
		if wait := time.Until(due); wait > 0 {
			sleepCtx(ctx, wait)
		}
		e := src.Next()
		queues[events.Partition(e.User, len(queues))] <- job{due: due, ev: e}
	}
	for _, q := range queues {
		close(q)
	}
	// Writes still queued when the offered period ends are sent too (they were offered); a
	// service far behind is given a minute.
	drained := make(chan struct{})
	go func() { wg.Wait(); probes.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(time.Minute + r.cfg.Duration):
		cancel()
		<-drained
	case <-ctx.Done():
		<-drained
	}
	elapsed := time.Since(measureFrom)
	if last := lastAck.Load(); last > 0 {
		elapsed = time.Unix(0, last).Sub(measureFrom)
	}

	s, ws := lat.Summary(), writes.Summary()
	variant := fmt.Sprintf("offered %.0f events/s", rate)
	wres := latencyResult(ScenarioFreshness, variant+": writes", "events/s", float64(acked.Load())/elapsed.Seconds(), ws)
	wres = withNote(wres, fmt.Sprintf("single-command writes acknowledged per second, until the last offered write was answered; latency from when each write was due (open loop, %d workers, each user's writes in order on one)", workers))
	res := latencyResult(ScenarioFreshness, variant+": ack→visible", "ms", ms(s.P99), s)
	res = withNote(res, fmt.Sprintf("%d probes (1 of %d preference writes): reads with the write's consistency token until the preference is in the answer; value is p99", s.Count, probeEvery))
	if w, rd, o := waited.Summary(), reads.Summary(), rest.Summary(); w.Count > 0 {
		res = withNote(res, fmt.Sprintf("split by the answers' Server-Timing (p50/p99 ms): waiting for the projection %.1f/%.1f, the read %.1f/%.1f, "+
			"the rest (earlier answers of the probe, HTTP, queueing in the driver and the service) %.1f/%.1f",
			ms(w.P50), ms(w.P99), ms(rd.P50), ms(rd.P99), ms(o.P50), ms(o.P99)))
	}
	if s.Count == 0 {
		res.Status = StatusMissed
		res = withNote(res, "no probe completed")
	}
	return wres, res
}

// errNotCaughtUp: the query service answered 504, its wait for the consistency token ended.
var errNotCaughtUp = errors.New("projection has not caught up")

// probe reads the user's preferences with the consistency token until the preference is in
// the answer (the token makes the first read wait for the projection; polling covers a query
// service that answers before the preference is there), and returns the Server-Timing of the
// answer that had it.
func (r *runner) probe(ctx context.Context, client *http.Client, base, user, prefID string, seq uint64) (serverTiming, error) {
	deadline := time.Now().Add(time.Minute)
	u := base + "/v1/users/" + url.PathEscape(user) + "/preferences?active_only=false&consistency=" + strconv.FormatUint(seq, 10)
	for {
		ids, st, err := preferenceIDs(ctx, client, u)
		if errors.Is(err, errNotCaughtUp) && time.Now().Before(deadline) {
			continue // the query service waited its limit; the projection is behind: ask again
		}
		if err != nil {
			return serverTiming{}, err
		}
		for _, id := range ids {
			if id == prefID {
				return st, nil
			}
		}
		if time.Now().After(deadline) {
			return serverTiming{}, fmt.Errorf("preference %s of %s not visible after a minute", prefID, user)
		}
		sleepCtx(ctx, 2*time.Millisecond)
		if ctx.Err() != nil {
			return serverTiming{}, ctx.Err()
		}
	}
}

// serverTiming is the query service's Server-Timing of an answer: how long it waited for the
// consistency token, and how long the read took.
type serverTiming struct {
	consistency, read time.Duration
	ok                bool
}

// parseServerTiming reads "consistency;dur=1.5, read;dur=0.7" (milliseconds).
func parseServerTiming(values []string) serverTiming {
	var st serverTiming
	seen := 0
	for _, v := range values {
		for m := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(m), ";")
			durText, ok := strings.CutPrefix(strings.TrimSpace(params), "dur=")
			if !ok {
				continue
			}
			f, err := strconv.ParseFloat(durText, 64)
			if err != nil {
				continue
			}
			d := time.Duration(f * float64(time.Millisecond))
			switch name {
			case "consistency":
				st.consistency = d
				seen++
			case "read":
				st.read = d
				seen++
			}
		}
	}
	st.ok = seen == 2
	return st
}

// preferenceIDs GETs a preferences URL of the query service and returns the ids it lists and
// the answer's Server-Timing.
func preferenceIDs(ctx context.Context, client *http.Client, u string) ([]string, serverTiming, error) {
	ids, resp, err := preferenceIDsOf(ctx, client, u)
	if resp == nil {
		return ids, serverTiming{}, err
	}
	return ids, parseServerTiming(resp.Header.Values("Server-Timing")), err
}

func preferenceIDsOf(ctx context.Context, client *http.Client, u string) ([]string, *http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp, err
	}
	if resp.StatusCode == http.StatusGatewayTimeout {
		return nil, resp, fmt.Errorf("GET %s: %w", u, errNotCaughtUp)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp, fmt.Errorf("GET %s: status %d: %s", u, resp.StatusCode, clip(string(b), 300))
	}
	var body struct {
		Preferences []struct {
			ID string `json:"id"`
		} `json:"preferences"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, resp, fmt.Errorf("GET %s: %w", u, err)
	}
	ids := make([]string, len(body.Preferences))
	for i, p := range body.Preferences {
		ids[i] = p.ID
	}
	return ids, resp, nil
}
