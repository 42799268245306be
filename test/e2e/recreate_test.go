package e2e

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/audit"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/replay"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// httpWrite is one write of the writer through the ingestor: when it was sent and what came
// back.
type httpWrite struct {
	sent time.Time
	seq  uint64
	err  error
}

// TestErasureRaceWithWriters is the race of issue 20: an agent writes every few milliseconds,
// through the ingestor and straight over NATS, while the user is erased. Through the ingestor
// every write sent after the erasure's 202 is refused with 410; over NATS the writes are stored
// but dropped: their fate is refused (user_erased), the client's WaitApplied says ErrGone,
// memctl audit marks them, nothing of the user is projected and nothing is dead-lettered. A
// one-tenant replay with the refused writes still in the log gives the same (empty) graph.
// Then the user is re-created: the refused writes are purged from the log, writes are accepted
// and projected again, and a replay gives the live graph.
func TestErasureRaceWithWriters(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	d := testenv.Neo4j(t)
	user := testenv.User(t, "race")
	t.Cleanup(func() { testenv.Cleanup(t, d, user) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(stack.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	agent := stream.NewPublisher(js, 5*time.Second) // an agent over NATS: no ingestor in the way
	ctx := t.Context()
	tok, _ := events.TenantToken(user)
	if _, err := c.Users.UpsertUser(ctx, user, client.WithAttributes(map[string]any{"email": user})); err != nil {
		t.Fatal(err)
	}

	// The writers, every 3 ms each, until stop.
	stop := make(chan struct{})
	var mu sync.Mutex
	var viaHTTP []httpWrite
	var viaNATS []client.Receipt
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			w := httpWrite{sent: time.Now()}
			m, err := c.ShortTerm.AddMessage(ctx, "s1", "user", "over http", client.ForUser(user))
			w.err = err
			if err == nil {
				w.seq = m.Receipt.Sequence
			}
			mu.Lock()
			viaHTTP = append(viaHTTP, w)
			mu.Unlock()
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			ev := &events.Event{ID: events.NewID(), Source: "/engram/agent", User: user, Time: time.Now().UTC(),
				Data: events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(user, "s2"),
					SessionID: "s2", Role: "user", Content: "over nats"}}
			st, err := agent.Publish(ctx, ev)
			if err != nil {
				t.Errorf("agent publish: %v", err)
				return
			}
			mu.Lock()
			viaNATS = append(viaNATS, client.Receipt{EventID: ev.ID, User: user, Sequence: st.Sequence})
			mu.Unlock()
		}
	})
	time.Sleep(150 * time.Millisecond)
	erased, err := c.Users.EraseUser(ctx, user, client.WithReason("race"))
	if err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Through the ingestor: 410 for every write sent after the 202, with when and how.
	var gone, storedAfter int
	for _, w := range viaHTTP {
		switch {
		case w.sent.After(answered) && !errors.Is(w.err, client.ErrGone):
			t.Errorf("a write sent %s after the erasure's 202 answered %v, want ErrGone", w.sent.Sub(answered), w.err)
		case errors.Is(w.err, client.ErrGone):
			gone++
			var apiErr *client.APIError
			if !errors.As(w.err, &apiErr) || apiErr.Status != 410 || !strings.Contains(apiErr.Msg, "was erased at") ||
				!strings.Contains(apiErr.Msg, "POST /v1/users/{identifier}/recreate") {
				t.Errorf("410 without when and how: %v", w.err)
			}
		case w.err != nil:
			t.Errorf("write through the ingestor: %v", w.err)
		case w.seq > erased.Sequence:
			storedAfter++ // checked just before the erasure, stored after it: dropped below
		}
	}
	if gone == 0 {
		t.Fatal("no write through the ingestor was refused: the race did not happen")
	}
	// Over NATS: stored, dropped; the fate says so.
	var refused []client.Receipt
	for _, r := range viaNATS {
		if r.Sequence > erased.Sequence {
			refused = append(refused, r)
		}
	}
	if len(refused) == 0 {
		t.Fatal("no write over NATS after the tombstone: the race did not happen")
	}
	for _, r := range refused {
		f, err := c.WaitApplied(ctx, r)
		var ge *client.GoneError
		if !errors.Is(err, client.ErrGone) || !errors.As(err, &ge) || f.Status != client.FateRefused || f.Reason != "user_erased" {
			t.Fatalf("fate of a write over NATS after the erasure: %+v, %v; want refused (user_erased), ErrGone", f, err)
		}
	}
	last := refused[len(refused)-1].Sequence
	// Nothing of the user in the graph once the projector passed the last write, no dead letter.
	if _, err := c.Users.GetUser(ctx, user, client.AtLeast(last)); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the erased user after the writes: %v, want ErrNotFound", err)
	}
	owned := func() fingerprint.Fingerprint {
		f, err := fingerprint.Of(ctx, d, "", fingerprint.Scope{Owners: []string{tok}})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := owned(); f.Nodes != 0 {
		t.Fatalf("the erased user owns %s after writes following the erasure", f)
	}
	dlq, err := js.Stream(ctx, stream.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := dlq.Info(ctx, jetstream.WithSubjectFilter("dlq.mem."+tok+".>")); err != nil || len(info.State.Subjects) != 0 {
		t.Fatalf("dead letters of the erased user: %v, %v", info, err)
	}
	// No data key of the erased user survives the race (crypto-shredding): not the one of
	// their life before, nor one a write racing the erasure made (ingest.NewRing).
	if _, err := keys.NewKV(js).Get(ctx, user); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("the erased user's data key after the race: %v, want ErrNotFound", err)
	}
	// memctl audit marks them refused.
	entries, err := audit.Read(ctx, js, user)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.MarkFates(ctx, js, user, "", audit.Checkpoint{}, entries); err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, e := range entries {
		if e.Sequence > erased.Sequence && (e.Fate != audit.FateRefused || e.Reason != audit.RefusedErased) {
			t.Errorf("audit entry %d after the tombstone: %s:%s, want refused:user_erased", e.Sequence, e.Fate, e.Reason)
		}
		if e.Fate == audit.FateRefused {
			marked++
		}
	}
	if marked != len(refused)+storedAfter {
		t.Errorf("audit marks %d entries refused, want %d", marked, len(refused)+storedAfter)
	}
	// A replay of the tenant, with the refused writes in the log, projects nothing of them.
	if _, err := replay.Run(ctx, d, js, replay.Options{User: user, MultiTenant: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	if f := owned(); f.Nodes != 0 {
		t.Fatalf("replay projected the refused writes: %s", f)
	}

	// Re-creation: the refused writes leave the log, the tombstone stays; writes are welcome.
	again, err := c.Users.RecreateUser(ctx, user, client.WithReason("signed up again"))
	if err != nil || again.Sequence <= last {
		t.Fatalf("re-creation: %+v, %v", again, err)
	}
	kinds := tenantKinds(ctx, t, js, user)
	if len(kinds) != 2 || kinds[events.KindUserErased] != 1 || kinds[events.KindUserRecreated] != 1 {
		t.Errorf("after the re-creation the user's subjects hold %v, want the tombstone and the re-creation", kinds)
	}
	if _, err := c.Fate(ctx, refused[0]); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("fate of a refused write after the re-creation's purge: %v, want ErrNotFound", err)
	}
	m, err := c.ShortTerm.AddMessage(ctx, "s1", "user", "welcome back", client.ForUser(user))
	if err != nil {
		t.Fatalf("write after the re-creation: %v", err)
	}
	ev := &events.Event{ID: events.NewID(), Source: "/engram/agent", User: user, Time: time.Now().UTC(),
		Data: events.PreferenceAdded{PreferenceID: events.NewID(), Category: "food", Preference: "tea"}}
	st, err := agent.Publish(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []client.Receipt{m.Receipt, {EventID: ev.ID, User: user, Sequence: st.Sequence}} {
		if f, err := c.WaitApplied(ctx, r); err != nil || f.Status != client.FateApplied {
			t.Fatalf("fate of a write after the re-creation: %+v, %v", f, err)
		}
	}
	u, err := c.Users.GetUser(ctx, user, client.AtLeast(st.Sequence))
	if err != nil || len(u.Attributes) != 0 && string(u.Attributes) != "{}" {
		t.Fatalf("re-created user: %+v, %v; want a user without attributes", u, err)
	}
	page, err := c.ShortTerm.GetMessages(ctx, user, "s1")
	if err != nil || len(page.Messages) != 1 || page.Messages[0].Content != "welcome back" {
		t.Fatalf("messages after the re-creation: %+v, %v; want only the one written after it", page, err)
	}
	live := owned()
	if _, err := replay.Run(ctx, d, js, replay.Options{User: user, MultiTenant: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got := owned(); !got.Equal(live) {
		t.Fatalf("replay of the re-created user differs from the live graph:\n%s", fingerprint.Diff(live, got, 10))
	}
}

// tenantKinds counts the stored messages of user by kind.
func tenantKinds(ctx context.Context, t *testing.T, js jetstream.JetStream, user string) map[events.Kind]uint64 {
	t.Helper()
	filter, _ := events.TenantSubjects(user)
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	out := map[events.Kind]uint64{}
	for subj, n := range info.State.Subjects {
		_, k, _ := events.ParseSubject(subj)
		out[k] += n
	}
	return out
}
