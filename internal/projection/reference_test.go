package projection

// The reference projection: the per-row Cypher that Apply used before it decided each batch
// in Go (effects.go), kept here as the oracle the current Apply must agree with. Applied one
// event per transaction, it is the definition of "the graph applying the events one by one
// in stored order gives": TestApplyMatchesReference compares fingerprints and outcomes of
// both over adversarial loads (duplicates, foreign, missing and conflicting references,
// erasures, the shared tenant, tool calls).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/testenv"
)

// refMergeUser merges the row's user (the implicit creation of a User by another kind of event:
// no attributes) into u. Only for rows with a user: the shared tenant has no User node.
const refMergeUser = `
      MERGE (u:User {identifier: r.user})
      ON CREATE SET u.id = r.user_id, u.created_at = r.time, u.owner = r.owner,
                    u.attributes_json = '{}', u.recorded_at = r.recorded_at, u.recorded_seq = r.seq`

const refCypherUserUpserted = `
UNWIND $rows AS r
CALL (r) {
  MERGE (u:User {identifier: r.user})
  ON CREATE SET u.id = r.user_id, u.created_at = r.time, u.owner = r.owner,
                u.attributes_json = coalesce(r.attributes_json, '{}'),
                u.recorded_at = r.recorded_at, u.recorded_seq = r.seq
  ON MATCH SET u.attributes_json = coalesce(r.attributes_json, u.attributes_json)
  RETURN 'ok' AS status
}
RETURN r.seq AS seq, status`

// The conversation keeps last_message_id, the tail of its chain: the next message links from
// it, so the chain follows stored order and never forks.
const refCypherMessageAdded = `
UNWIND $rows AS r
CALL (r) {
  OPTIONAL MATCH (x:Message {id: r.id})
  WITH r, CASE WHEN x IS NULL THEN 'ok' WHEN x.owner = r.owner THEN 'duplicate' ELSE 'foreign_reference' END AS status
  CALL (r, status) {
    WITH r WHERE status = 'ok'
    MERGE (c:Conversation {id: r.conversation_id})
    ON CREATE SET c.session_id = r.session_id, c.user_identifier = r.user, c.owner = r.owner,
                  c.title = r.title, c.created_at = r.time, c.updated_at = r.timestamp,
                  c.recorded_at = r.recorded_at, c.recorded_seq = r.seq
    ON MATCH SET c.title = coalesce(r.title, c.title),
                 c.updated_at = CASE WHEN c.updated_at IS NULL OR r.timestamp > c.updated_at
                                     THEN r.timestamp ELSE c.updated_at END
    CREATE (m:Message {id: r.id, role: r.role, content: r.content, timestamp: r.timestamp,
                       metadata: r.metadata, owner: r.owner, recorded_at: r.recorded_at,
                       recorded_seq: r.seq})
    CREATE (c)-[:HAS_MESSAGE]->(m)
    WITH r, c, m
    OPTIONAL MATCH (prev:Message {id: c.last_message_id})
    FOREACH (_ IN CASE WHEN prev IS NULL THEN [1] ELSE [] END | CREATE (c)-[:FIRST_MESSAGE]->(m))
    FOREACH (p IN CASE WHEN prev IS NULL THEN [] ELSE [prev] END | CREATE (p)-[:NEXT_MESSAGE]->(m))
    SET c.last_message_id = m.id
    WITH r, c
    CALL (r, c) {
      WITH r, c WHERE r.user IS NOT NULL` + refMergeUser + `
      MERGE (u)-[:HAS_CONVERSATION]->(c)
    }
  }
  RETURN status
}
RETURN r.seq AS seq, status`

// An applies_to reference by id must name an Entity of the same owner; by name and type it
// merges the owner's Entity of the derived id (rows.go computes events.EntityID).
const refCypherPreferenceAdded = `
UNWIND $rows AS r
CALL (r) {
  OPTIONAL MATCH (x:Preference {id: r.id})
  CALL (r) {
    UNWIND r.entity_ids AS eid
    OPTIONAL MATCH (e:Entity {id: eid})
    RETURN sum(CASE WHEN e IS NULL THEN 1 ELSE 0 END) AS missing,
           sum(CASE WHEN e IS NOT NULL AND e.owner <> r.owner THEN 1 ELSE 0 END) AS foreign
  }
  WITH r, CASE
    WHEN x IS NOT NULL AND x.owner = r.owner THEN 'duplicate'
    WHEN x IS NOT NULL OR foreign > 0 THEN 'foreign_reference'
    WHEN missing > 0 THEN 'missing_reference'
    ELSE 'ok' END AS status
  CALL (r, status) {
    WITH r WHERE status = 'ok'
    CREATE (p:Preference {id: r.id, category: r.category, preference: r.preference,
                          context: r.context, confidence: r.confidence, created_at: r.time,
                          valid_from: r.valid_from, metadata: r.metadata, owner: r.owner,
                          recorded_at: r.recorded_at, recorded_seq: r.seq})
    WITH r, p
    CALL (r, p) {
      UNWIND r.entity_ids AS eid
      MATCH (e:Entity {id: eid})
      MERGE (p)-[:APPLIES_TO]->(e)
    }
    CALL (r, p) {
      UNWIND r.entities AS en
      MERGE (e:Entity {id: en.id})
      ON CREATE SET e.name = en.name, e.type = en.type, e.owner = r.owner, e.created_at = r.time,
                    e.recorded_at = r.recorded_at, e.recorded_seq = r.seq
      MERGE (p)-[:APPLIES_TO]->(e)
    }
    CALL (r, p) {
      WITH r, p WHERE r.user IS NOT NULL` + refMergeUser + `
      MERGE (u)-[:HAS_PREFERENCE]->(p)
      WITH r, u
      UNWIND r.entities AS en
      MATCH (e:Entity {id: en.id})
      MERGE (u)-[:HAS_ENTITY]->(e)
    }
  }
  RETURN status
}
RETURN r.seq AS seq, status`

// Both preferences must exist and belong to the event's owner; the old one must not be
// superseded yet and the new one must still be active (no forks, no cycles).
const refCypherPreferenceSuperseded = `
UNWIND $rows AS r
CALL (r) {
  OPTIONAL MATCH (o:Preference {id: r.old_id})
  OPTIONAL MATCH (n:Preference {id: r.new_id})
  WITH r, o, n, CASE
    WHEN o IS NULL OR n IS NULL THEN 'missing_reference'
    WHEN o.owner <> r.owner OR n.owner <> r.owner THEN 'foreign_reference'
    WHEN EXISTS { (o)-[:SUPERSEDED_BY]->(n) } THEN 'duplicate'
    WHEN o = n OR EXISTS { (o)-[:SUPERSEDED_BY]->() } OR EXISTS { (n)-[:SUPERSEDED_BY]->() } THEN 'conflict'
    ELSE 'ok' END AS status
  CALL (r, o, n, status) {
    WITH r, o, n WHERE status = 'ok'
    CREATE (o)-[:SUPERSEDED_BY {at: r.valid_until, recorded_at: r.recorded_at}]->(n)
    SET o.valid_until = r.valid_until, o.superseded_recorded_at = r.recorded_at,
        o.superseded_seq = r.seq
  }
  RETURN status
}
RETURN r.seq AS seq, status`

const refCypherTraceStarted = `
UNWIND $rows AS r
CALL (r) {
  OPTIONAL MATCH (x:ReasoningTrace {id: r.id})
  WITH r, CASE WHEN x IS NULL THEN 'ok' WHEN x.owner = r.owner THEN 'duplicate' ELSE 'foreign_reference' END AS status
  CALL (r, status) {
    WITH r WHERE status = 'ok'
    CREATE (t:ReasoningTrace {id: r.id, session_id: r.session_id, task: r.task,
                              started_at: r.time, metadata: r.metadata, user_identifier: r.user,
                              owner: r.owner, recorded_at: r.recorded_at, recorded_seq: r.seq})
    WITH r, t
    CALL (r, t) {
      WITH r, t WHERE r.user IS NOT NULL` + refMergeUser + `
      MERGE (u)-[:HAS_TRACE]->(t)
    }
  }
  RETURN status
}
RETURN r.seq AS seq, status`

// A step without a number gets the trace's highest number plus one, in stored order.
const refCypherTraceStepAdded = `
UNWIND $rows AS r
CALL (r) {
  OPTIONAL MATCH (t:ReasoningTrace {id: r.trace_id})
  OPTIONAL MATCH (x:ReasoningStep {id: r.id})
  WITH r, t, CASE
    WHEN x IS NOT NULL AND x.owner = r.owner THEN 'duplicate'
    WHEN x IS NOT NULL THEN 'foreign_reference'
    WHEN t IS NULL THEN 'missing_reference'
    WHEN t.owner <> r.owner THEN 'foreign_reference'
    ELSE 'ok' END AS status
  CALL (r, t, status) {
    WITH r, t WHERE status = 'ok'
    CALL (t) {
      OPTIONAL MATCH (t)-[:HAS_STEP]->(s:ReasoningStep)
      RETURN max(s.step_number) AS top
    }
    WITH r, t, CASE WHEN r.step_number > 0 THEN r.step_number ELSE coalesce(top, 0) + 1 END AS num
    CREATE (s:ReasoningStep {id: r.id, step_number: num, thought: r.thought, action: r.action,
                             observation: r.observation, timestamp: r.time, owner: r.owner,
                             recorded_at: r.recorded_at, recorded_seq: r.seq})
    CREATE (t)-[:HAS_STEP {order: num}]->(s)
  }
  RETURN status
}
RETURN r.seq AS seq, status`

// The Tool aggregate counts a call only when the ToolCall is created. failed_calls counts
// the statuses the library counts (error, timeout). Tool carries no owner and no transaction
// time: it is global, and which partition creates it first is not deterministic.
const refCypherToolCallRecorded = `
UNWIND $rows AS r
CALL (r) {
  OPTIONAL MATCH (s:ReasoningStep {id: r.step_id})
  OPTIONAL MATCH (x:ToolCall {id: r.id})
  WITH r, s, CASE
    WHEN x IS NOT NULL AND x.owner = r.owner THEN 'duplicate'
    WHEN x IS NOT NULL THEN 'foreign_reference'
    WHEN s IS NULL THEN 'missing_reference'
    WHEN s.owner <> r.owner THEN 'foreign_reference'
    WHEN NOT EXISTS { (:ReasoningTrace {id: r.trace_id})-[:HAS_STEP]->(s) } THEN 'missing_reference'
    ELSE 'ok' END AS status
  CALL (r, s, status) {
    WITH r, s WHERE status = 'ok'
    CREATE (c:ToolCall {id: r.id, tool_name: r.tool_name, arguments: r.arguments,
                        result: r.result, status: r.status, duration_ms: r.duration_ms,
                        error: r.error, timestamp: r.time, owner: r.owner,
                        recorded_at: r.recorded_at, recorded_seq: r.seq})
    CREATE (s)-[:USES_TOOL]->(c)
    MERGE (tool:Tool {name: r.tool_name})
    ON CREATE SET tool.total_calls = 0, tool.successful_calls = 0, tool.failed_calls = 0,
                  tool.total_duration_ms = 0
    CREATE (c)-[:INSTANCE_OF]->(tool)
    SET tool.lock = true
    REMOVE tool.lock
    SET tool.total_calls = tool.total_calls + 1,
        tool.successful_calls = tool.successful_calls + CASE WHEN r.status = 'success' THEN 1 ELSE 0 END,
        tool.failed_calls = tool.failed_calls + CASE WHEN r.status IN ['error', 'timeout'] THEN 1 ELSE 0 END,
        tool.total_duration_ms = tool.total_duration_ms + coalesce(r.duration_ms, 0),
        tool.last_used_at = CASE WHEN tool.last_used_at IS NULL OR r.time > tool.last_used_at
                                 THEN r.time ELSE tool.last_used_at END
  }
  RETURN status
}
RETURN r.seq AS seq, status`

const refCypherLockTools = `
UNWIND $names AS name
MATCH (t:Tool {name: name})
SET t.lock = true
REMOVE t.lock`

const refCypherTraceCompleted = `
UNWIND $rows AS r
CALL (r) {
  OPTIONAL MATCH (t:ReasoningTrace {id: r.trace_id})
  WITH r, t, CASE
    WHEN t IS NULL THEN 'missing_reference'
    WHEN t.owner <> r.owner THEN 'foreign_reference'
    ELSE 'ok' END AS status
  CALL (r, t, status) {
    WITH r, t WHERE status = 'ok'
    SET t.outcome = r.outcome, t.success = r.success, t.completed_at = r.time
  }
  RETURN status
}
RETURN r.seq AS seq, status`

// Erasure: subtract the user's calls from the Tool aggregates while they still exist, delete
// every node the owner owns, then recompute each touched Tool's last_used_at from the calls
// that remain. Every Tool update first writes a property to take the Tool's lock, so that the
// values read after it are the committed ones (Neo4j reads committed data; the lock makes the
// read-modify-write of concurrent partitions serialize).
const refCypherUserErased = `
UNWIND $rows AS r
CALL (r) {
  CALL (r) {
    MATCH (c:ToolCall {owner: r.owner})-[:INSTANCE_OF]->(tool:Tool)
    WITH tool, count(c) AS calls,
         sum(CASE WHEN c.status = 'success' THEN 1 ELSE 0 END) AS ok,
         sum(CASE WHEN c.status IN ['error', 'timeout'] THEN 1 ELSE 0 END) AS failed,
         sum(coalesce(c.duration_ms, 0)) AS duration
    SET tool.lock = true
    REMOVE tool.lock
    SET tool.total_calls = tool.total_calls - calls,
        tool.successful_calls = tool.successful_calls - ok,
        tool.failed_calls = tool.failed_calls - failed,
        tool.total_duration_ms = tool.total_duration_ms - duration
    RETURN collect(tool) AS tools
  }
  CALL (r) { MATCH (n:ToolCall {owner: r.owner}) DETACH DELETE n }
  CALL (r) { MATCH (n:ReasoningStep {owner: r.owner}) DETACH DELETE n }
  CALL (r) { MATCH (n:ReasoningTrace {owner: r.owner}) DETACH DELETE n }
  CALL (r) { MATCH (n:Message {owner: r.owner}) DETACH DELETE n }
  CALL (r) { MATCH (n:Conversation {owner: r.owner}) DETACH DELETE n }
  CALL (r) { MATCH (n:Preference {owner: r.owner}) DETACH DELETE n }
  CALL (r) { MATCH (n:Entity {owner: r.owner}) DETACH DELETE n }
  CALL (r) { MATCH (n:User {owner: r.owner}) DETACH DELETE n }
  CALL (tools) {
    UNWIND tools AS tool
    OPTIONAL MATCH (tool)<-[:INSTANCE_OF]-(c:ToolCall)
    WITH tool, count(c) AS calls, max(c.timestamp) AS last
    CALL (tool, calls) { WITH tool WHERE calls = 0 DETACH DELETE tool }
    CALL (tool, calls, last) { WITH tool, last WHERE calls > 0 SET tool.last_used_at = last }
  }
  RETURN 'ok' AS status
}
RETURN r.seq AS seq, status`

var refStatements = map[events.Kind]string{
	events.KindUserUpserted:         refCypherUserUpserted,
	events.KindMessageAdded:         refCypherMessageAdded,
	events.KindPreferenceAdded:      refCypherPreferenceAdded,
	events.KindPreferenceSuperseded: refCypherPreferenceSuperseded,
	events.KindTraceStarted:         refCypherTraceStarted,
	events.KindTraceStepAdded:       refCypherTraceStepAdded,
	events.KindToolCallRecorded:     refCypherToolCallRecorded,
	events.KindTraceCompleted:       refCypherTraceCompleted,
	events.KindUserErased:           refCypherUserErased,
	events.KindUserRecreated:        refCypherUserUpserted, // an upsert without attributes
}

// refApplyOne applies one event with the reference Cypher and returns its status: "ok",
// "duplicate" or a rejection reason.
func refApplyOne(ctx context.Context, tx neo4j.ManagedTransaction, r Record) (string, error) {
	m, err := row(r)
	if err != nil {
		return "", err
	}
	if r.Event.Kind == events.KindToolCallRecorded {
		d, _ := dataAs[events.ToolCallRecorded](r)
		res, err := tx.Run(ctx, refCypherLockTools, map[string]any{"names": []any{d.ToolName}})
		if err == nil {
			_, err = res.Consume(ctx)
		}
		if err != nil {
			return "", err
		}
	}
	res, err := tx.Run(ctx, refStatements[r.Event.Kind], map[string]any{"rows": []any{m}})
	if err != nil {
		return "", err
	}
	rec, err := res.Single(ctx)
	if err != nil {
		return "", err
	}
	status, _, err := neo4j.GetRecordValue[string](rec, "status")
	return status, err
}

// statuses says what happened to each event of a load, by stream sequence.
type statuses map[uint64]string

// refProject applies the load one event per transaction with the reference Cypher.
func refProject(ctx context.Context, t *testing.T, d neo4j.DriverWithContext, load []Record) statuses {
	t.Helper()
	sess := d.NewSession(ctx, neo4j.SessionConfig{})
	defer func() { _ = sess.Close(ctx) }()
	out := statuses{}
	for _, r := range load {
		st, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (string, error) { return refApplyOne(ctx, tx, r) })
		if err != nil {
			t.Fatalf("reference apply of %d (%s): %v", r.Sequence, r.Event.Kind, err)
		}
		out[r.Sequence] = st
	}
	return out
}

// summary reduces statuses to what an Outcome tells: applied by kind, duplicates, rejections.
func summary(load []Record, st statuses) string {
	applied := map[events.Kind]int{}
	dups := 0
	var rejected []string
	for _, r := range load {
		switch s := st[r.Sequence]; s {
		case "ok":
			applied[r.Event.Kind]++
		case "duplicate":
			dups++
		default:
			rejected = append(rejected, fmt.Sprintf("%d:%s", r.Sequence, s))
		}
	}
	return fmt.Sprintf("applied %v duplicates %d rejected %v", applied, dups, rejected)
}

func outcomeSummary(load []Record, outs []Outcome) string {
	applied := map[events.Kind]int{}
	dups := 0
	rej := map[uint64]Reason{}
	for _, o := range outs {
		for k, n := range o.Applied {
			applied[k] += n
		}
		dups += o.Duplicates
		for _, r := range o.Rejected {
			rej[r.Sequence] = r.Reason
		}
	}
	var rejected []string
	for _, r := range load {
		if reason, ok := rej[r.Sequence]; ok {
			rejected = append(rejected, fmt.Sprintf("%d:%s", r.Sequence, reason))
		}
	}
	return fmt.Sprintf("applied %v duplicates %d rejected %v", applied, dups, rejected)
}

// adversarialLoad is a valid mixed load of tenants (genLoad, erasures included) with noise
// mixed in, every event one that decodes (derived ids agree with its user): exact repeats of earlier events, other tenants' ids, unknown ids, supersede
// conflicts, tool calls naming the wrong trace, upserts without attributes, and events of
// the shared tenant.
func adversarialLoad(r *recorder, tenants []tenant, tools []string, n int, seed uint64) []Record {
	rnd := rand.New(rand.NewPCG(seed, 7))
	base := genLoad(tenants, tools, n, seed, loadOptions{erase: true})
	type pools struct{ msgs, prefs, entities, traces, steps, calls []string }
	pool := map[string]*pools{}
	stepTrace := map[string]string{}
	pick := func(s []string) string {
		if len(s) == 0 {
			return events.NewID()
		}
		return s[rnd.IntN(len(s))]
	}
	other := func(u string) string {
		for {
			if v := tenants[rnd.IntN(len(tenants))].user; v != u {
				return v
			}
		}
	}
	var out []Record
	var shared []string // the shared tenant's preferences
	sharedTrace, sharedStep := "", ""
	for _, ev := range base {
		u := ev.User
		p := pool[u]
		if p == nil {
			p = &pools{}
			pool[u] = p
		}
		rec := r.rec(u, ev.Data)
		out = append(out, rec)
		switch d := ev.Data.(type) {
		case events.MessageAdded:
			p.msgs = append(p.msgs, d.MessageID)
		case events.PreferenceAdded:
			p.prefs = append(p.prefs, d.PreferenceID)
			for _, ref := range d.AppliesTo {
				if ref.ID == "" {
					p.entities = append(p.entities, events.EntityID(u, ref.Name, ref.Type))
				}
			}
		case events.TraceStarted:
			p.traces = append(p.traces, d.TraceID)
		case events.TraceStepAdded:
			p.steps = append(p.steps, d.StepID)
			stepTrace[d.StepID] = d.TraceID
		case events.ToolCallRecorded:
			p.calls = append(p.calls, d.ToolCallID)
		}
		if rnd.IntN(4) != 0 {
			continue
		}
		v := other(u)
		q := pool[v]
		if q == nil {
			q = &pools{}
		}
		var noise []Record
		switch rnd.IntN(16) {
		case 0: // one of the tenant's events stored again
			var mine []Record
			for _, o := range out {
				if o.Event.User == u {
					mine = append(mine, o)
				}
			}
			noise = append(noise, r.rec(u, mine[rnd.IntN(len(mine))].Event.Data))
		case 1: // a message id of another tenant
			noise = append(noise, r.rec(u, events.MessageAdded{MessageID: pick(q.msgs), ConversationID: events.ConversationID(u, "s1"), SessionID: "s1", Role: "user", Content: "theirs"}))
		case 2: // a preference id of another tenant, or applies_to their entity, or an unknown one
			refs := []events.EntityRef{{ID: pick(q.entities)}}
			if rnd.IntN(2) == 0 {
				refs = []events.EntityRef{{ID: events.NewID()}, {Name: "Acme", Type: "Company"}}
			}
			id := events.NewID()
			if rnd.IntN(2) == 0 {
				id, refs = pick(q.prefs), nil
			}
			noise = append(noise, r.rec(u, events.PreferenceAdded{PreferenceID: id, Category: "c", Preference: "x", AppliesTo: refs}))
		case 3: // supersedes: another tenant's, unknown, by itself, of a superseded one
			var d events.PreferenceSuperseded
			switch rnd.IntN(4) {
			case 0:
				d = events.PreferenceSuperseded{OldID: pick(q.prefs), NewID: pick(p.prefs)}
			case 1:
				d = events.PreferenceSuperseded{OldID: events.NewID(), NewID: pick(p.prefs)}
			case 2:
				x := pick(p.prefs)
				d = events.PreferenceSuperseded{OldID: x, NewID: x}
			default:
				d = events.PreferenceSuperseded{OldID: pick(p.prefs), NewID: pick(p.prefs)}
			}
			noise = append(noise, r.rec(u, d))
		case 4: // a step of another tenant's trace, of an unknown trace, a step id of another tenant
			d := events.TraceStepAdded{TraceID: pick(q.traces), StepID: events.NewID()}
			switch rnd.IntN(3) {
			case 1:
				d.TraceID = events.NewID()
			case 2:
				d.TraceID, d.StepID = pick(p.traces), pick(q.steps)
			}
			noise = append(noise, r.rec(u, d))
		case 5: // tool calls: in another tenant's step, in a step of another trace, another's call id
			step := pick(p.steps)
			d := events.ToolCallRecorded{TraceID: stepTrace[step], StepID: step, ToolCallID: events.NewID(), ToolName: tools[0], Status: "error"}
			switch rnd.IntN(3) {
			case 0:
				d.StepID = pick(q.steps)
				d.TraceID = stepTrace[d.StepID]
			case 1:
				d.TraceID = pick(p.traces)
			default:
				d.ToolCallID = pick(q.calls)
			}
			noise = append(noise, r.rec(u, d))
		case 6: // completions of another tenant's or an unknown trace, or again of one's own
			id := pick(q.traces)
			if rnd.IntN(2) == 0 {
				id = pick(p.traces)
			}
			noise = append(noise, r.rec(u, events.TraceCompleted{TraceID: id, Outcome: fmt.Sprint("again ", rnd.IntN(9))}))
		case 7: // an upsert without attributes
			noise = append(noise, r.rec(u, events.UserUpserted{UserID: events.UserID(u), Identifier: u}))
		case 8: // a message with a title and an earlier timestamp
			ts := ev.Time.Add(-time.Hour)
			noise = append(noise, r.rec(u, events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(u, "s2"), SessionID: "s2",
				Role: "assistant", Content: "late", Title: fmt.Sprint("t", rnd.IntN(5)), Timestamp: &ts}))
		case 9, 10: // the shared tenant: messages, preferences with entities, supersedes
			switch rnd.IntN(3) {
			case 0:
				noise = append(noise, r.rec("", events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID("", "s"), SessionID: "s", Role: "user", Content: "shared"}))
			case 1:
				id := events.NewID()
				shared = append(shared, id)
				noise = append(noise, r.rec("", events.PreferenceAdded{PreferenceID: id, Category: "c", Preference: "shared", AppliesTo: []events.EntityRef{{Name: "Tea"}}}))
			default:
				if len(shared) > 1 {
					noise = append(noise, r.rec("", events.PreferenceSuperseded{OldID: shared[len(shared)-2], NewID: shared[len(shared)-1]}))
				}
			}
		case 11: // the shared tenant's traces and tool calls
			if sharedTrace == "" || rnd.IntN(3) == 0 {
				sharedTrace, sharedStep = events.NewID(), ""
				noise = append(noise, r.rec("", events.TraceStarted{TraceID: sharedTrace, SessionID: "s", Task: "shared"}))
			} else if sharedStep == "" {
				sharedStep = events.NewID()
				noise = append(noise, r.rec("", events.TraceStepAdded{TraceID: sharedTrace, StepID: sharedStep}))
			} else {
				noise = append(noise, r.rec("", events.ToolCallRecorded{TraceID: sharedTrace, StepID: sharedStep, ToolCallID: events.NewID(),
					ToolName: tools[rnd.IntN(len(tools))], Status: "success", DurationMS: ptr(int64(5))}))
			}
		case 12: // a message in another tenant's conversation id (it belongs to them)
			noise = append(noise, r.rec(u, events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(u, "s0"), SessionID: "s0", Role: "user", Content: "mine"}))
		default: // a step with an explicit number, then one without
			tr := pick(p.traces)
			noise = append(noise, r.rec(u, events.TraceStepAdded{TraceID: tr, StepID: events.NewID(), StepNumber: 1 + rnd.IntN(3)}))
			noise = append(noise, r.rec(u, events.TraceStepAdded{TraceID: tr, StepID: events.NewID()}))
		}
		out = append(out, noise...)
	}
	return out
}

// TestApplyMatchesReference: Apply, over batches of random sizes, gives the graph and the
// outcomes of the reference projection applied event by event, on adversarial loads; so
// does a Rebuild (the replay's path into an empty graph) over the same batches. (Not
// applied twice here: with erasures, an event naming another tenant's id is foreign the
// first time and, once that tenant is erased, new the second. The checkpoint is what keeps
// a batch from being applied twice; TestApplyIdempotentAndBatchIndependent shows valid loads
// idempotent.)
func TestApplyMatchesReference(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	neo := testenv.StartNeo4jProcess(t) // the shared tenant's nodes are global: a database of its own
	d := neo.Driver(t)
	if err := graph.ApplySchema(ctx, d, ""); err != nil {
		t.Fatal(err)
	}
	tenants := []tenant{newTenant(t, "ref-a"), newTenant(t, "ref-b"), newTenant(t, "ref-c")}
	tools := []string{"ref-tool-a", "ref-tool-b"}
	owners := []string{events.SharedTenantToken}
	for _, tn := range tenants {
		owners = append(owners, tn.owner)
	}
	scope := fingerprint.Scope{Owners: owners, Tools: tools}
	wipe := func() {
		t.Helper()
		if _, err := neo4j.ExecuteQuery(ctx, d, "MATCH (n) DETACH DELETE n", nil, neo4j.EagerResultTransformer); err != nil {
			t.Fatal(err)
		}
	}
	fp := func() fingerprint.Fingerprint {
		t.Helper()
		f, err := fingerprint.Of(ctx, d, "", scope)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for seed := uint64(1); seed <= 3; seed++ {
		load := adversarialLoad(newRecorder(), tenants, tools, 300, seed)
		wipe()
		want := refProject(ctx, t, d, load)
		wantFP := fp()
		seen := map[string]int{}
		for _, s := range want {
			seen[s]++
		}
		for _, r := range load {
			seen[string(r.Event.Kind)]++
		}
		for _, s := range []string{"ok", "duplicate", string(ReasonForeignReference), string(ReasonMissingReference), string(ReasonConflict),
			string(events.KindUserErased), string(events.KindToolCallRecorded), string(events.KindPreferenceSuperseded)} {
			if seen[s] == 0 || wantFP.Nodes < 150 {
				t.Fatalf("seed %d: the load is too tame: %v, %s", seed, seen, wantFP)
			}
		}

		wipe()
		rnd := rand.New(rand.NewPCG(seed, 99))
		var batches [][]Record
		for rest := load; len(rest) > 0; {
			n := min(len(rest), 1+rnd.IntN([]int{3, 40, 300}[rnd.IntN(3)]))
			batches = append(batches, rest[:n])
			rest = rest[n:]
		}
		var outs []Outcome
		for _, b := range batches {
			outs = append(outs, apply(ctx, t, d, b))
		}
		if got, want := outcomeSummary(load, outs), summary(load, want); got != want {
			t.Fatalf("seed %d: outcomes differ from the reference:\n got %s\nwant %s", seed, got, want)
		}
		if err := fingerprint.Compare(wantFP, fp(), 20); err != nil {
			t.Fatalf("seed %d: graph differs from the reference: %v", seed, err)
		}

		// The same batches through a Rebuild (a replay into an empty graph: state remembered
		// instead of looked up, Tools recounted at the end), now and then a batch whose
		// transaction fails first, and a Rebuild that starts to look up the graph halfway.
		wipe()
		outs = outs[:0]
		rb := NewRebuild(1 << 20)
		sess := d.NewSession(ctx, neo4j.SessionConfig{})
		for i, b := range batches {
			if rnd.IntN(5) == 0 {
				tx, err := sess.BeginTransaction(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := rb.Apply(ctx, tx, b); err != nil {
					t.Fatal(err)
				}
				_ = tx.Rollback(ctx)
			}
			if i == len(batches)*3/4 {
				rb.Forget()
			}
			out, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (Outcome, error) { return rb.Apply(ctx, tx, b) })
			if err != nil {
				t.Fatalf("seed %d: rebuild: %v", seed, err)
			}
			rb.Commit()
			outs = append(outs, out)
		}
		if _, err := neo4j.ExecuteWrite(ctx, sess, func(tx neo4j.ManagedTransaction) (bool, error) { return true, RecountTools(ctx, tx) }); err != nil {
			t.Fatal(err)
		}
		_ = sess.Close(ctx)
		if got, want := outcomeSummary(load, outs), summary(load, want); got != want {
			t.Fatalf("seed %d: rebuild outcomes differ from the reference:\n got %s\nwant %s", seed, got, want)
		}
		if err := fingerprint.Compare(wantFP, fp(), 20); err != nil {
			t.Fatalf("seed %d: rebuilt graph differs from the reference: %v", seed, err)
		}
	}
}
