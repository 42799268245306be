package projection

// The Cypher of every event kind. Each statement takes $rows, one map per event of a run of
// one kind (rows.go builds them), and handles every row in a CALL subquery: each execution
// sees the writes of the ones before it, so a run applies exactly as its events would one by
// one, in stored order (a message chain grows row by row; a supersede sees the add before
// it). Every statement returns one (seq, status) per row: "ok", "duplicate" (already applied:
// nothing written), or a dead-letter reason (nothing written).
//
// Times, ids and the owner come from the rows, never from the database: no datetime(),
// timestamp() or randomUUID() here (ARCHITECTURE.md, invariant 4). Nodes are created only
// after a look-up by id found nothing, so applying a batch twice changes nothing.

// mergeUser merges the row's user (the implicit creation of a User by another kind of event:
// no attributes) into u. Only for rows with a user: the shared tenant has no User node.
const mergeUser = `
      MERGE (u:User {identifier: r.user})
      ON CREATE SET u.id = r.user_id, u.created_at = r.time, u.owner = r.owner,
                    u.attributes_json = '{}', u.recorded_at = r.recorded_at, u.recorded_seq = r.seq`

const cypherUserUpserted = `
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
const cypherMessageAdded = `
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
      WITH r, c WHERE r.user IS NOT NULL` + mergeUser + `
      MERGE (u)-[:HAS_CONVERSATION]->(c)
    }
  }
  RETURN status
}
RETURN r.seq AS seq, status`

// An applies_to reference by id must name an Entity of the same owner; by name and type it
// merges the owner's Entity of the derived id (rows.go computes events.EntityID).
const cypherPreferenceAdded = `
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
      WITH r, p WHERE r.user IS NOT NULL` + mergeUser + `
      MERGE (u)-[:HAS_PREFERENCE]->(p)
    }
  }
  RETURN status
}
RETURN r.seq AS seq, status`

// Both preferences must exist and belong to the event's owner; the old one must not be
// superseded yet and the new one must still be active (no forks, no cycles).
const cypherPreferenceSuperseded = `
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

const cypherTraceStarted = `
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
      WITH r, t WHERE r.user IS NOT NULL` + mergeUser + `
      MERGE (u)-[:HAS_TRACE]->(t)
    }
  }
  RETURN status
}
RETURN r.seq AS seq, status`

// A step without a number gets the trace's highest number plus one, in stored order.
const cypherTraceStepAdded = `
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
const cypherToolCallRecorded = `
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

const cypherLockTools = `
UNWIND $names AS name
MATCH (t:Tool {name: name})
SET t.lock = true
REMOVE t.lock`

const cypherTraceCompleted = `
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
const cypherUserErased = `
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
    WITH tool, max(c.timestamp) AS last
    SET tool.last_used_at = last
  }
  RETURN 'ok' AS status
}
RETURN r.seq AS seq, status`
