package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/projection"
)

// groupProfile is the tenant group of the profiling runs.
const groupProfile = "pp"

// profileEvents bounds the events of a profiling run of the projection.
const profileEvents = 20_000

// scrape reads a Prometheus text endpoint and sums every sample of each metric name
// (labels summed away).
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, clip(string(b), 200))
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name := line[:sp]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		out[name] += v
		if series := line[:sp]; series != name {
			out[series] = v // labelled series also under their full name (histogramQuantile)
		}
	}
	return out, sc.Err()
}

// histogramQuantile estimates the q-quantile of what a histogram observed between two scrapes
// (the series of its buckets whose labels begin with labels, e.g. `until="committed"`), by
// linear interpolation inside the bucket as Prometheus's histogram_quantile does; false when
// it observed nothing. An estimate in the last finite bucket's range or beyond is that bound.
func histogramQuantile(before, after map[string]float64, name, labels string, q float64) (float64, bool) {
	prefix := name + "_bucket{" + labels + ","
	type bucket struct{ le, n float64 }
	var bs []bucket
	for k, v := range after {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		i := strings.Index(k, `le="`)
		if i < 0 {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(k[i+4:], `"}`), 64)
		if err != nil {
			continue
		}
		bs = append(bs, bucket{le, v - before[k]})
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	if len(bs) == 0 || bs[len(bs)-1].n <= 0 {
		return 0, false
	}
	rank := q * bs[len(bs)-1].n
	lower, below := 0.0, 0.0
	for _, b := range bs {
		if b.n >= rank {
			if math.IsInf(b.le, 1) {
				return lower, true
			}
			if b.n == below {
				return b.le, true
			}
			return lower + (b.le-lower)*(rank-below)/(b.n-below), true
		}
		lower, below = b.le, b.n
	}
	return lower, true
}

// projectorBreakdown says, from the projector's own metrics over a projection, how its time was
// spent: partition steps, their size, their duration, the transactions they shared (group
// commit), retries.
func projectorBreakdown(before, after map[string]float64, wall time.Duration) string {
	d := func(k string) float64 { return after[k] - before[k] }
	steps := d("engram_projector_batch_size_count")
	if steps <= 0 {
		return ""
	}
	events := d("engram_projector_batch_size_sum")
	stepSeconds := d("engram_projector_apply_duration_seconds_sum")
	txs, parts := d("engram_projector_transaction_partitions_count"), d("engram_projector_transaction_partitions_sum")
	shared := ""
	if txs > 0 {
		shared = fmt.Sprintf("%.0f transactions of %.1f partitions and %.0f events on average; ", txs, parts/txs, events/txs)
	}
	delays := ""
	for _, until := range []string{"received", "committed"} {
		p50, ok1 := histogramQuantile(before, after, "engram_projector_event_delay_seconds", `until="`+until+`"`, 0.5)
		p99, ok2 := histogramQuantile(before, after, "engram_projector_event_delay_seconds", `until="`+until+`"`, 0.99)
		if ok1 && ok2 {
			delays += fmt.Sprintf("; from stored to %s p50 %.1f / p99 %.1f ms", until, 1000*p50, 1000*p99)
		}
	}
	return fmt.Sprintf("projector metrics: %.0f partition steps of %.0f events on average, %.0f ms each from ready to commit on average; "+
		"%s%.1f partitions waiting or in a transaction on average; %.0f retries; %.0f dead-lettered%s",
		steps, events/steps, 1000*stepSeconds/steps, shared, stepSeconds/wall.Seconds(),
		d("engram_projector_retries_total"), d("engram_projector_dead_lettered_total"), delays)
}

// profileProjection runs the projector's code in the driver's process over a fresh set of
// events, with a CPU profile, when the projection missed its target. It needs the run's own
// NATS: a projector group of the driver's projects everything in the stream.
func (r *runner) profileProjection(ctx context.Context, n int) error {
	if r.cfg.Endpoints.NATSURL != "" && !r.cfg.Endpoints.NATSPrivate {
		return fmt.Errorf("%w: the stream belongs to a running stack", ErrUnavailable)
	}
	// The subprocess projector applied everything; it stops so the profile has the machine,
	// and the events it applied leave the stream so the profiling group does not apply them
	// again. Freshness starts it again.
	r.quiesceProjector(ctx)
	if err := r.purge(ctx, groupProjection); err != nil {
		return err
	}
	n = min(n, profileEvents)
	common := app.Common{Neo4j: r.cfg.Endpoints.Neo4j, MultiTenant: true, PublishTimeout: 5 * time.Second}
	cfg := projection.DefaultConfig(common)
	cfg.Group = r.tenants.OwnerPrefix() + "prof"
	p, err := projection.New(cfg, r.stack.Neo4j, r.stack.JS,
		projection.WithLogger(slog.New(slog.DiscardHandler)), projection.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		return err
	}
	r.profiledProjection = true
	if err := p.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = p.Stop(sctx)
	}()
	evs := Mix(r.tenants, groupProfile, n, time.Now().UTC().Add(-3*time.Hour))
	r.written.used(groupProfile, MixUsers(n))
	var perr error
	err = r.cpuProfile(ctx, ScenarioProjection, fmt.Sprintf("projection.Projector in the driver's process, %d events (Neo4j's own time is in its JVM, not here)", n), func(ctx context.Context) {
		_, perr = r.project(ctx, evs, "profile", cfg.Group)
	})
	if err != nil {
		return err
	}
	return perr
}
