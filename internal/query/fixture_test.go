package query

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/testenv"
)

// The fixture writes graph data exactly as docs/graph.md says the projector does (labels,
// properties, owner, derived ids, recorded_at/recorded_seq), with parameterized Cypher, so the
// reads are tested without the projector. End-to-end tests replace it with the real projector.

// ownedLabels are the labels whose nodes carry owner (docs/graph.md).
var ownedLabels = []string{"User", "Conversation", "Message", "Preference", "Entity", "ReasoningTrace", "ReasoningStep", "ToolCall", "Fact"}

// neo4jDriver returns the shared Neo4j with the schema applied.
func neo4jDriver(t *testing.T) neo4j.DriverWithContext {
	t.Helper()
	d := testenv.Neo4j(t)
	if err := graph.ApplySchema(t.Context(), d, ""); err != nil {
		t.Fatalf("apply schema: %v", err)
	}
	return d
}

type fixture struct {
	t     *testing.T
	d     neo4j.DriverWithContext
	id    string // the user's identifier
	owner string // its tenant token
	seq   int64  // last recorded_seq written
	tools []string
	// loc is the zone datetimes are stored in: offset Z as docs/graph.md asks, or time.UTC to
	// check that reads compare instants whatever the stored zone.
	loc *time.Location
}

// newFixture returns a fixture for a fresh user of this test and removes everything it owns
// when the test ends.
func newFixture(t *testing.T, d neo4j.DriverWithContext, name string) *fixture {
	t.Helper()
	id := testenv.User(t, name)
	owner, err := events.TenantToken(id)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, d: d, id: id, owner: owner, loc: offsetZ}
	t.Cleanup(f.cleanup)
	return f
}

func (f *fixture) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, label := range ownedLabels {
		// Labels cannot be parameters; these are constants.
		if _, err := neo4j.ExecuteQuery(ctx, f.d, "MATCH (n:"+label+" {owner: $owner}) DETACH DELETE n",
			map[string]any{"owner": f.owner}, neo4j.EagerResultTransformer); err != nil {
			f.t.Errorf("cleanup %s of %s: %v", label, f.owner, err)
		}
	}
	if len(f.tools) > 0 {
		if _, err := neo4j.ExecuteQuery(ctx, f.d, "UNWIND $names AS name MATCH (t:Tool {name: name}) DETACH DELETE t",
			map[string]any{"names": f.tools}, neo4j.EagerResultTransformer); err != nil {
			f.t.Errorf("cleanup tools: %v", err)
		}
	}
}

func (f *fixture) write(cypher string, params map[string]any) {
	f.t.Helper()
	params["identifier"] = f.id
	params["owner"] = f.owner
	params["user_id"] = events.UserID(f.id)
	for k, v := range params {
		if tm, ok := v.(time.Time); ok {
			params[k] = tm.In(f.loc)
		}
	}
	if _, err := neo4j.ExecuteQuery(f.t.Context(), f.d, cypher, params, neo4j.EagerResultTransformer); err != nil {
		f.t.Fatalf("fixture write: %v", err)
	}
}

// next returns the next recorded_seq.
func (f *fixture) next() int64 {
	f.seq++
	return f.seq
}

func jsonString(t *testing.T, v any) any {
	t.Helper()
	if rv := reflect.ValueOf(v); v == nil || (rv.Kind() == reflect.Map && rv.IsNil()) {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mergeUser is the implicit MERGE of the user every user-scoped event does.
const mergeUser = `
MERGE (u:User {identifier: $identifier})
  ON CREATE SET u.id = $user_id, u.owner = $owner, u.created_at = $at,
                u.recorded_at = $recorded_at, u.recorded_seq = $seq
`

// user is user_upserted.
func (f *fixture) user(attrs map[string]any, at time.Time) {
	f.t.Helper()
	f.write(mergeUser+"SET u.attributes_json = $attributes", map[string]any{
		"at": at, "recorded_at": at, "seq": f.next(), "attributes": jsonString(f.t, attrs),
	})
}

// message is message_added: the conversation of (user, session), the message, the chain.
func (f *fixture) message(session, role, content string, ts time.Time, meta map[string]any) string {
	f.t.Helper()
	id := events.NewID()
	f.write(mergeUser+`
MERGE (c:Conversation {id: $conversation_id})
  ON CREATE SET c.session_id = $session_id, c.user_identifier = $identifier, c.owner = $owner,
                c.created_at = $at, c.recorded_at = $recorded_at, c.recorded_seq = $seq
SET c.updated_at = $timestamp
MERGE (u)-[:HAS_CONVERSATION]->(c)
CREATE (m:Message {id: $id, role: $role, content: $content, timestamp: $timestamp, metadata: $metadata,
                   owner: $owner, created_at: $at, recorded_at: $recorded_at, recorded_seq: $seq})
CREATE (c)-[:HAS_MESSAGE]->(m)
WITH c, m
OPTIONAL MATCH (prev:Message {id: c.last_message_id})
FOREACH (_ IN CASE WHEN prev IS NULL THEN [1] ELSE [] END | CREATE (c)-[:FIRST_MESSAGE]->(m))
FOREACH (_ IN CASE WHEN prev IS NULL THEN [] ELSE [1] END | CREATE (prev)-[:NEXT_MESSAGE]->(m))
SET c.last_message_id = m.id
`, map[string]any{
		"id": id, "conversation_id": events.ConversationID(f.id, session), "session_id": session,
		"role": role, "content": content, "timestamp": ts, "metadata": jsonString(f.t, meta),
		"at": ts, "recorded_at": ts, "seq": f.next(),
	})
	return id
}

// pref describes a preference_added event.
type pref struct {
	category, text, context string
	validFrom               time.Time
	recordedAt              time.Time
	appliesTo               []events.EntityRef // by name/type
	metadata                map[string]any
}

// preference is preference_added; applies_to references are merged by name and type.
func (f *fixture) preference(p pref) string {
	f.t.Helper()
	id := events.NewID()
	refs := make([]map[string]any, 0, len(p.appliesTo))
	for _, r := range p.appliesTo {
		refs = append(refs, map[string]any{"id": events.EntityID(f.id, r.Name, r.Type), "name": r.Name, "type": r.Type})
	}
	var ctxt any
	if p.context != "" {
		ctxt = p.context
	}
	f.write(mergeUser+`
CREATE (p:Preference {id: $id, category: $category, preference: $preference, context: $context,
                      confidence: 1.0, created_at: $at, valid_from: $valid_from, metadata: $metadata,
                      owner: $owner, recorded_at: $recorded_at, recorded_seq: $seq})
CREATE (u)-[:HAS_PREFERENCE]->(p)
WITH p
UNWIND $applies_to AS ref
MERGE (e:Entity {id: ref.id})
  ON CREATE SET e.name = ref.name, e.type = ref.type, e.owner = $owner, e.created_at = $at,
                e.recorded_at = $recorded_at, e.recorded_seq = $seq
MERGE (p)-[:APPLIES_TO]->(e)
`, map[string]any{
		"id": id, "category": p.category, "preference": p.text, "context": ctxt,
		"at": p.validFrom, "valid_from": p.validFrom, "metadata": jsonString(f.t, p.metadata),
		"recorded_at": p.recordedAt, "seq": f.next(), "applies_to": refs,
	})
	return id
}

// supersede is preference_superseded.
func (f *fixture) supersede(oldID, newID string, validUntil, recordedAt time.Time) {
	f.t.Helper()
	f.write(`
MATCH (old:Preference {id: $old_id}) WHERE old.owner = $owner
MATCH (new:Preference {id: $new_id}) WHERE new.owner = $owner
MERGE (old)-[s:SUPERSEDED_BY]->(new)
  ON CREATE SET s.at = $valid_until, s.recorded_at = $recorded_at
SET old.valid_until = $valid_until, old.superseded_recorded_at = $recorded_at, old.superseded_seq = $seq
`, map[string]any{"old_id": oldID, "new_id": newID, "valid_until": validUntil, "recorded_at": recordedAt, "seq": f.next()})
}

// trace is trace_started.
func (f *fixture) trace(session, task string, at time.Time) string {
	f.t.Helper()
	id := events.NewID()
	f.write(mergeUser+`
CREATE (t:ReasoningTrace {id: $id, session_id: $session_id, task: $task, started_at: $at,
                          metadata: $metadata, user_identifier: $identifier, owner: $owner,
                          recorded_at: $recorded_at, recorded_seq: $seq})
CREATE (u)-[:HAS_TRACE]->(t)
`, map[string]any{"id": id, "session_id": session, "task": task, "at": at, "metadata": `{"source":"test"}`,
		"recorded_at": at, "seq": f.next()})
	return id
}

// step is trace_step_added.
func (f *fixture) step(traceID string, n int64, thought string, at time.Time) string {
	f.t.Helper()
	id := events.NewID()
	f.write(`
MATCH (t:ReasoningTrace {id: $trace_id}) WHERE t.owner = $owner
CREATE (s:ReasoningStep {id: $id, step_number: $n, thought: $thought, action: 'act', observation: 'obs',
                         timestamp: $at, owner: $owner, recorded_at: $at, recorded_seq: $seq})
CREATE (t)-[:HAS_STEP {order: $n}]->(s)
`, map[string]any{"trace_id": traceID, "id": id, "n": n, "thought": thought, "at": at, "seq": f.next()})
	return id
}

// toolCall is tool_call_recorded; tool names must be unique to the test.
func (f *fixture) toolCall(stepID, tool string, at time.Time) string {
	f.t.Helper()
	id := events.NewID()
	f.tools = append(f.tools, tool)
	f.write(`
MATCH (s:ReasoningStep {id: $step_id}) WHERE s.owner = $owner
CREATE (c:ToolCall {id: $id, tool_name: $tool, arguments: $arguments, result: $result, status: 'success',
                    duration_ms: 12, timestamp: $at, owner: $owner, recorded_at: $at, recorded_seq: $seq})
CREATE (s)-[:USES_TOOL]->(c)
MERGE (tool:Tool {name: $tool})
  ON CREATE SET tool.total_calls = 0, tool.successful_calls = 0, tool.failed_calls = 0, tool.total_duration_ms = 0
SET tool.total_calls = tool.total_calls + 1, tool.successful_calls = tool.successful_calls + 1,
    tool.total_duration_ms = tool.total_duration_ms + 12, tool.last_used_at = $at
CREATE (c)-[:INSTANCE_OF]->(tool)
`, map[string]any{"step_id": stepID, "id": id, "tool": tool, "arguments": `{"q":"healthcare"}`, "result": `["ann","bob"]`,
		"at": at, "seq": f.next()})
	return id
}

// complete is trace_completed.
func (f *fixture) complete(traceID, outcome string, success bool, at time.Time) {
	f.t.Helper()
	f.write(`
MATCH (t:ReasoningTrace {id: $trace_id}) WHERE t.owner = $owner
SET t.outcome = $outcome, t.success = $success, t.completed_at = $at
`, map[string]any{"trace_id": traceID, "outcome": outcome, "success": success, "at": at})
}

// setCheckpoint writes a projector checkpoint as the projector does; the test's unique group
// keeps it apart from real checkpoints, and it is removed when the test ends.
func setCheckpoint(t *testing.T, d neo4j.DriverWithContext, name string, partition int, seq int64) {
	t.Helper()
	if _, err := neo4j.ExecuteQuery(context.Background(), d, `
MERGE (c:EngramCheckpoint {name: $name})
SET c.partition = $partition, c.stream_seq = $seq, c.updated_at = $at
`, map[string]any{"name": name, "partition": partition, "seq": seq, "at": time.Now().UTC()}, neo4j.EagerResultTransformer); err != nil {
		t.Fatalf("write checkpoint: %v", err)
	}
}

// testGroup returns a checkpoint group unique to the test and removes its checkpoints at the end.
func testGroup(t *testing.T, d neo4j.DriverWithContext) string {
	t.Helper()
	group := "qtest-" + events.NewID()[24:]
	t.Cleanup(func() {
		_, _ = neo4j.ExecuteQuery(context.Background(), d,
			"UNWIND range(0, 63) AS p MATCH (c:EngramCheckpoint {name: $group + '-p' + toString(p)}) DELETE c",
			map[string]any{"group": group}, neo4j.EagerResultTransformer)
	})
	return group
}
