package projection

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// unapplied is the truth the lag metric must tell, computed another way than the collector
// does: the checkpoint read from Neo4j, and the pending count of a throw-away consumer of the
// partition that starts just above it.
func unapplied(ctx context.Context, t *testing.T, d neo4j.DriverWithContext, js jetstream.JetStream, group string, part int) uint64 {
	t.Helper()
	cp, err := ReadCheckpoint(ctx, d, "", CheckpointName(group, part))
	if err != nil {
		t.Fatal(err)
	}
	c, err := js.CreateConsumer(ctx, stream.MemoryStream, jetstream.ConsumerConfig{
		FilterSubject: PartitionFilter(part), DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: cp + 1,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = js.DeleteConsumer(context.WithoutCancel(ctx), stream.MemoryStream, c.CachedInfo().Name) }()
	return c.CachedInfo().NumPending
}

// lagOf reads the lag the collector reports for every partition (-1 where it reports none).
func lagOf(t *testing.T, reg *prometheus.Registry) map[int]float64 {
	t.Helper()
	out := map[int]float64{}
	for p := range natsdeploy.Partitions {
		out[p] = -1
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "engram_projector_lag_events" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "partition" {
					p, _ := strconv.Atoi(lp.GetValue())
					out[p] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// checkLag compares the collector with the truth once nothing moves (no projector runs, or
// everything is applied). A SIGKILLed projector's last transaction can still commit after the
// process is gone (its COMMIT was already in Neo4j's hands), so the comparison counts only when
// the checkpoints read before and after it are the same; otherwise it is made again.
func checkLag(ctx context.Context, t *testing.T, when string, reg *prometheus.Registry, d neo4j.DriverWithContext, js jetstream.JetStream, group string) uint64 {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		before := progress(ctx, t, d, group)
		got := lagOf(t, reg)
		want := make(map[int]uint64, natsdeploy.Partitions)
		var total uint64
		for p := range natsdeploy.Partitions {
			want[p] = unapplied(ctx, t, d, js, group, p)
			total += want[p]
		}
		if after := progress(ctx, t, d, group); after != before {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the checkpoints still move after 30s (%d, then %d)", when, before, after)
			}
			t.Logf("%s: the checkpoints moved during the comparison (%d, then %d); again", when, before, after)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		for p := range natsdeploy.Partitions {
			if got[p] != float64(want[p]) {
				t.Errorf("%s: partition %d: lag metric %v, stream and checkpoint say %d", when, p, got[p], want[p])
			}
		}
		return total
	}
}

// TestLagIsTheStreamsTruth: the lag metric is the number of the partition's events above its
// checkpoint, before any projector ran, after a projector was SIGKILLed mid-load (whatever it
// had received and not applied counts, what it had applied does not), and after a restarted one
// caught up.
func TestLagIsTheStreamsTruth(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _, js := testenv.NATS(t)
	d := testNeo4j(t)
	if err := stream.Ensure(ctx, js, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	var sc scope
	var tenants []tenant
	for i := range 24 {
		tenants = append(tenants, newTenant(t, fmt.Sprintf("lag-%d", i)))
	}
	sc.add(tenants...)
	sc.tools = []string{"lag-a-" + events.NewID()}
	cleanupScope(t, d, &sc)
	group := testGroup(t, "lag")
	cleanupCheckpoints(t, d, group)

	reg := prometheus.NewRegistry()
	reg.MustRegister(newLagCollector(group, AllPartitions(), d, "", js.Conn()))

	pub := newPublished()
	evs := genLoad(tenants, sc.tools, 2400, uint64(time.Now().UnixNano()), loadOptions{})
	publishEvents(ctx, t, js, pub, evs[:400]...)
	if n := checkLag(ctx, t, "before any projector", reg, d, js, group); n != 400 {
		t.Errorf("lag sums to %d before any projector ran, want the 400 events published", n)
	}

	p := startProcess(t, s.ClientURL(), group, 0)
	published := publishInBackground(ctx, t, js, pub, evs[400:])
	for deadline := time.Now().Add(time.Minute); progress(ctx, t, d, group) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	p.kill()
	<-published
	n := checkLag(ctx, t, "after a SIGKILL", reg, d, js, group)
	t.Logf("after the kill: %d events unapplied, checkpoints sum %d", n, progress(ctx, t, d, group))

	restarted := startProcess(t, s.ClientURL(), group, 1)
	waitCaughtUp(ctx, t, d, group, pub, 3*time.Minute)
	if n := checkLag(ctx, t, "after catch-up", reg, d, js, group); n != 0 {
		t.Errorf("%d events unapplied after catch-up", n)
	}
	// The process's own metric says the same.
	if got := restarted.metric(t, "engram_projector_lag_events"); got != 0 {
		t.Errorf("restarted projector reports a lag of %v after catch-up", got)
	}
	restarted.terminate(t)
}

// TestSurvivorTakesOver: of two projector processes, the one holding a partition is SIGKILLed
// (three times, the killed one restarted each time); the other applies the partition's next
// events, each exactly once and in order, and the graph equals a clean projection.
func TestSurvivorTakesOver(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _, js := testenv.NATS(t)
	d := testNeo4j(t)
	var sc scope
	var tenants []tenant
	for i := range 16 {
		tenants = append(tenants, newTenant(t, fmt.Sprintf("survivor-%d", i)))
	}
	sc.add(tenants...)
	sc.tools = []string{"survivor-a-" + events.NewID()}
	cleanupScope(t, d, &sc)
	group := testGroup(t, "survivor")
	cleanupCheckpoints(t, d, group)

	procs := []*process{startProcess(t, s.ClientURL(), group, 0), startProcess(t, s.ClientURL(), group, 1)}
	pub := newPublished()
	evs := genLoad(tenants, sc.tools, 1600, uint64(time.Now().UnixNano()), loadOptions{})
	chunk := len(evs) / 4
	publishEvents(ctx, t, js, pub, evs[:chunk]...)
	waitCaughtUp(ctx, t, d, group, pub, 2*time.Minute)

	victim := tenants[0]
	part := strconv.Itoa(events.Partition(victim.owner, natsdeploy.Partitions))
	for round := range 3 {
		holder := -1
		for deadline := time.Now().Add(30 * time.Second); holder < 0 && time.Now().Before(deadline); {
			for i, p := range procs {
				if p.metric(t, `engram_projector_partition_active{partition="`+part+`"}`) == 1 {
					holder = i
				}
			}
			if holder < 0 {
				// A partition is pinned at its first delivery: give it one.
				publishEvents(ctx, t, js, pub, &events.Event{ID: events.NewID(), Source: "/engram/test", User: victim.user,
					Time: time.Now().UTC(), Data: events.UserUpserted{UserID: events.UserID(victim.user), Identifier: victim.user}})
				time.Sleep(100 * time.Millisecond)
			}
		}
		if holder < 0 {
			t.Fatalf("round %d: no process reports holding partition %s", round, part)
		}
		procs[holder].kill()
		killed := time.Now()
		seqs := publishEvents(ctx, t, js, pub, evs[chunk*(round+1):chunk*(round+2)]...)
		waitCaughtUp(ctx, t, d, group, pub, 2*time.Minute)
		t.Logf("round %d: process %d killed; %d events up to %d applied by the survivor %s after the kill",
			round, holder, len(seqs), seqs[len(seqs)-1], time.Since(killed).Round(time.Millisecond))
		procs[holder] = startProcess(t, s.ClientURL(), group, 2+round*2+holder)
	}
	for _, p := range procs {
		p.waitReady(t)
		p.terminate(t)
	}
	got := fingerprintOf(ctx, t, d, sc)
	clean := cleanProjection(t, sc, d, js, pub)
	if err := fingerprint.Compare(clean, got, 30); err != nil {
		t.Fatalf("projection with take-overs differs from a clean one: %v", err)
	}
}
