package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// The raw Neo4j baseline: a plain Go program writing the graph of docs/graph.md for the same
// event mix, with everything a projector has to look up handed to it instead (the previous
// message of each conversation, step numbers), one UNWIND statement per kind per batch, one
// transaction per batch, no decoding, no checkpoints, no dead letters. Its rate, in events
// applied per second, is the ceiling the projection is compared with.
const (
	rawUsers = `
UNWIND $rows AS r
MERGE (u:User {identifier: r.identifier})
ON CREATE SET u.id = r.uid, u.created_at = r.at, u.owner = r.owner, u.recorded_at = r.at, u.recorded_seq = r.seq
SET u.attributes_json = r.attrs`
	rawMessages = `
UNWIND $rows AS r
MERGE (u:User {identifier: r.identifier})
ON CREATE SET u.id = r.uid, u.created_at = r.at, u.owner = r.owner, u.recorded_at = r.at, u.recorded_seq = r.seq
MERGE (c:Conversation {id: r.cid})
ON CREATE SET c.session_id = r.session, c.user_identifier = r.identifier, c.owner = r.owner, c.created_at = r.at,
              c.recorded_at = r.at, c.recorded_seq = r.seq
MERGE (u)-[:HAS_CONVERSATION]->(c)
SET c.updated_at = r.at, c.last_message_id = r.id
CREATE (m:Message {id: r.id, role: r.role, content: r.content, timestamp: r.at, metadata: r.meta, owner: r.owner,
                   created_at: r.at, recorded_at: r.at, recorded_seq: r.seq})
CREATE (c)-[:HAS_MESSAGE]->(m)`
	rawFirstMessages = `
UNWIND $rows AS r
MATCH (c:Conversation {id: r.cid}), (m:Message {id: r.id})
CREATE (c)-[:FIRST_MESSAGE]->(m)`
	rawNextMessages = `
UNWIND $rows AS r
MATCH (p:Message {id: r.prev}), (m:Message {id: r.id})
CREATE (p)-[:NEXT_MESSAGE]->(m)`
	rawPreferences = `
UNWIND $rows AS r
MERGE (u:User {identifier: r.identifier})
ON CREATE SET u.id = r.uid, u.created_at = r.at, u.owner = r.owner, u.recorded_at = r.at, u.recorded_seq = r.seq
CREATE (p:Preference {id: r.id, category: r.category, preference: r.preference, context: r.context,
                      confidence: r.confidence, created_at: r.at, valid_from: r.valid_from, owner: r.owner,
                      recorded_at: r.at, recorded_seq: r.seq})
CREATE (u)-[:HAS_PREFERENCE]->(p)
WITH p, r
UNWIND r.entities AS e
MERGE (n:Entity {id: e.id})
ON CREATE SET n.name = e.name, n.type = e.type, n.owner = r.owner, n.created_at = r.at, n.recorded_at = r.at, n.recorded_seq = r.seq
CREATE (p)-[:APPLIES_TO]->(n)`
	rawSupersedes = `
UNWIND $rows AS r
MATCH (o:Preference {id: r.old}), (n:Preference {id: r.new})
SET o.valid_until = r.at, o.superseded_recorded_at = r.at, o.superseded_seq = r.seq
CREATE (o)-[:SUPERSEDED_BY {at: r.at, recorded_at: r.at}]->(n)`
	rawTraces = `
UNWIND $rows AS r
MERGE (u:User {identifier: r.identifier})
ON CREATE SET u.id = r.uid, u.created_at = r.at, u.owner = r.owner, u.recorded_at = r.at, u.recorded_seq = r.seq
CREATE (t:ReasoningTrace {id: r.id, session_id: r.session, task: r.task, started_at: r.at, user_identifier: r.identifier,
                          owner: r.owner, recorded_at: r.at, recorded_seq: r.seq})
CREATE (u)-[:HAS_TRACE]->(t)`
	rawSteps = `
UNWIND $rows AS r
MATCH (t:ReasoningTrace {id: r.trace})
CREATE (s:ReasoningStep {id: r.id, step_number: r.n, thought: r.thought, action: r.action, observation: r.observation,
                         timestamp: r.at, owner: r.owner, recorded_at: r.at, recorded_seq: r.seq})
CREATE (t)-[:HAS_STEP {order: r.n}]->(s)`
	rawToolCalls = `
UNWIND $rows AS r
MATCH (s:ReasoningStep {id: r.step})
CREATE (c:ToolCall {id: r.id, tool_name: r.tool, arguments: r.args, result: r.result, status: r.status,
                    duration_ms: r.duration, timestamp: r.at, owner: r.owner, recorded_at: r.at, recorded_seq: r.seq})
CREATE (s)-[:USES_TOOL]->(c)
MERGE (t:Tool {name: r.tool})
ON CREATE SET t.total_calls = 0, t.successful_calls = 0, t.failed_calls = 0, t.total_duration_ms = 0
SET t.total_calls = t.total_calls + 1, t.successful_calls = t.successful_calls + 1,
    t.total_duration_ms = t.total_duration_ms + r.duration, t.last_used_at = r.at
CREATE (c)-[:INSTANCE_OF]->(t)`
	rawCompletes = `
UNWIND $rows AS r
MATCH (t:ReasoningTrace {id: r.trace})
SET t.outcome = r.outcome, t.success = r.success, t.completed_at = r.at`
)

// rawBatch is one transaction's rows, by statement, in dependency order.
type rawBatch struct {
	events int
	stmts  []string
	rows   [][]map[string]any
}

// rawState is what the plain program knows that a projector must look up.
type rawState struct {
	lastMessage map[string]string // conversation id -> last message id
}

func jsonString(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// buildRawBatch turns consecutive events into rows per statement; seq numbers them as a
// stream would.
func buildRawBatch(evs []*events.Event, st *rawState, seq int64) (rawBatch, error) {
	order := []string{rawUsers, rawTraces, rawMessages, rawFirstMessages, rawNextMessages, rawPreferences, rawSupersedes, rawSteps, rawToolCalls, rawCompletes}
	rows := make(map[string][]map[string]any, len(order))
	for i, e := range evs {
		owner, err := e.Tenant()
		if err != nil {
			return rawBatch{}, err
		}
		base := map[string]any{"identifier": e.User, "uid": events.UserID(e.User), "owner": owner, "at": e.Time.UTC(), "seq": seq + int64(i)}
		with := func(kv ...any) map[string]any {
			r := make(map[string]any, len(base)+len(kv)/2)
			for k, v := range base {
				r[k] = v
			}
			for j := 0; j+1 < len(kv); j += 2 {
				r[kv[j].(string)] = kv[j+1]
			}
			return r
		}
		switch d := e.Data.(type) {
		case events.UserUpserted:
			rows[rawUsers] = append(rows[rawUsers], with("attrs", jsonString(d.Attributes)))
		case events.MessageAdded:
			rows[rawMessages] = append(rows[rawMessages], with("cid", d.ConversationID, "session", d.SessionID, "id", d.MessageID,
				"role", d.Role, "content", d.Content, "meta", jsonString(d.Metadata)))
			if prev, ok := st.lastMessage[d.ConversationID]; ok {
				rows[rawNextMessages] = append(rows[rawNextMessages], map[string]any{"prev": prev, "id": d.MessageID})
			} else {
				rows[rawFirstMessages] = append(rows[rawFirstMessages], map[string]any{"cid": d.ConversationID, "id": d.MessageID})
			}
			st.lastMessage[d.ConversationID] = d.MessageID
		case events.PreferenceAdded:
			ents := make([]map[string]any, 0, len(d.AppliesTo))
			for _, a := range d.AppliesTo {
				ents = append(ents, map[string]any{"id": events.EntityID(e.User, a.Name, a.Type), "name": a.Name, "type": a.Type})
			}
			vf := e.Time.UTC()
			if d.ValidFrom != nil {
				vf = d.ValidFrom.UTC()
			}
			conf := 1.0
			if d.Confidence != nil {
				conf = *d.Confidence
			}
			rows[rawPreferences] = append(rows[rawPreferences], with("id", d.PreferenceID, "category", d.Category,
				"preference", d.Preference, "context", d.Context, "confidence", conf, "valid_from", vf, "entities", ents))
		case events.PreferenceSuperseded:
			rows[rawSupersedes] = append(rows[rawSupersedes], with("old", d.OldID, "new", d.NewID))
		case events.TraceStarted:
			rows[rawTraces] = append(rows[rawTraces], with("id", d.TraceID, "session", d.SessionID, "task", d.Task))
		case events.TraceStepAdded:
			rows[rawSteps] = append(rows[rawSteps], with("trace", d.TraceID, "id", d.StepID, "n", int64(d.StepNumber),
				"thought", d.Thought, "action", d.Action, "observation", d.Observation))
		case events.ToolCallRecorded:
			dur := int64(0)
			if d.DurationMS != nil {
				dur = *d.DurationMS
			}
			rows[rawToolCalls] = append(rows[rawToolCalls], with("step", d.StepID, "id", d.ToolCallID, "tool", d.ToolName,
				"args", jsonString(d.Arguments), "result", jsonString(d.Result), "status", d.Status, "duration", dur))
		case events.TraceCompleted:
			success := d.Success != nil && *d.Success
			rows[rawCompletes] = append(rows[rawCompletes], with("trace", d.TraceID, "outcome", d.Outcome, "success", success))
		default:
			return rawBatch{}, fmt.Errorf("raw baseline: no statement for %T", e.Data)
		}
	}
	// Tool rows in name order: the two writers then take the Tool locks in the same order and
	// queue for them instead of deadlocking (a deadlock costs a retry after the driver's
	// backoff, a second or more, and made this baseline vary between runs).
	slices.SortStableFunc(rows[rawToolCalls], func(a, b map[string]any) int {
		return strings.Compare(a["tool"].(string), b["tool"].(string))
	})
	b := rawBatch{events: len(evs)}
	for _, stmt := range order {
		if len(rows[stmt]) > 0 {
			b.stmts = append(b.stmts, stmt)
			b.rows = append(b.rows, rows[stmt])
		}
	}
	return b, nil
}

// rawNeo4j writes evs with `writers` concurrent writers (users split between them, so each
// user's events stay in order in one writer) in transactions of batch events, and returns the
// rate in events/s.
func rawNeo4j(ctx context.Context, d neo4j.DriverWithContext, db string, evs []*events.Event, writers, batch int) (float64, Summary, error) {
	parts := make([][]*events.Event, writers)
	owner := map[string]int{}
	for _, e := range evs {
		w, ok := owner[e.User]
		if !ok {
			w = len(owner) % writers
			owner[e.User] = w
		}
		parts[w] = append(parts[w], e)
	}
	// Build every batch first: the measurement is the database's, not the row building's.
	batches := make([][]rawBatch, writers)
	seq := int64(1)
	for w, part := range parts {
		st := &rawState{lastMessage: map[string]string{}}
		for i := 0; i < len(part); i += batch {
			b, err := buildRawBatch(part[i:min(i+batch, len(part))], st, seq)
			if err != nil {
				return 0, Summary{}, err
			}
			seq += int64(b.events)
			batches[w] = append(batches[w], b)
		}
	}
	var lat Latencies
	var wg sync.WaitGroup
	errs := make([]error, writers)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			sess := d.NewSession(ctx, neo4j.SessionConfig{DatabaseName: db, AccessMode: neo4j.AccessModeWrite})
			defer sess.Close(context.Background())
			for _, b := range batches[w] {
				t0 := time.Now()
				_, err := sess.ExecuteWrite(ctx, func(tx neo4j.ManagedTransaction) (any, error) {
					for i, stmt := range b.stmts {
						res, err := tx.Run(ctx, stmt, map[string]any{"rows": b.rows[i]})
						if err != nil {
							return nil, err
						}
						if _, err := res.Consume(ctx); err != nil {
							return nil, err
						}
					}
					return nil, nil
				})
				if err != nil {
					errs[w] = fmt.Errorf("raw neo4j batch: %w", err)
					return
				}
				lat.Add(time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, lat.Summary(), err
		}
	}
	return float64(len(evs)) / elapsed.Seconds(), lat.Summary(), nil
}
