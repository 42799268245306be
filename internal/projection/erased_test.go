package projection

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestWritesAfterErasureAreDropped: events of a user stored after the user's tombstone and
// before the re-creation that follows it are acknowledged and dropped — nothing applied, no
// dead letter, counted — by a projector that applied the tombstone itself and by a fresh one
// that meets the tenant first in the middle of the erased stretch (it reads the tombstone and
// the re-creations from the log); the re-creation creates the user anew, without attributes,
// and the writes after it are applied.
func TestWritesAfterErasureAreDropped(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, js := testenv.NATS(t)
	d := testNeo4j(t)
	victim := newTenant(t, "dropped")
	var sc scope
	sc.add(victim)
	cleanupScope(t, d, &sc)
	group := testGroup(t, "dropped")
	cleanupCheckpoints(t, d, group)
	pub := newPublished()
	ev := func(data any) *events.Event {
		return &events.Event{ID: events.NewID(), Source: "/engram/test", User: victim.user, Time: time.Now().UTC(), Data: data}
	}
	msg := func(content string) *events.Event {
		return ev(events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(victim.user, "s"),
			SessionID: "s", Role: "user", Content: content})
	}
	nodes := func(cypher string) int64 {
		return value[int64](ctx, t, d, cypher, map[string]any{"owner": victim.owner})
	}
	skipped := `engram_projector_events_skipped_total`

	// The running projector applies the tombstone, then drops what follows it.
	_, reg, stop := startProjector(t, testConfig(group), d, js)
	publishEvents(ctx, t, js, pub,
		ev(events.UserUpserted{UserID: events.UserID(victim.user), Identifier: victim.user, Attributes: map[string]any{"role": "old"}}),
		msg("before"), ev(events.UserErased{Identifier: victim.user}), msg("after the tombstone"),
		ev(events.PreferenceSuperseded{OldID: events.NewID(), NewID: events.NewID()})) // poison: no dead letter either
	waitCaughtUp(ctx, t, d, group, pub, 30*time.Second)
	if n := nodes("MATCH (n {owner: $owner}) RETURN count(n) AS v"); n != 0 {
		t.Errorf("%d nodes of the erased user after writes following the tombstone", n)
	}
	if got := skippedReaches(t, reg, 2); got != 2 {
		t.Errorf("%s{cause=%q} = %v, want 2", skipped, skippedErased, got)
	}
	stop()

	// A fresh projector meets the tenant first at a dropped write: the log says it lies
	// between the tombstone and the first re-creation after it.
	publishEvents(ctx, t, js, pub, msg("still after the tombstone"), ev(events.UserRecreated{UserID: events.UserID(victim.user), Identifier: victim.user}),
		msg("welcome back"))
	_, reg, _ = startProjector(t, testConfig(group), d, js)
	waitCaughtUp(ctx, t, d, group, pub, 30*time.Second)
	if got := skippedReaches(t, reg, 1); got != 1 {
		t.Errorf("fresh projector: %s{cause=%q} = %v, want 1", skipped, skippedErased, got)
	}
	if n := nodes("MATCH (u:User {owner: $owner}) WHERE u.attributes_json IS NULL OR u.attributes_json = '{}' RETURN count(u) AS v"); n != 1 {
		t.Errorf("%d re-created users without attributes, want 1", n)
	}
	if n := nodes("MATCH (m:Message {owner: $owner}) WHERE m.content = 'welcome back' RETURN count(m) AS v"); n != 1 {
		t.Errorf("%d messages written after the re-creation, want 1", n)
	}
	if n := nodes("MATCH (m:Message {owner: $owner}) RETURN count(m) AS v"); n != 1 {
		t.Errorf("%d messages of the re-created user, want only the one after the re-creation", n)
	}
	if letters := deadLetters(ctx, t, js); len(letters) != 0 {
		t.Errorf("%d dead letters, want none: a dropped write is not dead-lettered", len(letters))
	}
}

// skippedReaches reads the projector's count of events dropped for an erasure until it reaches
// want (or 5 s pass): the counter moves after the step's commit, so a test that saw the
// checkpoint may read it a moment early.
func skippedReaches(t *testing.T, reg *prometheus.Registry, want float64) float64 {
	t.Helper()
	labels := map[string]string{"cause": skippedErased}
	got := counter(t, reg, "engram_projector_events_skipped_total", labels)
	for deadline := time.Now().Add(5 * time.Second); got < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		got = counter(t, reg, "engram_projector_events_skipped_total", labels)
	}
	return got
}
