package projection

import (
	"fmt"
	"testing"
	"time"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestStepPlansAgainFromAMovedCheckpoint: a worker plans its step from where its last commit
// left the checkpoint, before it locks it (lockAndPlan). When the checkpoint moved meanwhile
// (another process applied the partition), the step plans again from the checkpoint it
// locked: the events that checkpoint covers are acknowledged and not applied, the others are
// applied once, and the checkpoint ends at the partition's last event. Afterwards the worker
// plans ahead again, from the checkpoint it committed.
func TestStepPlansAgainFromAMovedCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, js := testenv.NATS(t)
	d := testNeo4j(t)
	u := newTenant(t, "moved")
	var sc scope
	sc.add(u)
	cleanupScope(t, d, &sc)
	part := events.Partition(u.owner, natsdeploy.Partitions)
	group := testGroup(t, "moved")
	cleanupCheckpoints(t, d, group)
	cfg := testConfig(group)
	cfg.Partitions = []int{part}
	_, reg, _ := startProjector(t, cfg, d, js)

	base := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	ids := make([]string, 10)
	pref := func(i int) *events.Event {
		ids[i] = events.NewID()
		return &events.Event{ID: events.NewID(), Source: "/engram/test", User: u.user, Time: base.Add(time.Duration(i) * time.Second),
			Data: events.PreferenceAdded{PreferenceID: ids[i], Category: "c", Preference: fmt.Sprintf("p%d", i)}}
	}
	pub := newPublished()
	first := publishEvents(ctx, t, js, pub, pref(0))
	waitCaughtUp(ctx, t, d, group, pub, time.Minute)

	// Another process applied the next three events of the partition (its checkpoint says
	// so; this test's stream holds only its own events, so they get the next sequences).
	name := CheckpointName(group, part)
	query(ctx, t, d, `MATCH (c:EngramCheckpoint {name: $name}) SET c.stream_seq = $seq`,
		map[string]any{"name": name, "seq": int64(first[0] + 3)})
	evs := []*events.Event{pref(1), pref(2), pref(3), pref(4), pref(5), pref(6)}
	seqs := publishEvents(ctx, t, js, pub, evs...)
	if seqs[2] != first[0]+3 {
		t.Fatalf("sequences %v after %d: the stream holds events of others", seqs, first[0])
	}
	waitCaughtUp(ctx, t, d, group, pub, time.Minute)

	// And the next step is planned from the checkpoint this worker committed.
	seqs = append(seqs, publishEvents(ctx, t, js, pub, pref(7), pref(8))...)
	waitCaughtUp(ctx, t, d, group, pub, time.Minute)

	for i, id := range ids[:9] {
		n := value[int64](ctx, t, d, `MATCH (p:Preference {id: $id}) RETURN count(p) AS v`, map[string]any{"id": id})
		want := int64(1)
		if i >= 1 && i <= 3 {
			want = 0 // covered by the moved checkpoint: acknowledged, not applied
		}
		if n != want {
			t.Errorf("preference %d: %d nodes, want %d", i, n, want)
		}
	}
	if got, err := ReadCheckpoint(ctx, d, "", name); err != nil || got != seqs[len(seqs)-1] {
		t.Errorf("checkpoint %d (%v), want %d", got, err, seqs[len(seqs)-1])
	}
	if n := counter(t, reg, "engram_projector_events_applied_total", nil); n != 6 {
		t.Errorf("%v events applied, want 6 (the first, three after the moved checkpoint, two more)", n)
	}
}
