package replay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/replay"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// workload publishes a mixed load for users: messages (some deleted again, one session
// cleared), preferences with applies_to and
// explicit valid times, supersedes, traces with steps and tool calls, one erased user (the
// last), one erased and re-created with writes in between (the one before), and a message
// that does not decode. It returns the last stream sequence.
func workload(ctx context.Context, t *testing.T, js jetstream.JetStream, users []string, perUser int) uint64 {
	t.Helper()
	pub := stream.NewPublisher(js, 10*time.Second)
	rng := rand.New(rand.NewPCG(1, 2))
	s := ingest.Settings{MultiTenant: true, Source: "/engram/test"}
	var last uint64
	send := func(cmd ingest.Command) ingest.Minted {
		ev, m, err := ingest.Build(cmd, s)
		if err != nil {
			t.Fatalf("build %T: %v", cmd, err)
		}
		st, err := pub.Publish(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		last = max(last, st.Sequence)
		return m
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	msgs := map[string][]string{} // each user's messages, in order
	for i := 0; i < perUser; i++ {
		for _, u := range users {
			if i == 0 {
				send(&ingest.UpsertUser{Identifier: u, Attributes: map[string]any{"n": float64(len(u))}})
			}
			switch rng.IntN(4) {
			case 0:
				m := send(&ingest.AddMessage{UserIdentifier: u, SessionID: fmt.Sprintf("s%d", rng.IntN(2)), Role: "user", Content: fmt.Sprintf("m%d", i)})
				msgs[u] = append(msgs[u], m.MessageID)
			case 1:
				from := base.Add(time.Duration(i) * time.Hour)
				old := send(&ingest.AddPreference{UserIdentifier: u, Category: "c", Preference: fmt.Sprintf("p%d", i), ValidFrom: &from,
					AppliesTo: []events.EntityRef{{Name: "Healthcare", Type: "Industry"}}})
				repl := send(&ingest.AddPreference{UserIdentifier: u, Category: "c", Preference: fmt.Sprintf("q%d", i)})
				until := from.Add(30 * time.Minute)
				send(&ingest.SupersedePreference{UserIdentifier: u, OldID: old.PreferenceID, NewID: repl.PreferenceID, ValidUntil: &until})
			case 2:
				tr := send(&ingest.StartTrace{UserIdentifier: u, SessionID: "s0", Task: "task"})
				st := send(&ingest.AddTraceStep{UserIdentifier: u, TraceID: tr.TraceID, Thought: "think"})
				ms := int64(rng.IntN(100))
				send(&ingest.RecordToolCall{UserIdentifier: u, TraceID: tr.TraceID, StepID: st.StepID, ToolName: "replay-tool-" + t.Name(), DurationMS: &ms})
				ok := true
				send(&ingest.CompleteTrace{UserIdentifier: u, TraceID: tr.TraceID, Outcome: "done", Success: &ok})
			case 3:
				send(&ingest.AddPreference{UserIdentifier: u, Category: "d", Preference: fmt.Sprintf("r%d", i)})
			}
			// A replay forgets too: a middle, a first and a last message deleted now and then,
			// and one session cleared (what it held deleted again later: a no-op).
			if ms := msgs[u]; i%5 == 4 && len(ms) > 0 {
				k := []int{len(ms) / 2, 0, len(ms) - 1}[(i/5)%3]
				send(&ingest.DeleteMessage{UserIdentifier: u, MessageID: ms[k]})
				msgs[u] = slices.Delete(ms, k, k+1)
			}
			if i == perUser/2 && u == users[0] {
				send(&ingest.ClearSession{UserIdentifier: u, SessionID: "s1"})
			}
		}
	}
	gone := users[len(users)-1]
	send(&ingest.EraseUser{Identifier: gone})
	if err := stream.PurgeTenant(ctx, js, gone, last); err != nil { // what the ingestor does after the tombstone
		t.Fatal(err)
	}
	// Another user is erased, written for over NATS meanwhile (dropped: stored after the
	// tombstone), re-created, and written for again (applied). The refused writes stay in the
	// log, as when the re-creation's purge has not run yet.
	back := users[len(users)-2]
	send(&ingest.EraseUser{Identifier: back})
	if err := stream.PurgeTenant(ctx, js, back, last); err != nil {
		t.Fatal(err)
	}
	send(&ingest.AddMessage{UserIdentifier: back, SessionID: "s0", Role: "user", Content: "refused"})
	send(&ingest.AddPreference{UserIdentifier: back, Category: "c", Preference: "refused"})
	send(&ingest.UpsertUser{Identifier: back, Attributes: map[string]any{"refused": true}})
	send(&ingest.RecreateUser{Identifier: back})
	send(&ingest.AddMessage{UserIdentifier: back, SessionID: "s1", Role: "user", Content: "welcome back"})
	ack, err := js.Publish(ctx, "mem."+mustToken(t, users[0])+".message_added", []byte("not a cloudevent"))
	if err != nil {
		t.Fatal(err)
	}
	return max(last, ack.Sequence)
}

func mustToken(t *testing.T, u string) string {
	tok, err := events.TenantToken(u)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func project(ctx context.Context, t *testing.T, d neo4j.DriverWithContext, js jetstream.JetStream, last uint64, group string) {
	t.Helper()
	cfg := projection.DefaultConfig(app.Common{Service: "projector", MultiTenant: true, PublishTimeout: 5 * time.Second})
	cfg.BatchWait = 5 * time.Millisecond
	cfg.Group = group
	cfg.Keys = keys.Default(js) // opens what is sealed, as projection.Module's
	p, err := projection.New(cfg, d, js, projection.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Stop(context.Background()) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		covered := 0
		for part := range natsdeploy.Partitions {
			cp, err := projection.ReadCheckpoint(ctx, d, "", projection.CheckpointName(cfg.Group, part))
			if err != nil {
				t.Fatal(err)
			}
			info, err := js.Consumer(ctx, stream.MemoryStream, projection.CheckpointName(cfg.Group, part))
			if err != nil {
				t.Fatal(err)
			}
			ci, err := info.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ci.NumPending == 0 && ci.NumAckPending == 0 && (cp > 0 || ci.Delivered.Stream == 0) {
				covered++
			}
		}
		if covered == natsdeploy.Partitions {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projector did not catch up with %d", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fp(ctx context.Context, t *testing.T, d neo4j.DriverWithContext, users []string) fingerprint.Fingerprint {
	t.Helper()
	var owners []string
	for _, u := range users {
		owners = append(owners, mustToken(t, u))
	}
	f, err := fingerprint.Of(ctx, d, "", fingerprint.Scope{Owners: owners, Tools: []string{"replay-tool-" + t.Name()}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestReplayRebuildsTheSameGraph: live projection, then whole-stream replay into the wiped
// database, an interrupted replay resumed, and a one-tenant replay — each gives the graph of
// the live projection, node for node and property for property.
func TestReplayRebuildsTheSameGraph(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	neo := testenv.StartNeo4jProcess(t) // replay wipes the database: never the shared one
	d := neo.Driver(t)
	if err := graph.ApplySchema(ctx, d, ""); err != nil {
		t.Fatal(err)
	}
	_, _, js := testenv.NATS(t)
	users := []string{"sara@omg.com", "liam@omg.com", "zoë@omg.com", "gone@omg.com"}
	last := workload(ctx, t, js, users, 40)
	project(ctx, t, d, js, last, projection.DefaultGroup)
	live := fp(ctx, t, d, users)
	if live.Nodes < 100 {
		t.Fatalf("workload projected only %s", live)
	}
	gone, err := fingerprint.Of(ctx, d, "", fingerprint.Scope{Owners: []string{mustToken(t, users[3])}})
	if err != nil {
		t.Fatal(err)
	}
	if gone.Nodes != 0 {
		t.Fatalf("erased user still has %s:\n%s", gone, gone.Lines)
	}
	back := backGraph(ctx, t, d, users[2])

	// The erased user's subjects hold only the tombstone.
	filter, _ := events.TenantSubjects(users[3])
	ms, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	si, err := ms.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	if len(si.State.Subjects) != 1 {
		t.Fatalf("erased user's subjects after erasure: %v, want only the tombstone", si.State.Subjects)
	}
	for subj, n := range si.State.Subjects {
		if _, kind, _ := events.ParseSubject(subj); kind != events.KindUserErased || n != 1 {
			t.Fatalf("erased user's subjects after erasure: %v, want only the tombstone", si.State.Subjects)
		}
	}

	opts := replay.Options{MultiTenant: true, BatchSize: 50}
	if _, err := replay.Run(ctx, d, js, opts); !errors.Is(err, replay.ErrNotEmpty) {
		t.Fatalf("replay into a non-empty database: %v, want ErrNotEmpty", err)
	}

	// Interrupt a replay after its first progress line, then resume it.
	opts.Wipe = true
	ictx, cancel := context.WithCancel(ctx)
	opts.Progress = cancelWriter{cancel}
	_, err = replay.Run(ictx, d, js, opts)
	cancel()
	if err == nil {
		t.Log("replay finished before it could be interrupted")
	}
	opts.Wipe, opts.Progress = false, &bytes.Buffer{}
	st, err := replay.Run(ctx, d, js, opts)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if st.LastSeq != last {
		t.Fatalf("replay covered up to %d, stream ends at %d", st.LastSeq, last)
	}
	if got := fp(ctx, t, d, users); !got.Equal(live) {
		t.Fatalf("replay differs from live projection:\n%s", fingerprint.Diff(live, got, 10))
	}
	if again, err := fingerprint.Of(ctx, d, "", fingerprint.Scope{Owners: []string{mustToken(t, users[3])}}); err != nil || again.Nodes != 0 {
		t.Fatalf("replay brought back the erased user: %s, %v", again, err)
	}
	if again := backGraph(ctx, t, d, users[2]); !again.Equal(back) {
		t.Fatalf("replay of the re-created user differs:\n%s", fingerprint.Diff(back, again, 10))
	}
	for part := range natsdeploy.Partitions {
		cp, err := projection.ReadCheckpoint(ctx, d, "", projection.CheckpointName(projection.DefaultGroup, part))
		if err != nil || cp != last {
			t.Fatalf("live checkpoint p%d = %d, %v; want %d", part, cp, err, last)
		}
	}

	// One tenant, live graph in place: delete Sara's subgraph and rebuild it from her subjects.
	if _, err := replay.Run(ctx, d, js, replay.Options{User: users[0], MultiTenant: true}); err != nil {
		t.Fatal(err)
	}
	if got := fp(ctx, t, d, users); !got.Equal(live) {
		t.Fatalf("tenant replay differs:\n%s", fingerprint.Diff(live, got, 10))
	}
}

// backGraph is the graph of the user the workload erased and re-created: their user node and
// what they wrote after the re-creation, nothing of what was written in between.
func backGraph(ctx context.Context, t *testing.T, d neo4j.DriverWithContext, user string) fingerprint.Fingerprint {
	t.Helper()
	f, err := fingerprint.Of(ctx, d, "", fingerprint.Scope{Owners: []string{mustToken(t, user)}})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(f.Lines, "\n")
	if strings.Contains(all, "refused") || !strings.Contains(all, "welcome back") || !strings.Contains(all, " User ") {
		t.Fatalf("the re-created user's graph holds what was written after the erasure, or lacks the user or the later write:\n%s", all)
	}
	return f
}

type cancelWriter struct{ cancel context.CancelFunc }

func (w cancelWriter) Write(p []byte) (int, error) { w.cancel(); return len(p), nil }

// TestVerify compares the live graph (here: the shared database, this test's tenants only)
// with a replay into a scratch database, and reports a tampered property as a difference.
func TestVerify(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	scratch := testenv.StartNeo4jProcess(t)
	sd := scratch.Driver(t)
	live := testenv.Neo4j(t)
	_, _, js := testenv.NATS(t)
	users := []string{testenv.User(t, "v1"), testenv.User(t, "v2"), testenv.User(t, "v3")}
	t.Cleanup(func() { testenv.Cleanup(t, live, users...) })
	group := "verify-" + events.NewID()[24:]
	t.Cleanup(func() {
		_, _ = neo4j.ExecuteQuery(context.Background(), live, "MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH $g DELETE c",
			map[string]any{"g": group + "-"}, neo4j.EagerResultTransformer)
		_, _ = neo4j.ExecuteQuery(context.Background(), live, "MATCH (t:Tool {name: $n}) DETACH DELETE t",
			map[string]any{"n": "replay-tool-" + t.Name()}, neo4j.EagerResultTransformer)
	})
	last := workload(ctx, t, js, users, 15)
	project(ctx, t, live, js, last, group)

	v, err := replay.Verify(ctx, live, sd, js, replay.VerifyOptions{Users: users, MultiTenant: true})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Equal || v.Live.Nodes == 0 {
		t.Fatalf("verify after a clean projection: equal=%v live %s replayed %s\n%s", v.Equal, v.Live, v.Replayed, v.Diff)
	}

	tok := mustToken(t, users[0])
	if _, err := neo4j.ExecuteQuery(ctx, live, "MATCH (u:User {owner: $o}) SET u.attributes_json = '{\"tampered\":true}'",
		map[string]any{"o": tok}, neo4j.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
	v, err = replay.Verify(ctx, live, sd, js, replay.VerifyOptions{Users: users, MultiTenant: true})
	if err != nil {
		t.Fatal(err)
	}
	if v.Equal || !bytes.Contains([]byte(v.Diff), []byte("tampered")) {
		t.Fatalf("tampering not reported: equal=%v diff:\n%s", v.Equal, v.Diff)
	}
	if _, err := replay.Verify(ctx, live, live, js, replay.VerifyOptions{}); !errors.Is(err, replay.ErrSameDatabase) {
		t.Fatalf("verify into the live database: %v", err)
	}
}

// TestReplayPartitionsInParallel: a load over enough tenants to fill every partition,
// replayed with small batches and every partition's transactions at once, gives the live
// projection's graph; so does a replay stopped after a few commits and resumed, whose
// partitions stopped at different places.
func TestReplayPartitionsInParallel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	neo := testenv.StartNeo4jProcess(t)
	d := neo.Driver(t)
	if err := graph.ApplySchema(ctx, d, ""); err != nil {
		t.Fatal(err)
	}
	_, _, js := testenv.NATS(t)
	var users []string
	parts := map[int]bool{}
	for i := range 40 {
		u := fmt.Sprintf("user%d@parallel.test", i)
		users = append(users, u)
		parts[events.Partition(mustToken(t, u), natsdeploy.Partitions)] = true
	}
	if len(parts) != natsdeploy.Partitions {
		t.Fatalf("the users fill %d of %d partitions", len(parts), natsdeploy.Partitions)
	}
	last := workload(ctx, t, js, users, 12)
	project(ctx, t, d, js, last, projection.DefaultGroup)
	live := fp(ctx, t, d, users)

	opts := replay.Options{MultiTenant: true, Wipe: true, BatchSize: 7, Writers: natsdeploy.Partitions}
	st, err := replay.Run(ctx, d, js, opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.LastSeq != last || st.Applied == 0 || st.Skipped == 0 {
		t.Fatalf("replay stats %+v, want up to %d with applied and skipped events", st, last)
	}
	if got := fp(ctx, t, d, users); !got.Equal(live) {
		t.Fatalf("parallel replay differs from the live projection:\n%s", fingerprint.Diff(live, got, 10))
	}

	// Stop after a few commits (the partitions at different places), then resume.
	ictx, cancel := context.WithCancel(ctx)
	commits := 0
	restore := replay.SetAfterCommit(func() {
		if commits++; commits == 12 {
			cancel()
		}
	})
	_, err = replay.Run(ictx, d, js, opts)
	restore()
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted replay: %v, want context.Canceled", err)
	}
	n, err := neo4j.ExecuteQuery(ctx, d, "MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH 'replay-replay-p' RETURN count(c) AS n, collect(DISTINCT c.stream_seq) AS seqs", nil, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := n.Records[0].Get("n"); c.(int64) == 0 {
		t.Fatal("the interrupted replay left no partition checkpoint")
	}
	opts.Wipe = false
	st, err = replay.Run(ctx, d, js, opts)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if !st.Resumed || st.LastSeq != last {
		t.Fatalf("resumed replay %+v", st)
	}
	if got := fp(ctx, t, d, users); !got.Equal(live) {
		t.Fatalf("resumed parallel replay differs from the live projection:\n%s", fingerprint.Diff(live, got, 10))
	}
	if n, err := neo4j.ExecuteQuery(ctx, d, "MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH 'replay-' RETURN count(c) AS n", nil, neo4j.EagerResultTransformer); err != nil || n.Records[0].Values[0].(int64) != 0 {
		t.Fatalf("replay checkpoints left after the replay: %v %v", n, err)
	}
}
