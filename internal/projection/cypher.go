package projection

// The Cypher of the projection. A segment of a batch is read with cypherLookup, decided in Go
// (effects.go), and written with one statement, cypherWrite: a unit subquery per kind of
// write, each over its list in the map $w (one map per node or relationship), in dependency
// order, so that every node a block links to exists when it runs. Every check has been made
// by then: the blocks only create and set, and return nothing. One statement instead of one
// per kind saves a round trip per kind and batch (about half a millisecond each); the lists
// come inside a map parameter so that Neo4j plans the statement once (it caches a plan per
// size class of each list parameter, and the lists of a batch vary in size).
//
// Times, ids and the owner come from the rows, never from the database: no datetime(),
// timestamp() or randomUUID() here (ARCHITECTURE.md, invariant 4).

// planOnce makes Neo4j keep a statement's plan however the graph's statistics move. By
// default it plans a statement again when the statistics it was planned with have diverged
// (by 75 %, at most every 10 s: dbms.cypher.statistics_divergence_threshold and
// min_replan_interval), which on a young or changing graph is every few seconds; planning
// these statements takes 0.3-2 s on two cores (measured with EXPLAIN), and every partition's
// transaction waited for it: a freshness stall of up to two seconds that no batching hides.
// Their plans do not depend on the statistics: every node is found through a unique
// constraint or an owner index, which each MATCH names with a USING INDEX SEEK hint, and
// everything else expands from it; so the first plan is the plan, and replanning only costs.
const planOnce = "CYPHER replan=skip"

// cypherLookup reads, for every id the segment names, what the checks need: the owner; for a
// conversation the last message of its chain (when that message exists); for a preference
// the preferences it is superseded by; for a trace its highest step number; for a step the
// traces it belongs to. Ids the graph does not hold are left out. The lists come in one map
// parameter: Neo4j caches a plan per size class of each list parameter, and eight lists of
// varying sizes would have it plan this statement anew for most batches.
const cypherLookup = planOnce + lookupBody

const lookupBody = `
CALL () { UNWIND $ids.users AS id MATCH (n:User {identifier: id}) USING INDEX SEEK n:User(identifier) RETURN collect([id, n.owner]) AS users }
CALL () { UNWIND $ids.messages AS id MATCH (n:Message {id: id}) USING INDEX SEEK n:Message(id) RETURN collect([id, n.owner]) AS messages }
CALL () {
  UNWIND $ids.conversations AS id MATCH (n:Conversation {id: id}) USING INDEX SEEK n:Conversation(id)
  OPTIONAL MATCH (last:Message {id: n.last_message_id}) USING INDEX SEEK last:Message(id)
  RETURN collect([id, n.owner, last.id]) AS conversations
}
CALL () {
  UNWIND $ids.preferences AS id MATCH (n:Preference {id: id}) USING INDEX SEEK n:Preference(id)
  RETURN collect([id, n.owner, [(n)-[:SUPERSEDED_BY]->(m) | m.id]]) AS preferences
}
CALL () {
  UNWIND $ids.entities AS id MATCH (n:Entity {id: id}) USING INDEX SEEK n:Entity(id)
  RETURN collect([id, n.owner, [(n)-[:MERGED_INTO]->(m) | m.id]]) AS entities
}
CALL () { UNWIND $ids.facts AS id MATCH (n:Fact {id: id}) USING INDEX SEEK n:Fact(id) RETURN collect([id, n.owner]) AS facts }
CALL () {
  UNWIND $ids.traces AS id MATCH (n:ReasoningTrace {id: id}) USING INDEX SEEK n:ReasoningTrace(id)
  CALL (n) { OPTIONAL MATCH (n)-[:HAS_STEP]->(s:ReasoningStep) RETURN max(s.step_number) AS top }
  RETURN collect([id, n.owner, top]) AS traces
}
CALL () {
  UNWIND $ids.steps AS id MATCH (n:ReasoningStep {id: id}) USING INDEX SEEK n:ReasoningStep(id)
  RETURN collect([id, n.owner, [(t:ReasoningTrace)-[:HAS_STEP]->(n) | t.id]]) AS steps
}
CALL () { UNWIND $ids.tool_calls AS id MATCH (n:ToolCall {id: id}) USING INDEX SEEK n:ToolCall(id) RETURN collect([id, n.owner]) AS tool_calls }
RETURN users, messages, conversations, preferences, entities, facts, traces, steps, tool_calls`

// A User is created by the first event that needs it (attributes from the segment's last
// upsert, else {}); an upsert of an existing User replaces its attributes.
const writeUsers = `
CALL () {
  UNWIND $w.create_users AS r
  CREATE (:User {identifier: r.identifier, id: r.id, created_at: r.created_at, owner: r.owner,
                 attributes_json: r.attributes_json, recorded_at: r.recorded_at,
                 recorded_seq: r.recorded_seq})
}
CALL () {
  UNWIND $w.update_users AS r
  MATCH (u:User {identifier: r.identifier}) USING INDEX SEEK u:User(identifier)
  SET u.attributes_json = r.attributes_json
}`

// A Conversation keeps last_message_id, the tail of its chain: the next message links from
// it, so the chain follows stored order and never forks. updated_at is the latest message
// timestamp, title the last one given. A conversation gets its HAS_CONVERSATION edge when it
// is created (by its user's first message; the shared tenant's have none).
const writeConversations = `
CALL () {
  UNWIND $w.create_conversations AS r
  CREATE (c:Conversation {id: r.id, session_id: r.session_id, user_identifier: r.user_identifier,
                          owner: r.owner, title: r.title, created_at: r.created_at,
                          updated_at: r.updated_at, recorded_at: r.recorded_at,
                          recorded_seq: r.recorded_seq, last_message_id: r.last_message_id})
  WITH r, c
  MATCH (u:User {identifier: r.user_identifier}) USING INDEX SEEK u:User(identifier)
  CREATE (u)-[:HAS_CONVERSATION]->(c)
}
CALL () {
  UNWIND $w.update_conversations AS r
  MATCH (c:Conversation {id: r.id}) USING INDEX SEEK c:Conversation(id)
  SET c.title = coalesce(r.title, c.title),
      c.updated_at = CASE WHEN c.updated_at IS NULL OR r.updated_at > c.updated_at
                          THEN r.updated_at ELSE c.updated_at END,
      c.last_message_id = r.last_message_id
}`

// Messages come by conversation ($w.messages: g.tail, the conversation's last message before
// the segment, or null; g.messages in stored order). The first new message links from the
// tail, or is the conversation's first; each next one from the one before it: one chain,
// in stored order, never forked.
const writeMessages = `
CALL () {
  UNWIND $w.messages AS g
  MATCH (c:Conversation {id: g.conversation_id}) USING INDEX SEEK c:Conversation(id)
  CALL (c, g) {
    UNWIND g.messages AS r
    CREATE (c)-[:HAS_MESSAGE]->(m:Message {id: r.id, role: r.role, content: r.content,
                                           timestamp: r.timestamp, metadata: r.metadata,
                                           owner: r.owner, recorded_at: r.recorded_at,
                                           recorded_seq: r.seq, embedding: r.embedding,
                                           embedding_sketch: r.embedding_sketch})
    RETURN collect(m) AS ms
  }
  OPTIONAL MATCH (tail:Message {id: g.tail}) USING INDEX SEEK tail:Message(id)
  FOREACH (first IN CASE WHEN tail IS NULL THEN [head(ms)] ELSE [] END |
    CREATE (c)-[:FIRST_MESSAGE]->(first))
  FOREACH (pair IN CASE WHEN tail IS NULL THEN [] ELSE [[tail, head(ms)]] END |
    FOREACH (a IN [pair[0]] | FOREACH (b IN [pair[1]] | CREATE (a)-[:NEXT_MESSAGE]->(b))))
  FOREACH (i IN range(0, size(ms) - 2) |
    FOREACH (a IN [ms[i]] | FOREACH (b IN [ms[i + 1]] | CREATE (a)-[:NEXT_MESSAGE]->(b))))
}`

// Entities get the owner's derived id (events.EntityID), created by the first event that
// names them (a preference's applies_to, a relationship's endpoint by name, entity_added),
// with the properties Go folded from the segment's events (entities.go); r.props leaves out
// what is null. Each is its user's (HAS_ENTITY; the shared tenant has no User). The
// entity_added events of an existing entity set what they gave and add their aliases.
const writeEntities = `
CALL () {
  UNWIND $w.create_entities AS r
  CREATE (e:Entity)
  SET e = r.props
  WITH r, e
  MATCH (u:User {identifier: r.user}) USING INDEX SEEK u:User(identifier)
  CREATE (u)-[:HAS_ENTITY]->(e)
}
CALL () {
  UNWIND $w.update_entities AS r
  MATCH (e:Entity {id: r.id}) USING INDEX SEEK e:Entity(id)
  WITH r, e, r.embedding IS NULL OR (NOT r.embedding_with_description AND e.embedding IS NOT NULL) AS keep
  SET e.subtype = coalesce(r.subtype, e.subtype), e.description = coalesce(r.description, e.description),
      e.confidence = coalesce(r.confidence, e.confidence), e.metadata = coalesce(r.metadata, e.metadata),
      e.embedding = CASE WHEN keep THEN e.embedding ELSE r.embedding END,
      e.embedding_sketch = CASE WHEN keep THEN e.embedding_sketch ELSE r.embedding_sketch END,
      e.updated_at = r.updated_at,
      e.aliases = coalesce(e.aliases, []) + [a IN r.aliases WHERE a <> e.name AND NOT a IN coalesce(e.aliases, [])]
}`

// Preferences come by user ($w.preferences: g.user, null for the shared tenant, which has no
// User); r.applies_to lists the ids of the entities a preference applies to, each once.
const writePreferences = `
CALL () {
  UNWIND $w.preferences AS g
  OPTIONAL MATCH (u:User {identifier: g.user}) USING INDEX SEEK u:User(identifier)
  CALL (u, g) {
    UNWIND g.preferences AS r
    CREATE (p:Preference {id: r.id, category: r.category, preference: r.preference,
                          context: r.context, confidence: r.confidence, created_at: r.time,
                          valid_from: r.valid_from, metadata: r.metadata, owner: r.owner,
                          recorded_at: r.recorded_at, recorded_seq: r.seq, embedding: r.embedding,
                          embedding_sketch: r.embedding_sketch})
    FOREACH (x IN CASE WHEN u IS NULL THEN [] ELSE [u] END | CREATE (x)-[:HAS_PREFERENCE]->(p))
    WITH r, p
    UNWIND r.applies_to AS eid
    MATCH (e:Entity {id: eid}) USING INDEX SEEK e:Entity(id)
    CREATE (p)-[:APPLIES_TO]->(e)
  }
}
CALL () {
  UNWIND $w.supersedes AS r
  MATCH (o:Preference {id: r.old_id}) USING INDEX SEEK o:Preference(id)
  MATCH (n:Preference {id: r.new_id}) USING INDEX SEEK n:Preference(id)
  CREATE (o)-[:SUPERSEDED_BY {at: r.valid_until, recorded_at: r.recorded_at}]->(n)
  SET o.valid_until = r.valid_until, o.superseded_recorded_at = r.recorded_at,
      o.superseded_seq = r.seq
}`

// Mentions (MENTIONS from a message or trace to an entity, once each), relationships (one
// RELATED_TO per source, type and target, its id derived from them; the first event creates
// it, the properties given last win, folded in Go; a confidence never given stays null, read
// as 1.0, so that a merge can fold two edges as their events would) and facts (HAS_FACT from
// their user).
const writeEntityLinks = `
CALL () {
  UNWIND $w.message_mentions AS r
  MATCH (m:Message {id: r.from}) USING INDEX SEEK m:Message(id)
  MATCH (e:Entity {id: r.entity}) USING INDEX SEEK e:Entity(id)
  MERGE (m)-[:MENTIONS]->(e)
}
CALL () {
  UNWIND $w.trace_mentions AS r
  MATCH (t:ReasoningTrace {id: r.from}) USING INDEX SEEK t:ReasoningTrace(id)
  MATCH (e:Entity {id: r.entity}) USING INDEX SEEK e:Entity(id)
  MERGE (t)-[:MENTIONS]->(e)
}
CALL () {
  UNWIND $w.relationships AS r
  MATCH (a:Entity {id: r.source}) USING INDEX SEEK a:Entity(id)
  MATCH (b:Entity {id: r.target}) USING INDEX SEEK b:Entity(id)
  MERGE (a)-[x:RELATED_TO {type: r.type}]->(b)
  ON CREATE SET x.id = r.id, x.relation_type = r.type, x.created_at = r.created_at,
                x.recorded_at = r.recorded_at, x.recorded_seq = r.recorded_seq
  SET x.description = coalesce(r.description, x.description), x.confidence = coalesce(r.confidence, x.confidence),
      x.valid_from = coalesce(r.valid_from, x.valid_from), x.valid_until = coalesce(r.valid_until, x.valid_until),
      x.attributes_json = coalesce(r.attributes_json, x.attributes_json), x.updated_at = r.updated_at
}
CALL () {
  UNWIND $w.facts AS r
  CREATE (f:Fact {id: r.id, subject: r.subject, predicate: r.predicate, object: r.object,
                  confidence: r.confidence, valid_from: r.valid_from, valid_until: r.valid_until,
                  created_at: r.time, metadata: r.metadata, owner: r.owner,
                  recorded_at: r.recorded_at, recorded_seq: r.seq})
  WITH r, f
  MATCH (u:User {identifier: r.user}) USING INDEX SEEK u:User(identifier)
  CREATE (u)-[:HAS_FACT]->(f)
}`

// cypherMergeEdges reads what a merge cannot move without Go: the source entity's
// relationships (type and the other end), whose moved copies get the id of their new
// endpoints (events.RelationshipID).
const cypherMergeEdges = planOnce + `
MATCH (b:Entity {id: $id}) USING INDEX SEEK b:Entity(id)
RETURN [(b)-[x:RELATED_TO]->(o:Entity) | [x.type, o.id]] AS outs,
       [(o:Entity)-[x:RELATED_TO]->(b) | [x.type, o.id]] AS ins`

// foldRelationship folds a merged entity's edge x into the target's edge y of the same type
// and other end: the properties of the one updated later win where it has them, as if the
// events of both had been applied to one edge in time order, which is what applying them
// again (now resolved to the target) does: so a batch applied twice gives one graph.
const foldRelationship = `
  SET y.description = CASE WHEN newer THEN coalesce(x.description, y.description) ELSE coalesce(y.description, x.description) END,
      y.confidence = CASE WHEN newer THEN coalesce(x.confidence, y.confidence) ELSE coalesce(y.confidence, x.confidence) END,
      y.valid_from = CASE WHEN newer THEN coalesce(x.valid_from, y.valid_from) ELSE coalesce(y.valid_from, x.valid_from) END,
      y.valid_until = CASE WHEN newer THEN coalesce(x.valid_until, y.valid_until) ELSE coalesce(y.valid_until, x.valid_until) END,
      y.attributes_json = CASE WHEN newer THEN coalesce(x.attributes_json, y.attributes_json) ELSE coalesce(y.attributes_json, x.attributes_json) END,
      y.updated_at = CASE WHEN newer THEN x.updated_at ELSE y.updated_at END`

// cypherMerge merges entity $r.source into $r.target: the source's name and aliases become
// the target's aliases; its mentions, preferences, relationships and the entities merged into
// it move to the target (into an edge the target has already, foldRelationship; an edge
// between the two goes); the source stays, without those edges, as a
// tombstone MERGED_INTO the target (merged_into, merged_at), so that references to it reach
// the target, in the projector as in replay.
const cypherMerge = planOnce + `
MATCH (b:Entity {id: $r.source}) USING INDEX SEEK b:Entity(id)
MATCH (a:Entity {id: $r.target}) USING INDEX SEEK a:Entity(id)
SET a.aliases = coalesce(a.aliases, []) +
      [x IN [b.name] + coalesce(b.aliases, []) WHERE x IS NOT NULL AND x <> a.name AND NOT x IN coalesce(a.aliases, [])],
    a.updated_at = $r.time, b.merged_into = a.id, b.merged_at = $r.time
WITH a, b
CALL (a, b) { MATCH (m)-[x:MENTIONS]->(b) MERGE (m)-[:MENTIONS]->(a) DELETE x }
CALL (a, b) { MATCH (p:Preference)-[x:APPLIES_TO]->(b) MERGE (p)-[:APPLIES_TO]->(a) DELETE x }
CALL (a, b) {
  MATCH (c:Entity)-[x:MERGED_INTO]->(b)
  CREATE (c)-[:MERGED_INTO {at: x.at, recorded_at: x.recorded_at}]->(a)
  SET c.merged_into = a.id
  DELETE x
}
CALL (a, b) {
  UNWIND $r.outs AS o
  MATCH (b)-[x:RELATED_TO]->(t:Entity) WHERE x.type = o.type AND t.id = o.other
  MERGE (a)-[y:RELATED_TO {type: o.type}]->(t)
  ON CREATE SET y = properties(x), y.id = o.id
  WITH x, y, x.updated_at > y.updated_at AS newer` + foldRelationship + `
  DELETE x
}
CALL (a, b) {
  UNWIND $r.ins AS o
  MATCH (t:Entity)-[x:RELATED_TO]->(b) WHERE x.type = o.type AND t.id = o.other
  MERGE (t)-[y:RELATED_TO {type: o.type}]->(a)
  ON CREATE SET y = properties(x), y.id = o.id
  WITH x, y, x.updated_at > y.updated_at AS newer` + foldRelationship + `
  DELETE x
}
CALL (a, b) { MATCH (b)-[x:RELATED_TO]-(a) DELETE x }
CREATE (b)-[:MERGED_INTO {at: $r.time, recorded_at: $r.recorded_at}]->(a)`

// step_number is the event's, or (effects.go) the trace's highest plus one, in stored order.
// The last completion of a trace in the segment sets its outcome.
const writeTraces = `
CALL () {
  UNWIND $w.traces AS r
  CREATE (t:ReasoningTrace {id: r.id, session_id: r.session_id, task: r.task,
                            started_at: r.time, metadata: r.metadata, user_identifier: r.user,
                            owner: r.owner, recorded_at: r.recorded_at, recorded_seq: r.seq,
                            embedding: r.embedding, embedding_sketch: r.embedding_sketch})
  WITH r, t
  MATCH (u:User {identifier: r.user}) USING INDEX SEEK u:User(identifier)
  CREATE (u)-[:HAS_TRACE]->(t)
}
CALL () {
  UNWIND $w.steps AS r
  MATCH (t:ReasoningTrace {id: r.trace_id}) USING INDEX SEEK t:ReasoningTrace(id)
  CREATE (t)-[:HAS_STEP {order: r.step_number}]->(:ReasoningStep {id: r.id,
          step_number: r.step_number, thought: r.thought, action: r.action,
          observation: r.observation, timestamp: r.time, owner: r.owner,
          recorded_at: r.recorded_at, recorded_seq: r.seq})
}
CALL () {
  UNWIND $w.completes AS r
  MATCH (t:ReasoningTrace {id: r.trace_id}) USING INDEX SEEK t:ReasoningTrace(id)
  SET t.outcome = r.outcome, t.success = r.success, t.completed_at = r.time
}`

// A tool call creates its ToolCall under its step; the Tool aggregate and the INSTANCE_OF
// edge come last, in writeToolTally.
const writeToolCalls = `
CALL () {
  UNWIND $w.tool_calls AS r
  MATCH (s:ReasoningStep {id: r.step_id}) USING INDEX SEEK s:ReasoningStep(id)
  CREATE (s)-[:USES_TOOL]->(:ToolCall {id: r.id, tool_name: r.tool_name, arguments: r.arguments,
                                       result: r.result, status: r.status,
                                       duration_ms: r.duration_ms, error: r.error,
                                       timestamp: r.time, owner: r.owner,
                                       recorded_at: r.recorded_at, recorded_seq: r.seq})
}`

// writeToolTally adds the tool calls the segment created to their Tool aggregates, one row
// per tool in name order (built by toolTally): it merges the Tool, takes its lock (a
// SET/REMOVE of a throw-away property) so the counters read after it are the committed
// ones, adds the counts, and links each new call to it. failed counts the statuses the
// library counts (error, timeout). Tool carries no owner and no transaction time: it is
// global, and which partition creates it first is not deterministic. It is the last block:
// the lock is held until the transaction ends (tools.go says why that matters).
const writeToolTally = `
CALL () {
  UNWIND $w.tools AS t
  MERGE (tool:Tool {name: t.name})
  ON CREATE SET tool.total_calls = 0, tool.successful_calls = 0, tool.failed_calls = 0,
                tool.total_duration_ms = 0
  SET tool.lock = true
  REMOVE tool.lock
  SET tool.total_calls = tool.total_calls + t.calls,
      tool.successful_calls = tool.successful_calls + t.successful,
      tool.failed_calls = tool.failed_calls + t.failed,
      tool.total_duration_ms = tool.total_duration_ms + t.duration_ms,
      tool.last_used_at = CASE WHEN tool.last_used_at IS NULL OR t.last_used_at > tool.last_used_at
                               THEN t.last_used_at ELSE tool.last_used_at END
  WITH tool, t
  UNWIND t.call_ids AS id
  MATCH (c:ToolCall {id: id}) USING INDEX SEEK c:ToolCall(id)
  CREATE (c)-[:INSTANCE_OF]->(tool)
}`

// writeToolCallsUncounted is writeToolCalls and the INSTANCE_OF edges for a rebuild
// (rebuild.go), in tool name order: the aggregates are left to cypherRecountTools, so the
// partitions' transactions never wait for a Tool's lock (creating a relationship to a node
// takes none).
const writeToolCallsUncounted = `
CALL () {
  UNWIND $w.tool_calls AS r
  MATCH (s:ReasoningStep {id: r.step_id}) USING INDEX SEEK s:ReasoningStep(id)
  CREATE (s)-[:USES_TOOL]->(c:ToolCall {id: r.id, tool_name: r.tool_name, arguments: r.arguments,
                                        result: r.result, status: r.status,
                                        duration_ms: r.duration_ms, error: r.error,
                                        timestamp: r.time, owner: r.owner,
                                        recorded_at: r.recorded_at, recorded_seq: r.seq})
  MERGE (tool:Tool {name: r.tool_name})
  ON CREATE SET tool.total_calls = 0, tool.successful_calls = 0, tool.failed_calls = 0,
                tool.total_duration_ms = 0
  CREATE (c)-[:INSTANCE_OF]->(tool)
}`

// cypherWrite writes a segment (effects.write); cypherWriteUncounted the same for a rebuild.
const (
	cypherWrite = planOnce + writeUsers + writeConversations + writeMessages + writeEntities + writePreferences +
		writeTraces + writeEntityLinks + writeToolCalls + writeToolTally
	cypherWriteUncounted = planOnce + writeUsers + writeConversations + writeMessages + writeEntities +
		writePreferences + writeTraces + writeEntityLinks + writeToolCallsUncounted
)

// cypherRecountTools sets every Tool aggregate from the calls that are instances of it: what
// the counting of cypherToolTally and cypherUserErased arrives at (a count and sums of the
// calls created less those erased; last_used_at the latest remaining call), computed once.
const cypherRecountTools = `
MATCH (tool:Tool)
CALL (tool) {
  OPTIONAL MATCH (tool)<-[:INSTANCE_OF]-(c:ToolCall)
  RETURN count(c) AS calls,
         sum(CASE WHEN c.status = 'success' THEN 1 ELSE 0 END) AS successful,
         sum(CASE WHEN c.status IN ['error', 'timeout'] THEN 1 ELSE 0 END) AS failed,
         sum(coalesce(c.duration_ms, 0)) AS duration, max(c.timestamp) AS last
}
SET tool.total_calls = calls, tool.successful_calls = successful, tool.failed_calls = failed,
    tool.total_duration_ms = duration, tool.last_used_at = last`

// Erasure: subtract the user's calls from the Tool aggregates while they still exist, delete
// every node the owner owns, then recompute each touched Tool's last_used_at from the calls
// that remain, and delete a touched Tool no call is an instance of any more: a tool only the
// user called goes with the user (its free-text name may hold the user's data), as a replay,
// which never creates it, has it. A concurrent partition whose tally MERGEd that Tool before
// the delete fails on the deleted node when it takes the lock (EntityNotFound), and its
// transaction is retried (retry.go), MERGEing a new one. Every Tool update first writes a property to take the Tool's lock, so that the
// values read after it are the committed ones (Neo4j reads committed data; the lock makes the
// read-modify-write of concurrent partitions serialize).
const cypherUserErased = planOnce + `
UNWIND $batch.rows AS r
CALL (r) {
  CALL (r) {
    MATCH (c:ToolCall {owner: r.owner})-[:INSTANCE_OF]->(tool:Tool) USING INDEX SEEK c:ToolCall(owner)
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
  CALL (r) { MATCH (n:ToolCall {owner: r.owner}) USING INDEX SEEK n:ToolCall(owner) DETACH DELETE n }
  CALL (r) { MATCH (n:ReasoningStep {owner: r.owner}) USING INDEX SEEK n:ReasoningStep(owner) DETACH DELETE n }
  CALL (r) { MATCH (n:ReasoningTrace {owner: r.owner}) USING INDEX SEEK n:ReasoningTrace(owner) DETACH DELETE n }
  CALL (r) { MATCH (n:Message {owner: r.owner}) USING INDEX SEEK n:Message(owner) DETACH DELETE n }
  CALL (r) { MATCH (n:Conversation {owner: r.owner}) USING INDEX SEEK n:Conversation(owner) DETACH DELETE n }
  CALL (r) { MATCH (n:Preference {owner: r.owner}) USING INDEX SEEK n:Preference(owner) DETACH DELETE n }
  CALL (r) { MATCH (n:Entity {owner: r.owner}) USING INDEX SEEK n:Entity(owner) DETACH DELETE n }
  CALL (r) { MATCH (n:Fact {owner: r.owner}) USING INDEX SEEK n:Fact(owner) DETACH DELETE n }
  CALL (r) { MATCH (n:User {owner: r.owner}) USING INDEX SEEK n:User(owner) DETACH DELETE n }
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
