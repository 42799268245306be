package projection

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestOversizedEventDoesNotStallItsPartition: an agent's event of almost NATS's max payload
// cannot be copied to the dead-letter stream with the dead letter's headers added. Its dead
// letter is then a reference to it (no data, Engram-Dlq-Omitted), and the tenant's next event
// is applied: one event does not stop a partition (issue 12, finding 3).
func TestOversizedEventDoesNotStallItsPartition(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, nc, js := testenv.NATS(t)
	d := testNeo4j(t)
	a := newTenant(t, "huge")
	var sc scope
	sc.add(a)
	cleanupScope(t, d, &sc)
	group := testGroup(t, "huge")
	cleanupCheckpoints(t, d, group)
	startProjector(t, testConfig(group), d, js)

	pub := newPublished()
	huge := bytes.Repeat([]byte("x"), int(nc.MaxPayload())-256)
	bad := publishRaw(ctx, t, js, pub, a.owner, "user_upserted", nil, huge)
	publishEvents(ctx, t, js, pub, &events.Event{ID: events.NewID(), Source: "/engram/test", User: a.user, Time: time.Now().UTC(),
		Data: events.UserUpserted{UserID: events.UserID(a.user), Identifier: a.user}})
	waitCaughtUp(ctx, t, d, group, pub, time.Minute)

	if n := value[int64](ctx, t, d, "MATCH (u:User {identifier: $id}) RETURN count(u) AS v", map[string]any{"id": a.user}); n != 1 {
		t.Errorf("the event after the oversized one was not applied: %d users", n)
	}
	var found bool
	for _, m := range deadLetters(ctx, t, js) {
		if m.Headers().Get(HeaderDlqSeq) != strconv.FormatUint(bad, 10) {
			continue
		}
		found = true
		if m.Headers().Get(HeaderDlqOmitted) != "event" || len(m.Data()) != 0 || m.Headers().Get(HeaderDlqReason) != string(ReasonUndecodable) {
			t.Errorf("dead letter of the oversized event: omitted %q, %d bytes of data, reason %q",
				m.Headers().Get(HeaderDlqOmitted), len(m.Data()), m.Headers().Get(HeaderDlqReason))
		}
	}
	if !found {
		t.Errorf("no dead letter for the oversized event at %d", bad)
	}
}
