package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestIsolationProperty: many users write; then randomized reads and writes pass other users'
// preference, entity, session, trace and step ids. No foreign record is ever returned, no edge
// ever joins two users' nodes, and a supersede naming a foreign preference is dead-lettered.
// Through HTTP with authentication on and off.
func TestIsolationProperty(t *testing.T) {
	t.Parallel()
	for _, authOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("auth=%v", authOn), func(t *testing.T) {
			t.Parallel()
			isolation(t, authOn)
		})
	}
}

type owned struct {
	prefs, entities, traces, steps []string
}

func isolation(t *testing.T, authOn bool) {
	secret := bytes.Repeat([]byte("isolation-"), 4)
	var env []string
	if authOn {
		f := filepath.Join(t.TempDir(), "hs256")
		if err := os.WriteFile(f, secret, 0o600); err != nil {
			t.Fatal(err)
		}
		env = []string{"AUTH_ENABLED=true", "AUTH_HS256_SECRET_FILE=" + f}
	}
	stack := testenv.StartStack(t, env...)
	d := testenv.Neo4j(t)
	const n = 6
	users := make([]string, n)
	clients := make([]*client.Client, n)
	for i := range users {
		users[i] = testenv.User(t, fmt.Sprintf("iso%d", i))
		opts := []client.Option{client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true)}
		if authOn {
			tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: users[i], Users: []string{users[i]}, Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeWrite}, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, client.WithBearerToken(tok))
		}
		c, err := client.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
	}
	t.Cleanup(func() { testenv.Cleanup(t, d, users...) })
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(uint64(len(users[0])), 7))
	ids := make([]owned, n)
	for round := 0; round < 4; round++ {
		for i, u := range users {
			c := clients[i]
			if _, err := c.ShortTerm.AddMessage(ctx, "shared-session-name", "user", fmt.Sprintf("%s says %d", u, round), client.ForUser(u)); err != nil {
				t.Fatal(err)
			}
			p, err := c.LongTerm.AddPreference(ctx, "c", fmt.Sprintf("pref %d of %s", round, u), client.ForUser(u),
				client.AppliesTo(client.EntityRef{Name: "Healthcare", Type: "Industry"}))
			if err != nil {
				t.Fatal(err)
			}
			ids[i].prefs = append(ids[i].prefs, p.ID)
			tr, err := c.Reasoning.StartTrace(ctx, "shared-session-name", "task", client.ForUser(u))
			if err != nil {
				t.Fatal(err)
			}
			st, err := c.Reasoning.AddStep(ctx, tr.ID, client.Thought("t"))
			if err != nil {
				t.Fatal(err)
			}
			ids[i].traces = append(ids[i].traces, tr.ID)
			ids[i].steps = append(ids[i].steps, st.ID)
		}
	}
	for i, u := range users {
		ps, err := clients[i].LongTerm.GetPreferencesFor(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			for _, e := range p.AppliesTo {
				ids[i].entities = append(ids[i].entities, e.ID)
			}
		}
	}
	mine := func(i int, id string) bool {
		for _, l := range [][]string{ids[i].prefs, ids[i].entities, ids[i].traces, ids[i].steps} {
			for _, x := range l {
				if x == id {
					return true
				}
			}
		}
		return false
	}
	pick := func(l []string) string { return l[rng.IntN(len(l))] }

	var foreignSupersedes int
	for k := 0; k < 60; k++ {
		a := rng.IntN(n)
		b := (a + 1 + rng.IntN(n-1)) % n
		c, ua := clients[a], users[a]
		switch rng.IntN(5) {
		case 0: // a trace of b's, read as a
			if tr, err := c.Reasoning.GetTrace(ctx, ua, pick(ids[b].traces)); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("%s read %s's trace: %+v, %v", ua, users[b], tr, err)
			}
		case 1: // b's entity id as applies_to
			ps, err := c.LongTerm.GetPreferencesFor(ctx, ua, client.AppliesToEntity(client.EntityRef{ID: pick(ids[b].entities)}), client.ActiveOnly(false))
			if err != nil || len(ps) != 0 {
				t.Fatalf("%s filtered by %s's entity: %+v, %v", ua, users[b], ps, err)
			}
		case 2: // the same session name: only a's own messages
			page, err := c.ShortTerm.GetMessages(ctx, ua, "shared-session-name", client.Limit(1000))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page.Messages {
				if !bytes.HasPrefix([]byte(m.Content), []byte(ua+" says")) {
					t.Fatalf("%s's session shows %q", ua, m.Content)
				}
			}
		case 3: // every record a reads is a's
			ps, err := c.LongTerm.GetPreferencesFor(ctx, ua, client.ActiveOnly(false))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if !mine(a, p.ID) {
					t.Fatalf("%s read preference %s that is not theirs", ua, p.ID)
				}
			}
			trs, err := c.Reasoning.ListTraces(ctx, ua)
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range trs {
				if !mine(a, tr.ID) {
					t.Fatalf("%s listed trace %s that is not theirs", ua, tr.ID)
				}
			}
		case 4: // supersede a's preference by b's (or b's by a's), as a
			old, repl := pick(ids[a].prefs), pick(ids[b].prefs)
			if rng.IntN(2) == 0 {
				old, repl = repl, old
			}
			if _, err := c.LongTerm.SupersedePreference(ctx, old, repl, client.ForUser(ua)); err != nil {
				t.Fatalf("supersede: %v", err)
			}
			foreignSupersedes++
		}
	}
	// Let the projector see every write, then check the graph.
	for i, u := range users {
		if _, err := clients[i].Users.UpsertUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if _, err := clients[i].LongTerm.GetPreferencesFor(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	owners := make([]any, n)
	for i, u := range users {
		owners[i], _ = events.TenantToken(u)
	}
	for _, label := range graph.OwnedLabels {
		res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (a:"+label+")-[r]-(b) WHERE a.owner IN $owners AND b.owner IS NOT NULL AND b.owner <> a.owner RETURN count(r) AS n",
			map[string]any{"owners": owners}, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
		if cnt, _ := res.Records[0].Get("n"); cnt != int64(0) {
			t.Fatalf("%d edges join a %s to another user's node", cnt, label)
		}
	}
	if foreignSupersedes > 0 {
		nc, err := nats.Connect(stack.NATSURL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		deadline := time.Now().Add(30 * time.Second)
		for {
			s, err := js.Stream(ctx, stream.DeadLetterStream)
			if err != nil {
				t.Fatal(err)
			}
			got := 0
			info := s.CachedInfo()
			for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
				m, err := s.GetMsg(ctx, seq)
				if err == nil && m.Header.Get(projection.HeaderDlqReason) == string(projection.ReasonForeignReference) {
					got++
				}
			}
			if got == foreignSupersedes {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d foreign supersedes, %d dead-lettered as foreign_reference", foreignSupersedes, got)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
