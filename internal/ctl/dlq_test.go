package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestDLQCommands: a poison message and a supersede that arrives before its preferences are
// dead-lettered by the projector; memctl dlq lists and shows them, drops the poison, and
// retries the supersede once its preferences exist, which then applies.
func TestDLQCommands(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, _, js := testenv.NATS(t)
	d := testenv.Neo4j(t)
	user := testenv.User(t, "dlq")
	t.Cleanup(func() { testenv.Cleanup(t, d, user) })
	startProjector(t, js, d, "dlq")

	tok, _ := events.TenantToken(user)
	if _, err := js.Publish(ctx, "mem."+tok+".message_added", []byte("poison")); err != nil {
		t.Fatal(err)
	}
	send := commandPublisher(t, js)
	oldID, newID := events.NewID(), events.NewID()
	send(&ingest.SupersedePreference{UserIdentifier: user, OldID: oldID, NewID: newID})

	env := map[string]string{"NATS_URL": srv.ClientURL()}
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := Main(ctx, args, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
			t.Fatalf("memctl %v: exit %d: %s", args, code, errOut.String())
		}
		return out.String()
	}
	dlq, err := js.Stream(ctx, stream.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, dlq, 2)
	list := run("dlq", "list")
	for _, want := range []string{"undecodable", "missing_reference"} {
		if !strings.Contains(list, want) {
			t.Fatalf("list lacks %s:\n%s", want, list)
		}
	}
	if out := run("dlq", "show", "1"); !strings.Contains(out, "Engram-Dlq-Reason") {
		t.Fatalf("show:\n%s", out)
	}
	run("dlq", "drop", "--all", "--reason", "undecodable")
	if list := run("dlq", "list"); strings.Contains(list, "undecodable") || !strings.Contains(list, "missing_reference") {
		t.Fatalf("after drop:\n%s", list)
	}

	send(&ingest.AddPreference{UserIdentifier: user, PreferenceID: oldID, Category: "c", Preference: "Junior"})
	send(&ingest.AddPreference{UserIdentifier: user, PreferenceID: newID, Category: "c", Preference: "Senior"})
	run("dlq", "retry", "--all")
	waitMsgs(t, dlq, 0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (:Preference {id: $o})-[:SUPERSEDED_BY]->(:Preference {id: $n}) RETURN count(*) AS n",
			map[string]any{"o": oldID, "n": newID}, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.Records[0].Get("n"); n.(int64) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retried supersede not applied; dlq:\n%s", run("dlq", "list"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if list := run("dlq", "list"); !strings.Contains(list, "no dead letters") {
		t.Fatalf("dead letters left:\n%s", list)
	}
}

func waitMsgs(t *testing.T, s jetstream.Stream, n uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead-letter stream holds %d messages, want %d", info.State.Msgs, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDLQRetryRefusesErasedTenant: a dead letter of an event stored before its user's erasure
// (the projector had not applied the tombstone yet, so it did not purge the letter) is not
// published again: above the tombstone it would bring the erased user's data back.
func TestDLQRetryRefusesErasedTenant(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	srv, _, js := testenv.NATS(t)
	d := testenv.Neo4j(t)
	user := testenv.User(t, "dlq-erased")
	t.Cleanup(func() { testenv.Cleanup(t, d, user) })
	p, _ := startProjector(t, js, d, "dlq-erased")
	send := commandPublisher(t, js)
	send(&ingest.SupersedePreference{UserIdentifier: user, OldID: events.NewID(), NewID: events.NewID()})
	dlq, err := js.Stream(ctx, stream.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	waitMsgs(t, dlq, 1)
	if err := p.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	tombstone := send(&ingest.EraseUser{Identifier: user})

	var out, errOut bytes.Buffer
	env := map[string]string{"NATS_URL": srv.ClientURL()}
	if code := Main(ctx, []string{"dlq", "retry", "--all"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("memctl dlq retry: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "refused dead letter") || strings.Contains(out.String(), "retried") {
		t.Fatalf("retry of an erased user's dead letter:\n%s", out.String())
	}
	waitMsgs(t, dlq, 1)
	mem, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := mem.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.LastSeq != tombstone {
		t.Errorf("the stream's last sequence is %d, want the tombstone's %d: something was published above it", info.State.LastSeq, tombstone)
	}
}
