package ctl

import (
	"bytes"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func TestAuditCommand(t *testing.T) {
	t.Parallel()
	srv, _, js := testenv.NATS(t)
	user := "sara@omg.com"
	pref := events.NewID()
	if _, err := stream.NewPublisher(js, 5*time.Second).Publish(t.Context(), &events.Event{
		ID: events.NewID(), Source: "/engram/test", User: user, Time: time.Now(), Actor: "agent-1",
		Data: events.PreferenceAdded{PreferenceID: pref, Category: "consultants", Preference: "Senior"},
	}); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	env := map[string]string{"NATS_URL": srv.ClientURL()}
	if code := Main(t.Context(), []string{"audit", "--user", user}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"preference_added", "/engram/test", "agent-1", pref, "Senior"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	errOut.Reset()
	if code := Main(t.Context(), []string{"audit"}, &out, &errOut, func(string) string { return "" }); code == 0 || !strings.Contains(errOut.String(), "--user is required") {
		t.Fatalf("missing --user: exit %d, %q", code, errOut.String())
	}
}

// TestAuditMarksFates: the audit says what became of every event — applied, dead-lettered
// with its reason (a supersede of a preference that does not exist: read at face value the
// audit said it happened), pending (the projector has not reached it), erased (before the
// user's tombstone) — and the preference history agrees on what took effect.
func TestAuditMarksFates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, _, js := testenv.NATS(t)
	d := testenv.Neo4j(t)
	user := testenv.User(t, "audit-fates")
	t.Cleanup(func() { testenv.Cleanup(t, d, user) })
	p, group := startProjector(t, js, d, "audit")
	send := commandPublisher(t, js)
	a, b := events.NewID(), events.NewID()
	seqA := send(&ingest.AddPreference{UserIdentifier: user, PreferenceID: a, Category: "c", Preference: "Junior"})
	seqB := send(&ingest.AddPreference{UserIdentifier: user, PreferenceID: b, Category: "c", Preference: "Senior"})
	seqOK := send(&ingest.SupersedePreference{UserIdentifier: user, OldID: a, NewID: b})
	seqBad := send(&ingest.SupersedePreference{UserIdentifier: user, OldID: b, NewID: events.NewID()})
	dlq, err := js.Stream(ctx, stream.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, dlq, 1)
	cp := group + "-p" + strconv.Itoa(events.Partition(tokenOf(t, user), natsdeploy.Partitions))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (c:EngramCheckpoint {name: $n}) RETURN c.stream_seq AS seq",
			map[string]any{"n": cp}, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Records) == 1 && res.Records[0].Values[0].(int64) >= int64(seqBad) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %s did not reach %d", cp, seqBad)
		}
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	seqPending := send(&ingest.AddPreference{UserIdentifier: user, PreferenceID: events.NewID(), Category: "c", Preference: "Later"})

	env := map[string]string{"NATS_URL": srv.ClientURL()}
	fates := func() map[uint64]string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := Main(ctx, []string{"audit", "--user", user, "--projector-group", group, "--json"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
			t.Fatalf("memctl audit: exit %d: %s", code, errOut.String())
		}
		got := map[uint64]string{}
		for line := range strings.Lines(out.String()) {
			var e struct {
				Sequence uint64 `json:"sequence"`
				Fate     string `json:"fate"`
				Reason   string `json:"reason"`
			}
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			got[e.Sequence] = e.Fate
			if e.Reason != "" {
				got[e.Sequence] += ":" + e.Reason
			}
		}
		return got
	}
	want := map[uint64]string{seqA: "applied", seqB: "applied", seqOK: "applied", seqBad: "dead_lettered:missing_reference", seqPending: "pending"}
	if got := fates(); !maps.Equal(got, want) {
		t.Errorf("fates %v, want %v", got, want)
	}

	// The history view shows what took effect: both preferences, the refused supersede nowhere.
	res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (p:Preference {owner: $o})-[s:SUPERSEDED_BY]->() RETURN count(s) AS n",
		map[string]any{"o": tokenOf(t, user)}, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.Records[0].Get("n"); n.(int64) != 1 {
		t.Errorf("%d supersedes in the graph, want the applied one", n)
	}

	// A tombstone the ingestor did not purge behind (published straight to the stream): the
	// events before it are erased; the dead letter stays what it was until the projector
	// applies the tombstone.
	tomb := send(&ingest.EraseUser{Identifier: user})
	want = map[uint64]string{seqA: "erased", seqB: "erased", seqOK: "erased", seqBad: "dead_lettered:missing_reference", seqPending: "erased", tomb: "pending"}
	if got := fates(); !maps.Equal(got, want) {
		t.Errorf("after the tombstone: fates %v, want %v", got, want)
	}
}

func tokenOf(t *testing.T, user string) string {
	t.Helper()
	tok, err := events.TenantToken(user)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
