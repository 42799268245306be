package projection

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// A segment of a batch is applied in three steps: one statement reads what the graph holds
// about every id the segment names (lookup; a Rebuild remembers it instead, rebuild.go), Go
// then decides event by event, in stored order, what each event does (simulate: the checks of
// docs/projector.md against the graph as the events before it left it), and one statement of
// set-based blocks, one per kind of write, writes the result whatever the mix of the batch
// (write). The blocks need no per-row subquery, no existence check and return nothing; what
// makes the order of events matter (a message chain, step numbers, supersedes, statuses) is
// settled in Go.

// owned is what the checks need of a node: whether it has an owner, and which.
type owned struct {
	owner    string
	hasOwner bool
}

func ownedBy(owner string) owned { return owned{owner: owner, hasOwner: true} }

// same is Cypher's n.owner = $owner, differs its n.owner <> $owner: both false for a node
// without an owner (null), as in Cypher's three-valued logic.
func (o owned) same(owner string) bool    { return o.hasOwner && o.owner == owner }
func (o owned) differs(owner string) bool { return o.hasOwner && o.owner != owner }

type prefNode struct {
	owned
	supersededBy []string // ids of the preferences it is superseded by (at most one)
}

type traceNode struct {
	owned
	top int64 // highest step number, 0 when it has no step
}

type stepNode struct {
	owned
	traces []string // ids of the traces with a HAS_STEP to it (one)
}

type convNode struct {
	owned
	tail string // the last message of its chain, "" when none
}

// graphState is what the graph holds about the ids of a segment, as the simulation leaves it.
type graphState struct {
	users         map[string]owned
	messages      map[string]owned
	conversations map[string]*convNode
	preferences   map[string]*prefNode
	entities      map[string]owned
	merged        map[string]string // entity id -> the entity it was merged into
	facts         map[string]owned
	traces        map[string]*traceNode
	steps         map[string]*stepNode
	toolCalls     map[string]owned
}

// lookupKeys collects every id the segment names, by label.
type lookupKeys struct {
	users, messages, conversations, preferences, entities, traces, steps, toolCalls, facts map[string]bool
}

func addKey(set *map[string]bool, id string) {
	if *set == nil {
		*set = map[string]bool{}
	}
	(*set)[id] = true
}

func (k *lookupKeys) record(r Record) error {
	if u := r.Event.User; u != "" {
		addKey(&k.users, u)
	}
	switch r.Event.Kind {
	case events.KindUserUpserted:
		d, err := dataAs[events.UserUpserted](r)
		if err != nil {
			return err
		}
		addKey(&k.users, d.Identifier)
	case events.KindUserRecreated:
		d, err := dataAs[events.UserRecreated](r)
		if err != nil {
			return err
		}
		addKey(&k.users, d.Identifier)
	case events.KindMessageAdded:
		d, err := dataAs[events.MessageAdded](r)
		if err != nil {
			return err
		}
		addKey(&k.messages, d.MessageID)
		addKey(&k.conversations, d.ConversationID)
	case events.KindPreferenceAdded:
		d, err := dataAs[events.PreferenceAdded](r)
		if err != nil {
			return err
		}
		addKey(&k.preferences, d.PreferenceID)
		for _, ref := range d.AppliesTo {
			if ref.ID != "" {
				addKey(&k.entities, ref.ID)
			} else {
				addKey(&k.entities, events.EntityID(r.Event.User, ref.Name, ref.Type))
			}
		}
	case events.KindPreferenceSuperseded:
		d, err := dataAs[events.PreferenceSuperseded](r)
		if err != nil {
			return err
		}
		addKey(&k.preferences, d.OldID)
		addKey(&k.preferences, d.NewID)
	case events.KindTraceStarted:
		d, err := dataAs[events.TraceStarted](r)
		if err != nil {
			return err
		}
		addKey(&k.traces, d.TraceID)
	case events.KindTraceStepAdded:
		d, err := dataAs[events.TraceStepAdded](r)
		if err != nil {
			return err
		}
		addKey(&k.traces, d.TraceID)
		addKey(&k.steps, d.StepID)
	case events.KindToolCallRecorded:
		d, err := dataAs[events.ToolCallRecorded](r)
		if err != nil {
			return err
		}
		addKey(&k.steps, d.StepID)
		addKey(&k.toolCalls, d.ToolCallID)
	case events.KindTraceCompleted:
		d, err := dataAs[events.TraceCompleted](r)
		if err != nil {
			return err
		}
		addKey(&k.traces, d.TraceID)
	default:
		return k.recordEntities(r)
	}
	return nil
}

func keyList(set map[string]bool) []any {
	out := make([]any, 0, len(set))
	for _, k := range sortedKeys(set) {
		out = append(out, k)
	}
	return out
}

// stateSource gives a segment the state of the graph for its ids, and hears what the
// segment wrote and erased.
type stateSource interface {
	lookup(ctx context.Context, tx neo4j.ManagedTransaction, k *lookupKeys) (*graphState, error)
	written(st *graphState) // st as the segment's writes left it
	erased(owner string)    // every node of owner was deleted
	deleted(d deletion)     // messages and conversations were deleted (deletions.go)
}

// graphSource reads the state from the graph itself (cypherLookup).
type graphSource struct{}

func (graphSource) written(*graphState) {}
func (graphSource) erased(string)       {}
func (graphSource) deleted(deletion)    {}

func newGraphState() *graphState {
	return &graphState{
		users: map[string]owned{}, messages: map[string]owned{}, conversations: map[string]*convNode{},
		preferences: map[string]*prefNode{}, entities: map[string]owned{}, merged: map[string]string{},
		facts: map[string]owned{}, traces: map[string]*traceNode{},
		steps: map[string]*stepNode{}, toolCalls: map[string]owned{},
	}
}

// lookup reads the state of every id in k in one statement.
func (graphSource) lookup(ctx context.Context, tx neo4j.ManagedTransaction, k *lookupKeys) (*graphState, error) {
	res, err := tx.Run(ctx, cypherLookup, map[string]any{"ids": k.params()})
	if err != nil {
		return nil, fmt.Errorf("look up the batch's ids: %w", err)
	}
	rec, err := res.Single(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up the batch's ids: %w", err)
	}
	return parseLookup(rec), nil
}

// params is the $ids parameter of lookupBody.
func (k *lookupKeys) params() map[string]any {
	return map[string]any{
		"users": keyList(k.users), "messages": keyList(k.messages), "conversations": keyList(k.conversations),
		"preferences": keyList(k.preferences), "entities": keyList(k.entities), "traces": keyList(k.traces),
		"steps": keyList(k.steps), "tool_calls": keyList(k.toolCalls), "facts": keyList(k.facts),
	}
}

// parseLookup reads the state from the record of lookupBody's columns.
func parseLookup(rec *neo4j.Record) *graphState {
	st := newGraphState()
	rows := func(key string) [][]any {
		v, _ := rec.Get(key)
		list, _ := v.([]any)
		out := make([][]any, 0, len(list))
		for _, e := range list {
			if t, ok := e.([]any); ok && len(t) > 0 {
				out = append(out, t)
			}
		}
		return out
	}
	ownerOf := func(t []any) owned {
		if len(t) > 1 {
			if s, ok := t[1].(string); ok {
				return ownedBy(s)
			}
		}
		return owned{}
	}
	idList := func(v any) []string {
		list, _ := v.([]any)
		out := make([]string, 0, len(list))
		for _, e := range list {
			s, _ := e.(string) // a null id reads as "": it still counts
			out = append(out, s)
		}
		return out
	}
	id := func(t []any) string { s, _ := t[0].(string); return s }
	for _, t := range rows("users") {
		st.users[id(t)] = ownerOf(t)
	}
	for _, t := range rows("messages") {
		st.messages[id(t)] = ownerOf(t)
	}
	for _, t := range rows("conversations") {
		c := &convNode{owned: ownerOf(t)}
		if len(t) > 2 {
			c.tail, _ = t[2].(string)
		}
		st.conversations[id(t)] = c
	}
	for _, t := range rows("preferences") {
		p := &prefNode{owned: ownerOf(t)}
		if len(t) > 2 {
			p.supersededBy = idList(t[2])
		}
		st.preferences[id(t)] = p
	}
	for _, t := range rows("entities") {
		st.entities[id(t)] = ownerOf(t)
		if len(t) > 2 {
			if into := idList(t[2]); len(into) > 0 {
				st.merged[id(t)] = into[0]
			}
		}
	}
	for _, t := range rows("facts") {
		st.facts[id(t)] = ownerOf(t)
	}
	for _, t := range rows("traces") {
		tr := &traceNode{owned: ownerOf(t)}
		if len(t) > 2 {
			tr.top, _ = t[2].(int64)
		}
		st.traces[id(t)] = tr
	}
	for _, t := range rows("steps") {
		s := &stepNode{owned: ownerOf(t)}
		if len(t) > 2 {
			s.traces = idList(t[2])
		}
		st.steps[id(t)] = s
	}
	for _, t := range rows("tool_calls") {
		st.toolCalls[id(t)] = ownerOf(t)
	}
	return st
}

// userWrite is what a segment writes to one User: created by the first event that needs it,
// attributes replaced by upserts.
type userWrite struct {
	identifier string
	exists     bool
	create     map[string]any // id, created_at, owner, recorded_at, recorded_seq
	attributes any            // the last upsert's attributes_json, nil for none
}

// convWrite is what a segment writes to one Conversation.
type convWrite struct {
	id        string
	exists    bool
	create    map[string]any // the creating message's row
	title     any            // the last title given, nil for none
	updatedAt time.Time      // the latest message timestamp
	last      string         // the new tail of the chain
}

// effects are the writes of a segment, in the order the statements run.
type effects struct {
	countTools bool // update the Tool aggregates (else RecountTools does)
	users      []*userWrite
	userIdx    map[string]*userWrite
	convs      []*convWrite
	convIdx    map[string]*convWrite
	msgGroups  []any // per conversation: its tail before the segment and its new messages
	msgIdx     map[string]map[string]any
	entities   []*entityWrite
	entityIdx  map[string]*entityWrite
	mentions   [][3]string // kind, from id, entity id of each new MENTIONS edge
	mentionIdx map[[3]string]bool
	rels       []*relWrite
	relIdx     map[string]*relWrite
	facts      []any
	prefGroups []any // per user (nil: the shared tenant): the new preferences
	prefIdx    map[any]map[string]any
	supersedes []any
	traces     []any
	steps      []any
	toolCalls  []any
	completes  []any
	complIdx   map[string]int
	tools      toolTally
}

// touchUser notes that the event of row needs its User (created if the graph has none).
func (e *effects) touchUser(st *graphState, m map[string]any) *userWrite {
	ident, ok := m["user"].(string)
	if !ok {
		return nil // the shared tenant: no User
	}
	if e.userIdx == nil {
		e.userIdx = map[string]*userWrite{}
	}
	u := e.userIdx[ident]
	if u == nil {
		_, exists := st.users[ident]
		u = &userWrite{identifier: ident, exists: exists}
		if !u.exists {
			owner, _ := m["owner"].(string)
			st.users[ident] = ownedBy(owner)
			u.create = map[string]any{"identifier": ident, "id": m["user_id"], "created_at": m["time"], "owner": m["owner"],
				"recorded_at": m["recorded_at"], "recorded_seq": m["seq"]}
		}
		e.userIdx[ident] = u
		e.users = append(e.users, u)
	}
	return u
}

// simulate decides what the event of r does, given st (which it updates as if the event had
// been applied), and adds its writes to e. It returns "ok", "duplicate" or a rejection reason:
// the checks of the kind, as docs/projector.md describes them.
func (e *effects) simulate(st *graphState, r Record, m map[string]any) (string, error) {
	owner, _ := m["owner"].(string)
	switch r.Event.Kind {
	case events.KindUserUpserted, events.KindUserRecreated:
		// A re-creation is an upsert without attributes: the start of the user's new life.
		u := e.touchUser(st, m)
		if a := m["attributes_json"]; a != nil && u != nil {
			u.attributes = a
		}
		return "ok", nil

	case events.KindMessageAdded:
		d, err := dataAs[events.MessageAdded](r)
		if err != nil {
			return "", err
		}
		if x, ok := st.messages[d.MessageID]; ok {
			if x.same(owner) {
				return "duplicate", nil
			}
			return string(ReasonForeignReference), nil
		}
		st.messages[d.MessageID] = ownedBy(owner)
		ts, _ := m["timestamp"].(time.Time)
		if e.convIdx == nil {
			e.convIdx = map[string]*convWrite{}
		}
		cw := e.convIdx[d.ConversationID]
		conv := st.conversations[d.ConversationID]
		if cw == nil {
			cw = &convWrite{id: d.ConversationID, exists: conv != nil}
			if conv == nil {
				conv = &convNode{owned: ownedBy(owner)}
				st.conversations[d.ConversationID] = conv
				cw.create, cw.title, cw.updatedAt = m, m["title"], ts
			} else {
				cw.updatedAt = ts
			}
			e.convIdx[d.ConversationID] = cw
			e.convs = append(e.convs, cw)
		}
		if t := m["title"]; t != nil {
			cw.title = t
		}
		if ts.After(cw.updatedAt) {
			cw.updatedAt = ts
		}
		if e.msgIdx == nil {
			e.msgIdx = map[string]map[string]any{}
		}
		g := e.msgIdx[d.ConversationID]
		if g == nil {
			var tail any
			if conv.tail != "" {
				tail = conv.tail
			}
			g = map[string]any{"conversation_id": d.ConversationID, "tail": tail, "messages": []any{}}
			e.msgIdx[d.ConversationID] = g
			e.msgGroups = append(e.msgGroups, g)
		}
		g["messages"] = append(g["messages"].([]any), m)
		conv.tail, cw.last = d.MessageID, d.MessageID
		e.touchUser(st, m)
		return "ok", nil

	case events.KindPreferenceAdded:
		d, err := dataAs[events.PreferenceAdded](r)
		if err != nil {
			return "", err
		}
		ids, _ := m["entity_ids"].([]any)
		missing, foreign := 0, 0
		for _, v := range ids {
			en, ok := st.entities[v.(string)]
			switch {
			case !ok:
				missing++
			case en.differs(owner):
				foreign++
			}
		}
		x, exists := st.preferences[d.PreferenceID]
		switch {
		case exists && x.same(owner):
			return "duplicate", nil
		case exists || foreign > 0:
			return string(ReasonForeignReference), nil
		case missing > 0:
			return string(ReasonMissingReference), nil
		}
		st.preferences[d.PreferenceID] = &prefNode{owned: ownedBy(owner)}
		linked := map[string]bool{}
		appliesTo := make([]any, 0, len(ids))
		link := func(eid string) {
			if !linked[eid] {
				linked[eid] = true
				appliesTo = append(appliesTo, eid)
			}
		}
		for _, v := range ids {
			link(st.resolve(v.(string)))
		}
		named, _ := m["entities"].([]any)
		for _, v := range named {
			en := v.(map[string]any)
			link(e.ensureEntity(st, m, en["id"].(string), en["name"], en["type"]).id)
		}
		m["applies_to"] = appliesTo
		e.touchUser(st, m)
		if e.prefIdx == nil {
			e.prefIdx = map[any]map[string]any{}
		}
		g := e.prefIdx[m["user"]]
		if g == nil {
			g = map[string]any{"user": m["user"], "preferences": []any{}}
			e.prefIdx[m["user"]] = g
			e.prefGroups = append(e.prefGroups, g)
		}
		g["preferences"] = append(g["preferences"].([]any), m)
		return "ok", nil

	case events.KindPreferenceSuperseded:
		d, err := dataAs[events.PreferenceSuperseded](r)
		if err != nil {
			return "", err
		}
		o, n := st.preferences[d.OldID], st.preferences[d.NewID]
		switch {
		case o == nil || n == nil:
			return string(ReasonMissingReference), nil
		case o.differs(owner) || n.differs(owner):
			return string(ReasonForeignReference), nil
		case slices.Contains(o.supersededBy, d.NewID):
			return "duplicate", nil
		case d.OldID == d.NewID || len(o.supersededBy) > 0 || len(n.supersededBy) > 0:
			return string(ReasonConflict), nil
		}
		o.supersededBy = append(o.supersededBy, d.NewID)
		e.supersedes = append(e.supersedes, m)
		return "ok", nil

	case events.KindTraceStarted:
		d, err := dataAs[events.TraceStarted](r)
		if err != nil {
			return "", err
		}
		if x, ok := st.traces[d.TraceID]; ok {
			if x.same(owner) {
				return "duplicate", nil
			}
			return string(ReasonForeignReference), nil
		}
		st.traces[d.TraceID] = &traceNode{owned: ownedBy(owner)}
		e.touchUser(st, m)
		e.traces = append(e.traces, m)
		return "ok", nil

	case events.KindTraceStepAdded:
		d, err := dataAs[events.TraceStepAdded](r)
		if err != nil {
			return "", err
		}
		t := st.traces[d.TraceID]
		x, exists := st.steps[d.StepID]
		switch {
		case exists && x.same(owner):
			return "duplicate", nil
		case exists:
			return string(ReasonForeignReference), nil
		case t == nil:
			return string(ReasonMissingReference), nil
		case t.differs(owner):
			return string(ReasonForeignReference), nil
		}
		num := int64(d.StepNumber)
		if num <= 0 {
			num = t.top + 1
		}
		t.top = max(t.top, num)
		st.steps[d.StepID] = &stepNode{owned: ownedBy(owner), traces: []string{d.TraceID}}
		m["step_number"] = num
		e.steps = append(e.steps, m)
		return "ok", nil

	case events.KindToolCallRecorded:
		d, err := dataAs[events.ToolCallRecorded](r)
		if err != nil {
			return "", err
		}
		s := st.steps[d.StepID]
		x, exists := st.toolCalls[d.ToolCallID]
		switch {
		case exists && x.same(owner):
			return "duplicate", nil
		case exists:
			return string(ReasonForeignReference), nil
		case s == nil:
			return string(ReasonMissingReference), nil
		case s.differs(owner):
			return string(ReasonForeignReference), nil
		case !slices.Contains(s.traces, d.TraceID):
			return string(ReasonMissingReference), nil
		}
		st.toolCalls[d.ToolCallID] = ownedBy(owner)
		e.toolCalls = append(e.toolCalls, m)
		if !e.countTools {
			return "ok", nil
		}
		return "ok", e.tools.add(r)

	case events.KindTraceCompleted:
		d, err := dataAs[events.TraceCompleted](r)
		if err != nil {
			return "", err
		}
		t := st.traces[d.TraceID]
		switch {
		case t == nil:
			return string(ReasonMissingReference), nil
		case t.differs(owner):
			return string(ReasonForeignReference), nil
		}
		// The last completion of a trace sets its outcome.
		if e.complIdx == nil {
			e.complIdx = map[string]int{}
		}
		if i, ok := e.complIdx[d.TraceID]; ok {
			e.completes[i] = m
		} else {
			e.complIdx[d.TraceID] = len(e.completes)
			e.completes = append(e.completes, m)
		}
		return "ok", nil
	}
	return e.simulateEntities(st, r, m)
}

// write writes the segment in one statement (cypherWrite); nothing when it writes nothing.
func (e *effects) write(ctx context.Context, tx neo4j.ManagedTransaction) error {
	var createUsers, updateUsers []any
	for _, u := range e.users {
		switch {
		case !u.exists:
			c := u.create
			c["attributes_json"] = "{}"
			if u.attributes != nil {
				c["attributes_json"] = u.attributes
			}
			createUsers = append(createUsers, c)
		case u.attributes != nil:
			updateUsers = append(updateUsers, map[string]any{"identifier": u.identifier, "attributes_json": u.attributes})
		}
	}
	var createConvs, updateConvs []any
	for _, c := range e.convs {
		if c.exists {
			updateConvs = append(updateConvs, map[string]any{"id": c.id, "title": c.title,
				"updated_at": graphTime(c.updatedAt), "last_message_id": c.last})
		} else {
			m := c.create
			createConvs = append(createConvs, map[string]any{"id": c.id, "session_id": m["session_id"],
				"user_identifier": m["user"], "owner": m["owner"], "title": c.title, "created_at": m["time"],
				"updated_at": graphTime(c.updatedAt), "recorded_at": m["recorded_at"], "recorded_seq": m["seq"],
				"last_message_id": c.last})
		}
	}
	if !e.countTools {
		// In name order: transactions that create the same new Tools take their locks in the
		// same order.
		slices.SortStableFunc(e.toolCalls, func(a, b any) int {
			return strings.Compare(a.(map[string]any)["tool_name"].(string), b.(map[string]any)["tool_name"].(string))
		})
	}
	w := map[string]any{
		"create_users": createUsers, "update_users": updateUsers,
		"create_conversations": createConvs, "update_conversations": updateConvs,
		"messages": e.msgGroups, "preferences": e.prefGroups, "supersedes": e.supersedes,
		"traces": e.traces, "steps": e.steps, "completes": e.completes,
		"tool_calls": e.toolCalls, "tools": e.tools.rows(),
	}
	e.entityRows(w)
	n := 0
	for k, v := range w {
		rows, _ := v.([]any)
		if rows == nil {
			w[k] = []any{}
		}
		n += len(rows)
	}
	if n == 0 {
		return nil
	}
	cypher := cypherWrite
	if !e.countTools {
		cypher = cypherWriteUncounted
	}
	res, err := tx.Run(ctx, cypher, map[string]any{"w": w})
	if err != nil {
		return fmt.Errorf("write %d rows: %w", n, err)
	}
	if _, err := res.Consume(ctx); err != nil {
		return fmt.Errorf("write %d rows: %w", n, err)
	}
	return nil
}

// runRows runs a write statement over rows (nothing for none).
func runRows(ctx context.Context, tx neo4j.ManagedTransaction, what, cypher string, rows []any) error {
	if len(rows) == 0 {
		return nil
	}
	res, err := tx.Run(ctx, cypher, map[string]any{"batch": map[string]any{"rows": rows}})
	if err != nil {
		return fmt.Errorf("%s (%d): %w", what, len(rows), err)
	}
	if _, err := res.Consume(ctx); err != nil {
		return fmt.Errorf("%s (%d): %w", what, len(rows), err)
	}
	return nil
}
