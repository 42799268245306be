package projection

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestErasureLeavesNoDeadLetters is the poison-before-erase race of issue 20: events of a user
// stored before the erasure's tombstone are dead-lettered by the projector after the
// ingestor's purge ran (it had fetched them already), and the dead letters, identifier and
// all, outlived the erasure. Here the tombstone is published straight to the stream (no
// ingestor purge at all), after one poison event the projector dead-lettered in an earlier
// transaction and one it meets in the tombstone's own: neither may remain. A poison event of
// the user after the tombstone is dropped without a dead letter (erased.go), and another
// tenant's poison is none of the erasure's business: it keeps its dead letter.
func TestErasureLeavesNoDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, js := testenv.NATS(t)
	d := testNeo4j(t)
	victim, keeper := newTenant(t, "erased-dlq"), newTenant(t, "kept-dlq")
	var sc scope
	sc.add(victim, keeper)
	cleanupScope(t, d, &sc)
	group := testGroup(t, "erased-dlq")
	cleanupCheckpoints(t, d, group)

	pub := newPublished()
	ev := func(user string, data any) *events.Event {
		return &events.Event{ID: events.NewID(), Source: "/engram/test", User: user, Time: time.Now().UTC(), Data: data}
	}
	poison := func(u tenant) *events.Event { // a supersede of preferences that do not exist
		return ev(u.user, events.PreferenceSuperseded{OldID: events.NewID(), NewID: events.NewID()})
	}
	letterSeqs := func() map[uint64]string {
		out := map[uint64]string{}
		for _, m := range deadLetters(ctx, t, js) {
			seq, err := strconv.ParseUint(m.Headers().Get(HeaderDlqSeq), 10, 64)
			if err != nil {
				t.Fatalf("dead letter without %s", HeaderDlqSeq)
			}
			out[seq] = m.Subject()
		}
		return out
	}

	// The projector's log at info level, which must not name the erased user (issue 20).
	var logs testenv.SyncBuffer
	start := func() func() {
		p, err := New(testConfig(group), d, js, WithRegisterer(prometheus.NewRegistry()),
			WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		stop := func() {
			once.Do(func() {
				if err := p.Stop(context.WithoutCancel(ctx)); err != nil {
					t.Errorf("stop projector: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}

	// An earlier transaction dead-letters the user's first poison event.
	stop := start()
	early := publishEvents(ctx, t, js, pub,
		ev(victim.user, events.UserUpserted{UserID: events.UserID(victim.user), Identifier: victim.user}),
		poison(victim))[1]
	waitCaughtUp(ctx, t, d, group, pub, 30*time.Second)
	if _, ok := letterSeqs()[early]; !ok {
		t.Fatalf("the early poison event %d was not dead-lettered: %v", early, letterSeqs())
	}
	stop()

	// With the projector stopped, the next events wait in the stream and reach it together:
	// one more poison event of the user, the tombstone, a poison event after it, and another
	// tenant's.
	seqs := publishEvents(ctx, t, js, pub,
		poison(victim), ev(victim.user, events.UserErased{Identifier: victim.user}), poison(victim), poison(keeper))
	late, tombstone, after, other := seqs[0], seqs[1], seqs[2], seqs[3]
	start()
	waitCaughtUp(ctx, t, d, group, pub, 30*time.Second)

	got := letterSeqs()
	for _, seq := range []uint64{early, late} {
		if subj, ok := got[seq]; ok {
			t.Errorf("the dead letter of event %d, stored before the tombstone %d, outlived the erasure (%s)", seq, tombstone, subj)
		}
	}
	if subj, ok := got[after]; ok {
		t.Errorf("event %d, stored after the tombstone %d, was dead-lettered (%s): it is dropped", after, tombstone, subj)
	}
	if _, ok := got[other]; !ok || len(got) != 1 {
		t.Errorf("dead letters %v, want exactly that of %d", got, other)
	}
	if n := value[int64](ctx, t, d, "MATCH (n {owner: $owner}) RETURN count(n) AS v", map[string]any{"owner": victim.owner}); n != 0 {
		t.Errorf("%d nodes of the erased user remain", n)
	}
	out := logs.String()
	if !strings.Contains(out, "event dead-lettered") {
		t.Fatalf("the projector logged no dead letter at info level:\n%s", out)
	}
	for _, s := range []string{victim.user, victim.owner, keeper.user, keeper.owner} {
		if strings.Contains(out, s) {
			t.Errorf("the projector's info log names %q:\n%s", s, out)
		}
	}
}
