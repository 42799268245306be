package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestGroupCommitGivesTheGraphOfSeparateTransactions projects a mixed load of many tenants
// (erasures included) with group commit (one transaction in flight, small batches, so the
// partitions ready at once share transactions) and compares the graph with a projection of
// the same events by a group whose partitions each commit alone.
func TestGroupCommitGivesTheGraphOfSeparateTransactions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, js := testenv.NATS(t)
	d := testNeo4j(t)
	var sc scope
	var tenants []tenant
	for i := range 16 {
		tenants = append(tenants, newTenant(t, fmt.Sprintf("group-%d", i)))
	}
	sc.add(tenants...)
	sc.tools = []string{"group-tool-" + events.NewID(), "group-tool2-" + events.NewID()}
	cleanupScope(t, d, &sc)

	pub := newPublished()
	evs := genLoad(tenants, sc.tools, 2000, uint64(time.Now().UnixNano()), loadOptions{erase: true})
	publishEvents(ctx, t, js, pub, evs...)

	group := testGroup(t, "group")
	cleanupCheckpoints(t, d, group)
	cfg := testConfig(group)
	cfg.BatchSize, cfg.InFlight = 20, 1
	_, reg, stop := startProjector(t, cfg, d, js)
	waitCaughtUp(ctx, t, d, group, pub, 2*time.Minute)
	stop()
	txs, parts := histogram(t, reg, "engram_projector_transaction_partitions")
	if txs == 0 || parts <= txs {
		t.Fatalf("%v transactions over %v partitions: no transaction combined partitions", txs, parts)
	}
	t.Logf("%v transactions, %.1f partitions each on average", txs, parts/txs)
	got := fingerprintOf(ctx, t, d, sc)

	purge(ctx, t, d, sc)
	alone := testGroup(t, "alone")
	cleanupCheckpoints(t, d, alone)
	acfg := testConfig(alone)
	acfg.BatchSize, acfg.InFlight = 20, 0
	_, areg, astop := startProjector(t, acfg, d, js)
	waitCaughtUp(ctx, t, d, alone, pub, 2*time.Minute)
	astop()
	if n, sum := histogram(t, areg, "engram_projector_transaction_partitions"); n == 0 || sum != n {
		t.Errorf("without group commit: %v transactions over %v partitions", n, sum)
	}
	if err := fingerprint.Compare(fingerprintOf(ctx, t, d, sc), got, 20); err != nil {
		t.Fatal(err)
	}
}

// histogram returns the sample count and sum of a histogram of reg.
func histogram(t testing.TB, reg *prometheus.Registry, name string) (count, sum float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				count += float64(h.GetSampleCount())
				sum += h.GetSampleSum()
			}
		}
	}
	return count, sum
}

// TestGroupCommitRunsARefusedGroupAlone: when Neo4j refuses a combined transaction for an
// event's data, each partition runs again alone, so only the partition whose event is at
// fault sees the refusal (and isolates its event); a step that isolates runs alone.
func TestGroupCommitRunsARefusedGroupAlone(t *testing.T) {
	t.Parallel()
	const bad = 2
	var mu sync.Mutex
	var calls [][]int
	c := newCommitter(1, 0, testLogger(t))
	c.commit = func(_ context.Context, members []*stepMember) error {
		var parts []int
		for _, m := range members {
			parts = append(parts, m.w.partition)
		}
		slices.Sort(parts)
		mu.Lock()
		calls = append(calls, parts)
		mu.Unlock()
		if slices.Contains(parts, bad) {
			return &neo4j.Neo4jError{Code: "Neo.ClientError.Schema.ConstraintValidationFailed", Msg: "made up"}
		}
		for _, m := range members {
			m.plan = &stepPlan{last: uint64(m.w.partition)}
		}
		return nil
	}
	// Hold the one slot so that the three steps queue, then let them run.
	c.slots <- struct{}{}
	errs := make([]error, 4)
	plans := make([]*stepPlan, 4)
	var wg sync.WaitGroup
	for part := 1; part <= 3; part++ {
		w := &worker{partition: part, consumer: fmt.Sprintf("g-p%d", part)}
		wg.Go(func() { plans[part], _, errs[part] = c.step(t.Context(), w, 10, func() {}) })
	}
	waitQueued(t, c, 3)
	<-c.slots
	wg.Wait()
	if len(calls) != 4 || !slices.Equal(calls[0], []int{1, 2, 3}) {
		t.Fatalf("transactions %v, want [1 2 3] then each alone", calls)
	}
	for part := 1; part <= 3; part++ {
		switch {
		case part == bad && !isRejection(errs[part]):
			t.Errorf("partition %d: %v, want the refusal", part, errs[part])
		case part != bad && (errs[part] != nil || plans[part] == nil || plans[part].last != uint64(part)):
			t.Errorf("partition %d: plan %+v, err %v", part, plans[part], errs[part])
		}
	}

	// A step of one event (isolation) runs alone even when others are queued with it.
	calls = nil
	c.slots <- struct{}{}
	var one, two error
	w1, w3 := &worker{partition: 1, consumer: "g-p1"}, &worker{partition: 3, consumer: "g-p3"}
	wg.Go(func() { _, _, one = c.step(t.Context(), w1, 1, func() {}) })
	wg.Go(func() { _, _, two = c.step(t.Context(), w3, 10, func() {}) })
	waitQueued(t, c, 2)
	<-c.slots
	wg.Wait()
	if one != nil || two != nil || len(calls) != 2 || len(calls[0]) != 1 || len(calls[1]) != 1 {
		t.Errorf("transactions %v, errors %v %v: want each alone", calls, one, two)
	}

	// A panic in a combined transaction reaches the workers as an error, and each runs alone.
	calls = nil
	panicky := c.commit
	c.commit = func(ctx context.Context, members []*stepMember) error {
		if len(members) > 1 {
			panic("made up")
		}
		return panicky(ctx, members)
	}
	c.slots <- struct{}{}
	var e1, e3 error
	wg.Go(func() { _, _, e1 = c.step(t.Context(), w1, 10, func() {}) })
	wg.Go(func() { _, _, e3 = c.step(t.Context(), w3, 10, func() {}) })
	waitQueued(t, c, 2)
	<-c.slots
	wg.Wait()
	if e1 != nil || e3 != nil || len(calls) != 2 {
		t.Errorf("after a panic: transactions %v, errors %v %v", calls, e1, e3)
	}
	if errors.Is(e1, errPanicked) {
		t.Error("panic reached a worker whose step succeeded alone")
	}
}

// waitQueued waits until n steps are queued on c.
func waitQueued(t *testing.T, c *committer, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c.mu.Lock()
		got := len(c.queue)
		c.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d steps queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCommitIntervalSharesATransaction: a step after an idle spell starts at once; a step
// within the commit interval of the last start waits out the rest of it, and the steps that
// become ready meanwhile share its transaction. A step that isolates an event is not spaced;
// a step whose context ends stops waiting.
func TestCommitIntervalSharesATransaction(t *testing.T) {
	t.Parallel()
	const interval = time.Hour // the pause below stands in for it: no test waits for a clock
	var mu sync.Mutex
	var calls [][]int
	c := newCommitter(1, interval, testLogger(t))
	c.commit = func(_ context.Context, members []*stepMember) error {
		var parts []int
		for _, m := range members {
			parts = append(parts, m.w.partition)
			m.plan = &stepPlan{last: uint64(m.w.partition)}
		}
		slices.Sort(parts)
		mu.Lock()
		calls = append(calls, parts)
		mu.Unlock()
		return nil
	}
	paused := make(chan time.Duration, 1)
	release := make(chan struct{})
	c.pause = func(ctx context.Context, d time.Duration) bool {
		paused <- d
		select {
		case <-release:
			return true
		case <-ctx.Done():
			return false
		}
	}
	worker := func(part int) *worker { return &worker{partition: part, consumer: fmt.Sprintf("g-p%d", part)} }

	// stepUnpaused runs a step of limit events that must not wait for the interval.
	stepUnpaused := func(what string, limit int) {
		t.Helper()
		if _, _, err := c.step(t.Context(), worker(1), limit, func() {}); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-paused:
			t.Fatalf("%s paused %s", what, d)
		default:
		}
	}

	// The first step: no transaction before it, so no pause.
	stepUnpaused("the first step", 10)

	// The next step comes within the interval: it pauses for (nearly) all of it, holding the
	// slot, and two steps that become ready meanwhile join its transaction.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Go(func() { _, _, errs[1] = c.step(t.Context(), worker(1), 10, func() {}) })
	if d := <-paused; d <= interval-time.Minute || d > interval {
		t.Fatalf("paused %s, want the rest of the %s interval", d, interval)
	}
	for _, part := range []int{2, 3} {
		wg.Go(func() { _, _, errs[part] = c.step(t.Context(), worker(part), 10, func() {}) })
	}
	waitQueued(t, c, 3)
	close(release)
	wg.Wait()
	if len(calls) != 2 || !slices.Equal(calls[0], []int{1}) || !slices.Equal(calls[1], []int{1, 2, 3}) {
		t.Fatalf("transactions %v, want [1] then [1 2 3]", calls)
	}
	for part, err := range errs {
		if err != nil {
			t.Errorf("partition %d: %v", part, err)
		}
	}

	// A step that isolates an event (one event per transaction) is not spaced.
	stepUnpaused("an isolating step", 1)

	// A step whose context ends while it waits for the interval returns at once.
	release = make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, _, err := c.step(ctx, worker(4), 10, func() {}); done <- err }()
	<-paused
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled step kept waiting for the commit interval")
	}
}
