package projection

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/graph"
)

// TestApplyEveryKind applies one batch holding every kind of event of one user and checks the
// graph of docs/graph.md node by node.
func TestApplyEveryKind(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	a := newTenant(t, "kinds")
	tool := "search-" + events.NewID()
	var sc scope
	sc.add(a)
	sc.tools = []string{tool}
	cleanupScope(t, d, &sc)

	r := newRecorder()
	m := []string{events.NewID(), events.NewID(), events.NewID(), events.NewID()}
	p1, p2 := events.NewID(), events.NewID()
	tr, s1, s2, c1, c2 := events.NewID(), events.NewID(), events.NewID(), events.NewID(), events.NewID()
	conv := events.ConversationID(a.user, "s1")
	acme := events.EntityID(a.user, "Acme", "Company")
	until := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	msgTime := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	batch := []Record{
		r.rec(a.user, events.UserUpserted{UserID: events.UserID(a.user), Identifier: a.user, Attributes: map[string]any{"role": "manager", "team": "b"}}),
		r.rec(a.user, events.MessageAdded{MessageID: m[0], ConversationID: conv, SessionID: "s1", Role: "user", Content: "hi", Title: "First", Metadata: map[string]any{"k": 1}}),
		r.rec(a.user, events.MessageAdded{MessageID: m[1], ConversationID: conv, SessionID: "s1", Role: "assistant", Content: "hello", Timestamp: &msgTime}),
		r.rec(a.user, events.PreferenceAdded{PreferenceID: p1, Category: "tone", Preference: "formal", AppliesTo: []events.EntityRef{{Name: "Acme", Type: "Company"}}}),
		r.rec(a.user, events.MessageAdded{MessageID: m[2], ConversationID: conv, SessionID: "s1", Role: "user", Content: "bye"}),
		r.rec(a.user, events.PreferenceAdded{PreferenceID: p2, Category: "tone", Preference: "casual", Confidence: ptr(0.5),
			AppliesTo: []events.EntityRef{{ID: acme}, {Name: "Go"}}}),
		r.rec(a.user, events.PreferenceSuperseded{OldID: p1, NewID: p2, ValidUntil: &until}),
		r.rec(a.user, events.MessageAdded{MessageID: m[3], ConversationID: events.ConversationID(a.user, "s2"), SessionID: "s2", Role: "user", Content: "other"}),
		r.rec(a.user, events.TraceStarted{TraceID: tr, SessionID: "s1", Task: "plan"}),
		r.rec(a.user, events.TraceStepAdded{TraceID: tr, StepID: s1, Thought: "think"}),
		r.rec(a.user, events.ToolCallRecorded{TraceID: tr, StepID: s1, ToolCallID: c1, ToolName: tool, Status: "success", DurationMS: ptr[int64](120), Arguments: map[string]any{"q": "x"}}),
		r.rec(a.user, events.TraceStepAdded{TraceID: tr, StepID: s2, Action: "act"}),
		r.rec(a.user, events.ToolCallRecorded{TraceID: tr, StepID: s2, ToolCallID: c2, ToolName: tool, Status: "error", DurationMS: ptr[int64](30), Error: "boom"}),
		r.rec(a.user, events.TraceCompleted{TraceID: tr, Outcome: "done", Success: ptr(true)}),
	}
	out := apply(ctx, t, d, batch)
	if len(out.Rejected) != 0 || out.Duplicates != 0 {
		t.Fatalf("outcome %+v, want everything applied", out)
	}
	total := 0
	for _, n := range out.Applied {
		total += n
	}
	if total != len(batch) {
		t.Fatalf("applied %v, want %d events", out.Applied, len(batch))
	}
	own := map[string]any{"owner": a.owner, "user": a.user}

	// User: derived id, first event's time, replaced attributes, transaction time.
	u := query(ctx, t, d, "MATCH (u:User {identifier: $user}) RETURN u", own)
	if len(u) != 1 {
		t.Fatalf("%d users", len(u))
	}
	props := nodeProps(t, u[0], "u")
	wantProps(t, "user", props, map[string]any{
		"id": events.UserID(a.user), "identifier": a.user, "owner": a.owner,
		"attributes_json": `{"role":"manager","team":"b"}`, "created_at": batch[0].Event.Time,
		"recorded_at": batch[0].Stored, "recorded_seq": int64(1),
	})

	// Conversation s1: one chain in stored order, the first message linked, no fork.
	chain := query(ctx, t, d, `
		MATCH (:User {identifier: $user})-[:HAS_CONVERSATION]->(c:Conversation {id: $conv})-[:FIRST_MESSAGE]->(f:Message)
		MATCH p = (f)-[:NEXT_MESSAGE*0..]->(m:Message) WHERE NOT (m)-[:NEXT_MESSAGE]->()
		RETURN [n IN nodes(p) | n.id] AS ids, c.last_message_id AS last, c.title AS title, c.session_id AS session,
		       c.updated_at AS updated, c.created_at AS created`, map[string]any{"user": a.user, "conv": conv})
	if len(chain) != 1 {
		t.Fatalf("%d chains in conversation s1, want 1", len(chain))
	}
	ids, _ := chain[0].Get("ids")
	if got := fmt.Sprint(ids); got != fmt.Sprint([]any{m[0], m[1], m[2]}) {
		t.Fatalf("chain %v, want %v", got, m[:3])
	}
	if last, _ := chain[0].Get("last"); last != m[2] {
		t.Errorf("last_message_id %v, want %v", last, m[2])
	}
	if title, _ := chain[0].Get("title"); title != "First" {
		t.Errorf("title %v", title)
	}
	// updated_at is the latest message time: message 3's event time (later than message 2's
	// explicit 2026-01-01 timestamp).
	if upd, _ := chain[0].Get("updated"); !upd.(time.Time).Equal(batch[4].Event.Time) {
		t.Errorf("updated_at %v, want %v", upd, batch[4].Event.Time)
	}
	if n := value[int64](ctx, t, d, "MATCH (m:Message {owner: $owner})-[r:NEXT_MESSAGE]->() WITH m, count(r) AS n WHERE n > 1 RETURN count(m) AS v", own); n != 0 {
		t.Errorf("%d forked messages", n)
	}
	msg := nodeProps(t, query(ctx, t, d, "MATCH (m:Message {id: $id}) RETURN m", map[string]any{"id": m[1]})[0], "m")
	wantProps(t, "message 2", msg, map[string]any{"role": "assistant", "content": "hello", "timestamp": msgTime,
		"metadata": "{}", "owner": a.owner, "recorded_seq": int64(3)})
	if meta := value[string](ctx, t, d, "MATCH (m:Message {id: $id}) RETURN m.metadata AS v", map[string]any{"id": m[0]}); meta != `{"k":1}` {
		t.Errorf("metadata %q", meta)
	}
	if n := value[int64](ctx, t, d, "MATCH (:User {identifier: $user})-[:HAS_CONVERSATION]->(c:Conversation) RETURN count(c) AS v", own); n != 2 {
		t.Errorf("%d conversations, want 2", n)
	}

	// Preferences: p1 superseded by p2 at the event's valid_until; entities merged per owner.
	pr := nodeProps(t, query(ctx, t, d, "MATCH (p:Preference {id: $id}) RETURN p", map[string]any{"id": p1})[0], "p")
	wantProps(t, "preference 1", pr, map[string]any{"valid_until": until, "valid_from": batch[3].Event.Time,
		"superseded_recorded_at": batch[6].Stored, "superseded_seq": int64(7), "confidence": 1.0, "owner": a.owner})
	sup := query(ctx, t, d, "MATCH (:Preference {id: $old})-[s:SUPERSEDED_BY]->(:Preference {id: $new}) RETURN s.at AS at, s.recorded_at AS rec",
		map[string]any{"old": p1, "new": p2})
	if len(sup) != 1 {
		t.Fatalf("%d SUPERSEDED_BY, want 1", len(sup))
	}
	if at, _ := sup[0].Get("at"); !at.(time.Time).Equal(until) {
		t.Errorf("SUPERSEDED_BY.at %v", at)
	}
	if v := value[any](ctx, t, d, "MATCH (p:Preference {id: $id}) RETURN p.valid_until AS v", map[string]any{"id": p2}); v != nil {
		t.Errorf("new preference valid_until %v, want null", v)
	}
	applies := query(ctx, t, d, `MATCH (:User {identifier: $user})-[:HAS_PREFERENCE]->(p:Preference)-[:APPLIES_TO]->(e:Entity)
		RETURN p.id AS p, e.name AS name, e.type AS type, e.id AS id, e.owner AS owner ORDER BY p, name`, own)
	var got []string
	for _, rec := range applies {
		p, _ := rec.Get("p")
		name, _ := rec.Get("name")
		typ, _ := rec.Get("type")
		owner, _ := rec.Get("owner")
		id, _ := rec.Get("id")
		if owner != a.owner {
			t.Errorf("entity %v owner %v", name, owner)
		}
		if name == "Acme" && id != acme {
			t.Errorf("Acme id %v, want %v", id, acme)
		}
		got = append(got, fmt.Sprintf("%s>%v/%v", map[any]string{p1: "p1", p2: "p2"}[p], name, typ))
	}
	slices.Sort(got)
	if want := []string{"p1>Acme/Company", "p2>Acme/Company", "p2>Go/<nil>"}; !slices.Equal(got, want) {
		t.Errorf("APPLIES_TO %v, want %v", got, want)
	}

	// Trace: steps numbered in stored order, tool calls, the Tool aggregate.
	steps := query(ctx, t, d, `MATCH (:User {identifier: $user})-[:HAS_TRACE]->(t:ReasoningTrace)-[h:HAS_STEP]->(s:ReasoningStep)
		OPTIONAL MATCH (s)-[:USES_TOOL]->(c:ToolCall)-[:INSTANCE_OF]->(tool:Tool)
		RETURN s.id AS id, s.step_number AS n, h.order AS o, c.status AS status, tool.name AS tool,
		       t.success AS success, t.outcome AS outcome, t.completed_at AS completed ORDER BY n`, own)
	if len(steps) != 2 {
		t.Fatalf("%d steps, want 2", len(steps))
	}
	for i, rec := range steps {
		id, _ := rec.Get("id")
		n, _ := rec.Get("n")
		o, _ := rec.Get("o")
		tn, _ := rec.Get("tool")
		if id != []string{s1, s2}[i] || n != int64(i+1) || o != int64(i+1) || tn != tool {
			t.Errorf("step %d: id %v number %v order %v tool %v", i, id, n, o, tn)
		}
		if s, _ := rec.Get("success"); s != true {
			t.Errorf("trace success %v", s)
		}
		if c, _ := rec.Get("completed"); !c.(time.Time).Equal(batch[13].Event.Time) {
			t.Errorf("completed_at %v", c)
		}
	}
	tp := nodeProps(t, query(ctx, t, d, "MATCH (t:Tool {name: $name}) RETURN t", map[string]any{"name": tool})[0], "t")
	wantProps(t, "tool", tp, map[string]any{"total_calls": int64(2), "successful_calls": int64(1), "failed_calls": int64(1),
		"total_duration_ms": int64(150), "last_used_at": batch[12].Event.Time})
	if _, ok := tp["owner"]; ok {
		t.Error("Tool has an owner")
	}
	call := nodeProps(t, query(ctx, t, d, "MATCH (c:ToolCall {id: $id}) RETURN c", map[string]any{"id": c1})[0], "c")
	wantProps(t, "tool call", call, map[string]any{"arguments": `{"q":"x"}`, "status": "success", "duration_ms": int64(120),
		"timestamp": batch[10].Event.Time, "owner": a.owner})
}

// TestApplyUserErased deletes everything a user owns and takes their calls off the Tool
// aggregate, leaving other users alone.
func TestApplyUserErased(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	a, b := newTenant(t, "erased"), newTenant(t, "kept")
	tool := "erase-tool-" + events.NewID()
	var sc scope
	sc.add(a, b)
	sc.tools = []string{tool}
	cleanupScope(t, d, &sc)

	r := newRecorder()
	var batch []Record
	for _, u := range []tenant{a, b} {
		tr, st := events.NewID(), events.NewID()
		batch = append(batch,
			r.rec(u.user, events.UserUpserted{UserID: events.UserID(u.user), Identifier: u.user}),
			r.rec(u.user, events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(u.user, "s"), SessionID: "s", Role: "user", Content: "x"}),
			r.rec(u.user, events.PreferenceAdded{PreferenceID: events.NewID(), Category: "c", Preference: "p", AppliesTo: []events.EntityRef{{Name: "E"}}}),
			r.rec(u.user, events.TraceStarted{TraceID: tr, SessionID: "s", Task: "t"}),
			r.rec(u.user, events.TraceStepAdded{TraceID: tr, StepID: st}),
			r.rec(u.user, events.ToolCallRecorded{TraceID: tr, StepID: st, ToolCallID: events.NewID(), ToolName: tool, Status: "success", DurationMS: ptr[int64](10)}),
		)
	}
	apply(ctx, t, d, batch)
	erase := r.rec(a.user, events.UserErased{Identifier: a.user, Reason: "gdpr"})
	out := apply(ctx, t, d, []Record{erase})
	if out.Applied[events.KindUserErased] != 1 {
		t.Fatalf("outcome %+v", out)
	}
	if n := value[int64](ctx, t, d, `UNWIND $labels AS l MATCH (n) WHERE l IN labels(n) AND n.owner = $owner RETURN count(n) AS v`,
		map[string]any{"labels": toAnySlice(graph.OwnedLabels), "owner": a.owner}); n != 0 {
		t.Errorf("%d nodes of the erased user remain", n)
	}
	if n := value[int64](ctx, t, d, `MATCH (n:User {owner: $owner}) RETURN count(n) AS v`, map[string]any{"owner": b.owner}); n != 1 {
		t.Errorf("the other user is gone")
	}
	tp := nodeProps(t, query(ctx, t, d, "MATCH (t:Tool {name: $name}) RETURN t", map[string]any{"name": tool})[0], "t")
	wantProps(t, "tool", tp, map[string]any{"total_calls": int64(1), "successful_calls": int64(1), "failed_calls": int64(0),
		"total_duration_ms": int64(10), "last_used_at": batch[11].Event.Time})

	// A tool only the erased user called goes with them: its free-text name may hold their data
	// (here the identifier itself), and a replay, which never creates it, has none.
	c := newTenant(t, "erased-own-tool")
	own := "crm_lookup:" + c.user
	sc.add(c)
	sc.tools = append(sc.tools, own)
	tr, st := events.NewID(), events.NewID()
	apply(ctx, t, d, []Record{
		r.rec(c.user, events.TraceStarted{TraceID: tr, SessionID: "s", Task: "t"}),
		r.rec(c.user, events.TraceStepAdded{TraceID: tr, StepID: st}),
		r.rec(c.user, events.ToolCallRecorded{TraceID: tr, StepID: st, ToolCallID: events.NewID(), ToolName: own, Status: "success"}),
		r.rec(c.user, events.ToolCallRecorded{TraceID: tr, StepID: st, ToolCallID: events.NewID(), ToolName: tool, Status: "error"}),
	})
	apply(ctx, t, d, []Record{r.rec(c.user, events.UserErased{Identifier: c.user})})
	if n := value[int64](ctx, t, d, "MATCH (t:Tool {name: $name}) RETURN count(t) AS v", map[string]any{"name": own}); n != 0 {
		t.Errorf("the tool only the erased user called survives (%d)", n)
	}
	tp = nodeProps(t, query(ctx, t, d, "MATCH (t:Tool {name: $name}) RETURN t", map[string]any{"name": tool})[0], "t")
	wantProps(t, "shared tool after the second erasure", tp, map[string]any{"total_calls": int64(1), "successful_calls": int64(1),
		"failed_calls": int64(0), "total_duration_ms": int64(10), "last_used_at": batch[11].Event.Time})
}

// TestErasureDeletesAToolUnderAConcurrentTally: an erasure deletes a Tool whose only calls
// were the erased user's while another partition's transaction records a call of the same
// tool: that tally found the Tool (MERGE) before the delete and waits for its lock. When the
// erasure commits, the tally fails on the deleted node (EntityNotFound), which the projector
// retries rather than blames on an event (isRejection); retried, it creates the Tool again and
// no call is lost.
func TestErasureDeletesAToolUnderAConcurrentTally(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	kept, gone := newTenant(t, "tally-kept"), newTenant(t, "tally-gone")
	tool := "race-tool-" + events.NewID()
	var sc scope
	sc.add(kept, gone)
	sc.tools = []string{tool}
	cleanupScope(t, d, &sc)
	r := newRecorder()
	calls := func(u tenant, n int) []Record {
		tr, st := events.NewID(), events.NewID()
		out := []Record{r.rec(u.user, events.TraceStarted{TraceID: tr, SessionID: "s", Task: "t"}), r.rec(u.user, events.TraceStepAdded{TraceID: tr, StepID: st})}
		for range n {
			out = append(out, r.rec(u.user, events.ToolCallRecorded{TraceID: tr, StepID: st, ToolCallID: events.NewID(), ToolName: tool, Status: "success", DurationMS: ptr[int64](1)}))
		}
		return out
	}
	apply(ctx, t, d, calls(gone, 1))
	keptCalls, erasure := calls(kept, 2), r.rec(gone.user, events.UserErased{Identifier: gone.user})

	// The erasure's transaction, left open: it holds the Tool's lock and has deleted it.
	sess := d.NewSession(ctx, neo4j.SessionConfig{})
	defer func() { _ = sess.Close(context.WithoutCancel(ctx)) }()
	tx, err := sess.BeginTransaction(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, tx, []Record{erasure}); err != nil {
		t.Fatal(err)
	}
	// The other partition, with the projector's policy: anything but a rejection is retried.
	type result struct {
		attempts int
		err      error
	}
	done := make(chan result, 1)
	go func() {
		for attempt := 1; ; attempt++ {
			s := d.NewSession(ctx, neo4j.SessionConfig{})
			_, err := neo4j.ExecuteWrite(ctx, s, func(tx neo4j.ManagedTransaction) (Outcome, error) { return Apply(ctx, tx, keptCalls) },
				neo4j.WithTxMetadata(map[string]any{"tally": tool}))
			_ = s.Close(ctx)
			if err == nil || isRejection(err) || attempt == 20 {
				done <- result{attempt, err}
				return
			}
		}
	}()
	// Commit the erasure once the tally waits for the Tool's lock.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		blocked := value[int64](ctx, t, d, "SHOW TRANSACTIONS YIELD status, metaData WHERE status STARTS WITH 'Blocked' AND metaData.tally = $tool RETURN count(*) AS v",
			map[string]any{"tool": tool})
		if blocked > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tally never waited for the Tool's lock")
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("the tally after %d attempts: %v", res.attempts, res.err)
	}
	if res.attempts < 2 {
		t.Errorf("the tally succeeded at its first attempt: it did not meet the deleted Tool")
	}
	rows := query(ctx, t, d, `MATCH (t:Tool {name: $name}) OPTIONAL MATCH (t)<-[:INSTANCE_OF]-(c:ToolCall)
RETURN t.total_calls AS total, t.successful_calls AS ok, t.total_duration_ms AS ms, count(c) AS instances`, map[string]any{"name": tool})
	if len(rows) != 1 {
		t.Fatalf("%d Tool nodes named %s, want 1", len(rows), tool)
	}
	for _, k := range []string{"total", "ok", "ms", "instances"} {
		if v, _ := rows[0].Get(k); v != int64(2) {
			t.Errorf("%s = %v, want 2 (the kept user's calls)", k, v)
		}
	}
}

// TestApplyIdempotentAndBatchIndependent: applying a batch twice leaves the graph as applying
// it once, and applying it event by event gives the same graph as one batch.
func TestApplyIdempotentAndBatchIndependent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	var sc scope
	tenants := []tenant{newTenant(t, "idem-a"), newTenant(t, "idem-b"), newTenant(t, "idem-c")}
	sc.add(tenants...)
	sc.tools = []string{"idem-tool-" + events.NewID(), "idem-tool2-" + events.NewID()}
	cleanupScope(t, d, &sc)

	batch := mixedLoad(newRecorder(), tenants, sc.tools, 400, 1)
	out := apply(ctx, t, d, batch)
	if len(out.Rejected) != 0 {
		t.Fatalf("rejected: %v", out.Rejected[0])
	}
	once := fingerprintOf(ctx, t, d, sc)
	if once.Nodes == 0 {
		t.Fatal("empty graph")
	}
	again := apply(ctx, t, d, batch)
	if len(again.Rejected) != 0 {
		t.Fatalf("second apply rejected: %v", again.Rejected[0])
	}
	if err := fingerprint.Compare(once, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Fatalf("applying the batch twice: %v", err)
	}

	purge(ctx, t, d, sc)
	for _, rec := range batch {
		apply(ctx, t, d, []Record{rec})
	}
	if err := fingerprint.Compare(once, fingerprintOf(ctx, t, d, sc), 20); err != nil {
		t.Fatalf("event by event vs one batch: %v", err)
	}
}

// TestApplyInterleaved: in one batch, interleaved tenants' message chains follow stored order
// and an add and its supersede take effect in order, though the statements write by kind.
func TestApplyInterleaved(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	var sc scope
	tenants := []tenant{newTenant(t, "inter-a"), newTenant(t, "inter-b")}
	sc.add(tenants...)
	cleanupScope(t, d, &sc)

	r := newRecorder()
	var batch []Record
	want := map[string][]string{} // conversation -> message ids in stored order
	var prefs []string
	for i := range 30 {
		u := tenants[i%2]
		session := fmt.Sprintf("s%d", i%3)
		conv := events.ConversationID(u.user, session)
		id := events.NewID()
		want[conv] = append(want[conv], id)
		batch = append(batch, r.rec(u.user, events.MessageAdded{MessageID: id, ConversationID: conv, SessionID: session, Role: "user", Content: fmt.Sprint(i)}))
		if i%5 == 0 {
			p := events.NewID()
			batch = append(batch, r.rec(tenants[0].user, events.PreferenceAdded{PreferenceID: p, Category: "c", Preference: fmt.Sprint(i)}))
			if len(prefs) > 0 {
				batch = append(batch, r.rec(tenants[0].user, events.PreferenceSuperseded{OldID: prefs[len(prefs)-1], NewID: p}))
			}
			prefs = append(prefs, p)
		}
	}
	out := apply(ctx, t, d, batch)
	if len(out.Rejected) != 0 {
		t.Fatalf("rejected: %v", out.Rejected[0])
	}
	for conv, ids := range want {
		recs := query(ctx, t, d, `MATCH (c:Conversation {id: $conv})-[:FIRST_MESSAGE]->(f)
			MATCH p = (f)-[:NEXT_MESSAGE*0..]->(m) WHERE NOT (m)-[:NEXT_MESSAGE]->()
			RETURN [n IN nodes(p) | n.id] AS ids`, map[string]any{"conv": conv})
		if len(recs) != 1 {
			t.Fatalf("conversation %s: %d chains", conv, len(recs))
		}
		got, _ := recs[0].Get("ids")
		if fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Errorf("conversation %s chain %v, want %v", conv, got, ids)
		}
	}
	active := value[[]any](ctx, t, d, `MATCH (p:Preference {owner: $owner}) WHERE NOT (p)-[:SUPERSEDED_BY]->() RETURN collect(p.id) AS v`,
		map[string]any{"owner": tenants[0].owner})
	if len(active) != 1 || active[0] != prefs[len(prefs)-1] {
		t.Errorf("active preferences %v, want only %s", active, prefs[len(prefs)-1])
	}
}

// TestApplyRejects: events that name another owner's nodes, missing nodes, or contradict the
// graph write nothing and come back with their reason.
func TestApplyRejects(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	a, b := newTenant(t, "rej-a"), newTenant(t, "rej-b")
	var sc scope
	sc.add(a, b)
	tool := "rej-tool-" + events.NewID()
	sc.tools = []string{tool}
	cleanupScope(t, d, &sc)

	r := newRecorder()
	msg, p1, p2, p3, tr, st := events.NewID(), events.NewID(), events.NewID(), events.NewID(), events.NewID(), events.NewID()
	acme := events.EntityID(a.user, "Acme", "")
	setup := []Record{
		r.rec(a.user, events.MessageAdded{MessageID: msg, ConversationID: events.ConversationID(a.user, "s"), SessionID: "s", Role: "user", Content: "x"}),
		r.rec(a.user, events.PreferenceAdded{PreferenceID: p1, Category: "c", Preference: "1", AppliesTo: []events.EntityRef{{Name: "Acme"}}}),
		r.rec(a.user, events.PreferenceAdded{PreferenceID: p2, Category: "c", Preference: "2"}),
		r.rec(a.user, events.PreferenceAdded{PreferenceID: p3, Category: "c", Preference: "3"}),
		r.rec(a.user, events.PreferenceSuperseded{OldID: p1, NewID: p2}),
		r.rec(a.user, events.TraceStarted{TraceID: tr, SessionID: "s", Task: "t"}),
		r.rec(a.user, events.TraceStepAdded{TraceID: tr, StepID: st}),
	}
	if out := apply(ctx, t, d, setup); len(out.Rejected) != 0 {
		t.Fatalf("setup rejected: %v", out.Rejected[0])
	}
	before := fingerprintOf(ctx, t, d, sc)
	bPref := events.NewID()
	tests := []struct {
		name string
		rec  Record
		want Reason
	}{
		{"message id of another user", r.rec(b.user, events.MessageAdded{MessageID: msg, ConversationID: events.ConversationID(b.user, "s"), SessionID: "s", Role: "user", Content: "y"}), ReasonForeignReference},
		{"preference id of another user", r.rec(b.user, events.PreferenceAdded{PreferenceID: p3, Category: "c", Preference: "b"}), ReasonForeignReference},
		{"supersede of another user's preferences", r.rec(b.user, events.PreferenceSuperseded{OldID: p2, NewID: p3}), ReasonForeignReference},
		{"supersede of unknown preferences", r.rec(a.user, events.PreferenceSuperseded{OldID: events.NewID(), NewID: p3}), ReasonMissingReference},
		{"supersede of a superseded preference", r.rec(a.user, events.PreferenceSuperseded{OldID: p1, NewID: p3}), ReasonConflict},
		{"supersede by itself", r.rec(a.user, events.PreferenceSuperseded{OldID: p3, NewID: p3}), ReasonConflict},
		{"applies_to another user's entity", r.rec(b.user, events.PreferenceAdded{PreferenceID: bPref, Category: "c", Preference: "b", AppliesTo: []events.EntityRef{{ID: acme}}}), ReasonForeignReference},
		{"applies_to an unknown entity", r.rec(b.user, events.PreferenceAdded{PreferenceID: bPref, Category: "c", Preference: "b", AppliesTo: []events.EntityRef{{ID: events.NewID()}}}), ReasonMissingReference},
		{"step of another user's trace", r.rec(b.user, events.TraceStepAdded{TraceID: tr, StepID: events.NewID()}), ReasonForeignReference},
		{"step of an unknown trace", r.rec(a.user, events.TraceStepAdded{TraceID: events.NewID(), StepID: events.NewID()}), ReasonMissingReference},
		{"tool call in another user's step", r.rec(b.user, events.ToolCallRecorded{TraceID: tr, StepID: st, ToolCallID: events.NewID(), ToolName: tool, Status: "success"}), ReasonForeignReference},
		{"tool call in a step of another trace", r.rec(a.user, events.ToolCallRecorded{TraceID: events.NewID(), StepID: st, ToolCallID: events.NewID(), ToolName: tool, Status: "success"}), ReasonMissingReference},
		{"completion of another user's trace", r.rec(b.user, events.TraceCompleted{TraceID: tr, Outcome: "stolen"}), ReasonForeignReference},
		{"completion of an unknown trace", r.rec(a.user, events.TraceCompleted{TraceID: events.NewID()}), ReasonMissingReference},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := apply(ctx, t, d, []Record{tt.rec})
			if len(out.Rejected) != 1 {
				t.Fatalf("outcome %+v, want one rejection", out)
			}
			rej := out.Rejected[0]
			if rej.Reason != tt.want || rej.Sequence != tt.rec.Sequence || !errors.Is(rej, ErrRejected) {
				t.Fatalf("rejection %v, want %s of sequence %d", rej, tt.want, tt.rec.Sequence)
			}
		})
	}
	if err := fingerprint.Compare(before, fingerprintOf(ctx, t, d, sc), 10); err != nil {
		t.Fatalf("rejected events changed the graph: %v", err)
	}
}
