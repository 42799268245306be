package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/audit"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/migrate/migratetest"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/query"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestImportReproducesTheLibrarysReads writes a graph with the real library into a Neo4j of
// the test's own, imports it into an embedded JetStream, projects the log into the shared
// Neo4j, and asks the library's own reads and Engram's reads on the projection what the
// library answers on the source: with the newest release the import supports and with the
// oldest, each read by its own release. It also covers the dry run, a second run, an
// interrupted run and the refusal of Engram's own database.
func TestImportReproducesTheLibrarysReads(t *testing.T) {
	for _, lib := range []library{
		{requirement: migratetest.Library, traceToolCalls: true},
		// get_trace of 0.4.0 groups a step's tool calls by a step_id property that its own
		// record_tool_call does not write: it shows none, on its graph as on Engram's.
		{requirement: migratetest.OldestLibrary},
	} {
		t.Run(strings.TrimPrefix(lib.requirement, "neo4j-agent-memory=="), func(t *testing.T) {
			testImportReproducesTheLibrarysReads(t, lib)
		})
	}
}

// library is a release of neo4j-agent-memory the import is tested with.
type library struct {
	requirement    string // pip requirement
	traceToolCalls bool   // get_trace returns the steps' tool calls
}

func testImportReproducesTheLibrarysReads(t *testing.T, lib library) {
	ctx := t.Context()
	g := migratetest.WriteLibraryGraph(t, lib.requirement)
	man := g.Manifest
	src := NewSource(g.Driver(t), "")
	live := testenv.Neo4j(t)
	if err := src.CheckNotEngram(ctx, live, ""); err != nil {
		t.Fatalf("a library graph refused as Engram's: %v", err)
	}
	_, _, js := testenv.NATS(t)
	pub := stream.NewPublisher(js, 10*time.Second)

	// Vectors as the library keeps them (embedding; a trace's task_embedding) on one message,
	// one preference and one trace: imported with them. The message is one of a user's: the
	// orphan session's message has no user and is not imported (CodeNoUser), and ids are
	// random, so ordering by id alone picked it in about one run of six.
	vectors := map[string][]any{}
	for label, cypher := range map[string]string{
		"Message":        "MATCH (:User)-[:HAS_CONVERSATION]->(:Conversation)-[:HAS_MESSAGE]->(n:Message) WITH n ORDER BY n.id LIMIT 1 SET n.embedding = $v RETURN n.id AS id",
		"Preference":     "MATCH (n:Preference) WITH n ORDER BY n.id LIMIT 1 SET n.embedding = $v RETURN n.id AS id",
		"ReasoningTrace": "MATCH (n:ReasoningTrace) WITH n ORDER BY n.id LIMIT 1 SET n.task_embedding = $v RETURN n.id AS id",
	} {
		v := []any{0.25, -0.5, float64(len(label))}
		res, err := neo4j.ExecuteQuery(ctx, g.Driver(t), cypher, map[string]any{"v": v}, neo4j.EagerResultTransformer)
		if err != nil || len(res.Records) != 1 {
			t.Fatalf("set a %s's vector: %v", label, err)
		}
		id, _ := res.Records[0].Get("id")
		vectors[label+":"+id.(string)] = v
	}

	// The dry run counts and reports, and publishes nothing.
	dry, err := Run(ctx, src, nil, nil, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := dry.Planned(); !reflect.DeepEqual(got, migratetest.Planned) {
		t.Errorf("dry run planned %v, want %v", got, migratetest.Planned)
	}
	if n := streamMsgs(t, js); n != 0 {
		t.Fatalf("the dry run stored %d events", n)
	}
	wantIssue(t, dry.Issues, CodeSecondSupersede, man.SecondSupersede[0], man.SecondSupersede[1])
	wantIssue(t, dry.Issues, CodeNoUser, "", man.OrphanSession)
	wantIssue(t, dry.Issues, CodeUnmodelledLabel, ":Fact", "")
	for _, i := range dry.Issues {
		if i.Code == CodeNoValidFrom {
			t.Errorf("%s wrote a preference without valid_from: %v", lib.requirement, i)
		}
	}

	total := migratetest.PlannedTotal()
	res, err := Run(ctx, src, js, pub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p, l := res.Published(); p != total || l != 0 {
		t.Fatalf("first run published %d, found %d logged; want %d, 0", p, l, total)
	}
	if !reflect.DeepEqual(res.Issues, dry.Issues) {
		t.Errorf("the real run reported\n%v\nthe dry run\n%v", res.Issues, dry.Issues)
	}
	again, err := Run(ctx, src, js, pub, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p, l := again.Published(); p != 0 || l != total {
		t.Fatalf("second run published %d, found %d logged; want 0, %d", p, l, total)
	}
	if n := streamMsgs(t, js); n != uint64(total) {
		t.Fatalf("the stream holds %d events after two runs, want %d", n, total)
	}

	reader := project(t, live, js, g.Suffix, man.Users)
	for key, want := range vectors {
		label, id, _ := strings.Cut(key, ":")
		res, err := neo4j.ExecuteQuery(ctx, live, "MATCH (n:"+label+" {id: $id}) RETURN n.embedding AS v", map[string]any{"id": id}, neo4j.EagerResultTransformer)
		if err != nil || len(res.Records) != 1 {
			t.Fatalf("%s %s in Engram's graph: %v", label, id, err)
		}
		if got, _ := res.Records[0].Get("v"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s: embedding %v after the import, want the library's %v", label, id, got, want)
		}
	}

	srcAnswers := g.Reads(t, g.URI, g.User, g.Password)
	lc := testenv.Neo4jSettings()
	projAnswers := g.Reads(t, lc.URI, lc.User, lc.Password)
	compareLibraryReads(t, man, srcAnswers, projAnswers)
	compareEngramReads(t, reader, lib, man, srcAnswers)

	t.Run("interrupted", func(t *testing.T) {
		_, _, js2 := testenv.NATS(t)
		pub2 := stream.NewPublisher(js2, 10*time.Second)
		ictx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := Run(ictx, src, js2, pub2, Options{BatchSize: 1, afterBatch: func(n int) {
			if n == 5 {
				cancel()
			}
		}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: %v, want context.Canceled", err)
		}
		stored := streamMsgs(t, js2)
		if stored == 0 || stored >= uint64(total) {
			t.Fatalf("the interrupted run stored %d events, want some of %d", stored, total)
		}
		res, err := Run(ctx, src, js2, pub2, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if p, l := res.Published(); p+l != total || l != int(stored) {
			t.Fatalf("resumed run published %d and skipped %d; want %d in all, %d skipped", p, l, total, stored)
		}
		for _, u := range man.Users {
			if a, b := logOf(t, js, u), logOf(t, js2, u); !reflect.DeepEqual(a, b) {
				t.Errorf("%s: interrupted and resumed, the log is\n%v\nuninterrupted\n%v", u, b, a)
			}
		}
	})

	t.Run("refuses Engram's database", func(t *testing.T) {
		// The live database under another address is still the live database.
		other, err := neo4j.NewDriverWithContext(strings.Replace(lc.URI, "127.0.0.1", "localhost", 1), neo4j.BasicAuth(lc.User, lc.Password, ""))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(context.Background())
		err = NewSource(other, "").CheckNotEngram(ctx, live, "")
		if !errors.Is(err, ErrEngramDatabase) || !strings.Contains(err.Error(), "db.info() id") {
			t.Fatalf("the live database as the source: %v, want ErrEngramDatabase by identity", err)
		}
		// A graph holding Engram's checkpoints (a copy of its store) is refused too.
		if _, err := neo4j.ExecuteQuery(ctx, g.Driver(t), "CREATE (:EngramCheckpoint {name: 'projector-p0', stream_seq: 1})", nil, neo4j.EagerResultTransformer); err != nil {
			t.Fatal(err)
		}
		err = src.CheckNotEngram(ctx, live, "")
		if !errors.Is(err, ErrEngramDatabase) || !strings.Contains(err.Error(), "1 EngramCheckpoint") {
			t.Fatalf("a graph with Engram's checkpoints as the source: %v, want ErrEngramDatabase", err)
		}
	})
}

// project runs a projector of a group of the test's own on the shared Neo4j until every
// user's events are applied, checks that nothing was dead-lettered, and returns a Reader of
// that group's projection. The users' graph and the group's checkpoints go when t ends.
func project(t *testing.T, live neo4j.DriverWithContext, js jetstream.JetStream, suffix string, users []string) *query.Reader {
	t.Helper()
	ctx := t.Context()
	if err := graph.ApplySchema(ctx, live, ""); err != nil {
		t.Fatal(err)
	}
	group := "import-" + suffix
	// Registered first, so it runs after the projector has stopped.
	t.Cleanup(func() {
		testenv.Cleanup(t, live, users...)
		_, _ = neo4j.ExecuteQuery(context.Background(), live, "MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH $g DELETE c",
			map[string]any{"g": group + "-"}, neo4j.EagerResultTransformer)
	})
	cfg := projection.DefaultConfig(app.Common{Service: "projector", MultiTenant: true, PublishTimeout: 5 * time.Second})
	cfg.Group = group
	cfg.Keys = keys.Default(js) // the import seals, as the ingestor does
	p, err := projection.New(cfg, live, js, projection.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := p.Stop(sctx); err != nil {
			t.Errorf("stop projector: %v", err)
		}
	})
	reader, err := query.NewReader(live, "", query.WithCheckpointGroup(group))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := reader.WaitFor(ctx, u, info.State.LastSeq, time.Minute); err != nil {
			t.Fatalf("projection of %s: %v", u, err)
		}
	}
	dlq, err := js.Stream(ctx, stream.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if di, err := dlq.Info(ctx); err != nil || di.State.Msgs != 0 {
		t.Fatalf("dead letters after projecting the import: %d (%v)", di.State.Msgs, err)
	}
	return reader
}

// compareLibraryReads holds the library's answers on the projection to its answers on the
// source, call by call. The ids Engram derives instead of keeping are the only differences
// allowed, and each is checked to be Engram's.
func compareLibraryReads(t *testing.T, man migratetest.Manifest, src, proj map[string]any) {
	t.Helper()
	derived := func(key string, v any, want string) {
		m, _ := v.(map[string]any)
		if m == nil {
			return
		}
		if m["id"] != want {
			t.Errorf("%s: id %v on the projection, want Engram's %s", key, m["id"], want)
		}
		m["id"] = "(derived)"
	}
	for _, u := range man.Users {
		k := "get_user(" + u + ")"
		derived(k, proj[k], events.UserID(u))
		derived(k, src[k], src[k].(map[string]any)["id"].(string))
		for _, s := range man.Sessions[u] {
			k := "get_conversation(" + s + ")"
			derived(k, proj[k], events.ConversationID(u, s))
			derived(k, src[k], src[k].(map[string]any)["id"].(string))
		}
		k = "list_conversations(" + u + ")"
		for _, c := range anyList(proj[k]) {
			c := c.(map[string]any)
			derived(k, c, events.ConversationID(u, fmt.Sprint(c["session_id"])))
		}
		for _, c := range anyList(src[k]) {
			c.(map[string]any)["id"] = "(derived)"
		}
	}
	keys := slices.Sorted(maps.Keys(src))
	if got := slices.Sorted(maps.Keys(proj)); !reflect.DeepEqual(got, keys) {
		t.Errorf("calls answered on the projection\n%v\non the source\n%v", got, keys)
	}
	t.Logf("the library's reads: %d calls compared", len(keys))
	for _, k := range keys {
		if !reflect.DeepEqual(src[k], proj[k]) {
			a, _ := json.Marshal(src[k])
			b, _ := json.Marshal(proj[k])
			t.Errorf("%s:\n  source:     %s\n  projection: %s", k, a, b)
		}
	}
}

var asOfCall = regexp.MustCompile(`^get_preferences_for\((.+), active_only=(True|False), as_of=(.+)\)$`)

// compareEngramReads asks Engram's Reader what the library answered on the source.
func compareEngramReads(t *testing.T, r *query.Reader, lib library, man migratetest.Manifest, src map[string]any) {
	t.Helper()
	ctx := t.Context()
	type toolCalls struct{ total, failed int }
	tools := map[string]toolCalls{}
	ids := func(v any) []string {
		var out []string
		for _, p := range v.([]any) {
			out = append(out, p.(map[string]any)["id"].(string))
		}
		slices.Sort(out)
		return out
	}
	prefIDs := func(ps []query.Preference) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.ID)
		}
		slices.Sort(out)
		return out
	}
	check := func(call string, opts ...query.PreferenceOption) {
		user := strings.SplitN(strings.TrimPrefix(call, "get_preferences_for("), ",", 2)[0]
		user = strings.TrimSuffix(user, ")")
		ps, err := r.PreferencesFor(ctx, user, opts...)
		if err != nil {
			t.Fatalf("Engram %s: %v", call, err)
		}
		if got, want := prefIDs(ps), append([]string{}, ids(src[call])...); !reflect.DeepEqual(got, want) {
			t.Errorf("Engram %s: %v, the library on the source: %v", call, got, want)
		}
	}
	for call := range src {
		if m := asOfCall.FindStringSubmatch(call); m != nil {
			at, err := time.Parse("2006-01-02T15:04:05.999999-07:00", m[3])
			if err != nil {
				t.Fatal(err)
			}
			check(call, query.ActiveOnly(m[2] == "True"), query.AsOf(at))
		}
	}
	for _, u := range man.Users {
		check("get_preferences_for(" + u + ")")
		check("get_preferences_for("+u+", active_only=False)", query.ActiveOnly(false))
		check("get_preferences_for("+u+", applies_to=Healthcare/Industry)", query.ActiveOnly(false),
			query.AppliesTo(events.EntityRef{Name: "Healthcare", Type: "Industry"}))
		check("get_preferences_for("+u+", applies_to=Finance/None)", query.ActiveOnly(false),
			query.AppliesTo(events.EntityRef{Name: "Finance"}))
		for _, s := range man.Sessions[u] {
			page, err := r.Messages(ctx, u, s, query.MessageQuery{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range page.Messages {
				got = append(got, fmt.Sprintf("%s %s %q %s", m.ID, m.Role, m.Content, m.Timestamp.UTC().Format(time.RFC3339Nano)))
			}
			var want []string
			for _, m := range src["get_conversation("+s+")"].(map[string]any)["messages"].([]any) {
				m := m.(map[string]any)
				ts, _ := time.Parse("2006-01-02T15:04:05.999999-07:00", m["created_at"].(string))
				want = append(want, fmt.Sprintf("%s %s %q %s", m["id"], m["role"], m["content"], ts.UTC().Format(time.RFC3339Nano)))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Engram messages of %s:\n%v\nthe library on the source:\n%v", s, got, want)
			}
		}
		for _, tid := range man.Traces[u] {
			tr, err := r.Trace(ctx, u, tid)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range tr.Steps {
				got = append(got, fmt.Sprintf("step %s %d %s", s.ID, *s.StepNumber, deref(s.Thought)))
				// The library returns a step's tool calls in no order: the script sorts them by id.
				calls := slices.SortedFunc(slices.Values(s.ToolCalls), func(a, b query.ToolCall) int { return strings.Compare(a.ID, b.ID) })
				for _, c := range calls {
					n := tools[c.ToolName]
					n.total++
					if c.Status == "error" || c.Status == "timeout" {
						n.failed++
					}
					tools[c.ToolName] = n
					if lib.traceToolCalls {
						got = append(got, fmt.Sprintf("call %s %s %s %s", c.ID, c.ToolName, c.Status, deref(c.Error)))
					}
				}
			}
			var want []string
			libTrace := src["get_trace("+tid+")"].(map[string]any)
			for _, s := range libTrace["steps"].([]any) {
				s := s.(map[string]any)
				want = append(want, fmt.Sprintf("step %s %v %s", s["id"], s["step_number"], s["thought"]))
				for _, c := range s["tool_calls"].([]any) {
					c := c.(map[string]any)
					e, _ := c["error"].(string)
					want = append(want, fmt.Sprintf("call %s %s %s %s", c["id"], c["tool_name"], c["status"], e))
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Engram trace %s:\n%v\nthe library on the source:\n%v", tid, got, want)
			}
			if (tr.Success == nil) != (libTrace["success"] == nil) || deref(tr.Outcome) != fmt.Sprint(orEmpty(libTrace["outcome"])) {
				t.Errorf("Engram trace %s: outcome %q success %v, the library: %v %v", tid, deref(tr.Outcome), tr.Success, libTrace["outcome"], libTrace["success"])
			}
		}
	}
	// Every release counts the tool calls on the tools (get_tool_stats).
	for _, name := range man.Tools {
		stats := anyList(src["get_tool_stats("+name+")"])
		if len(stats) != 1 {
			t.Errorf("the library's get_tool_stats(%s) on the source: %v, want one tool", name, stats)
			continue
		}
		st := stats[0].(map[string]any)
		if got := tools[name]; float64(got.total) != st["total_calls"] || float64(got.failed) != st["failed_calls"] {
			t.Errorf("Engram's traces hold %d calls of %s (%d failed), the library's get_tool_stats on the source %v (%v failed)",
				got.total, name, got.failed, st["total_calls"], st["failed_calls"])
		}
	}
}

func wantIssue(t *testing.T, issues []Issue, code, id, detail string) {
	t.Helper()
	for _, i := range issues {
		if i.Code == code && (id == "" || i.ID == id) && strings.Contains(i.Detail, detail) {
			return
		}
	}
	t.Errorf("no %s issue for %q (%q) in %v", code, id, detail, issues)
}

func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// logOf is a user's log as the import wrote it: each event's id, kind, time and data, in
// stored order.
func logOf(t *testing.T, js jetstream.JetStream, user string) []string {
	t.Helper()
	entries, err := audit.Read(t.Context(), js, user)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		d, _ := json.Marshal(e.Data)
		out = append(out, fmt.Sprintf("%s %s %s %s", e.ID, e.Kind, e.Time.Format(time.RFC3339Nano), d))
	}
	return out
}

func anyList(v any) []any {
	l, _ := v.([]any)
	return l
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func orEmpty(v any) any {
	if v == nil {
		return ""
	}
	return v
}
