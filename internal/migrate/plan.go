package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/events"
)

// Settings are the CloudEvents attributes of the imported events.
type Settings struct {
	Source        string // ce-source; default DefaultSource
	Actor         string // ce-actor; default DefaultActor
	CorrelationID string // ce-correlationid; Importer sets "import-<source db id>"
}

// Defaults of Settings.
const (
	DefaultSource = "/engram/memctl/import"
	DefaultActor  = "memctl"
)

// Event is one imported event, encoded as it will be published: events.Encode has validated
// it exactly as it validates the ingestor's.
type Event struct {
	*events.Event
	Msg *nats.Msg
}

// UserPlan is what the import publishes for one user, in publishing order.
type UserPlan struct {
	User   string
	Events []Event
	Issues []Issue
}

// Counts returns the number of events per kind.
func (p *UserPlan) Counts() map[events.Kind]int {
	c := map[events.Kind]int{}
	for _, e := range p.Events {
		c[e.Kind]++
	}
	return c
}

// rank orders events of one instant so that each comes after what it refers to.
var rank = map[events.Kind]int{
	events.KindUserUpserted: 0, events.KindMessageAdded: 1, events.KindPreferenceAdded: 2,
	events.KindPreferenceSuperseded: 3, events.KindTraceStarted: 4, events.KindTraceStepAdded: 5,
	events.KindToolCallRecorded: 6, events.KindTraceCompleted: 7,
}

// planned is an event with its place in the user's order: key is the latest library time of
// the event and of everything it depends on, so sorting by (key, rank, n) puts every event
// after its dependencies and otherwise in the library's time order.
type planned struct {
	ev  Event
	key time.Time
	n   int
}

// builder collects one user's events and issues.
type builder struct {
	user    string
	s       Settings
	evs     []planned
	issues  []Issue
	skipped map[string]bool // library ids that are not imported (their dependents neither)
}

func (b *builder) issue(code, id, format string, args ...any) {
	b.issues = append(b.issues, Issue{Code: code, User: b.user, ID: id, Detail: fmt.Sprintf(format, args...)})
}

// add encodes one event; an event Engram's validation refuses is reported as invalid and its
// id marked skipped. It returns the event's order key, and false when it was refused.
func (b *builder) add(kind events.Kind, at, after time.Time, data any, id string, more ...string) (time.Time, bool) {
	e := &events.Event{
		ID: EventID(at, kind, b.user, append([]string{id}, more...)...), Source: b.s.Source, Kind: kind,
		User: b.user, Time: at, Actor: b.s.Actor, CorrelationID: b.s.CorrelationID, Data: data,
	}
	msg, err := events.Encode(e)
	if err != nil {
		b.issue(CodeInvalid, id, "%s: %v", kind, err)
		b.skipped[id] = true
		return time.Time{}, false
	}
	key := at
	if after.After(key) {
		key = after
	}
	b.evs = append(b.evs, planned{ev: Event{Event: e, Msg: msg}, key: key, n: len(b.evs)})
	return key, true
}

// Users lists the identifiers of the source's users, sorted; with only, those (each must
// exist). An identifier Engram refuses is reported (CodeInvalidUser) and left out.
func (s *Source) Users(ctx context.Context, only []string) ([]string, []Issue, error) {
	rows, err := s.read(ctx, "MATCH (u:User) RETURN DISTINCT u.identifier AS identifier", nil)
	if err != nil {
		return nil, nil, fmt.Errorf("read the source's users: %w", err)
	}
	all := map[string]bool{}
	var issues []Issue
	for _, r := range rows {
		id, ok := r["identifier"].(string)
		if !ok {
			issues = append(issues, Issue{Code: CodeInvalidUser, ID: fmt.Sprint(r["identifier"]), Detail: "User without a string identifier: not imported"})
			continue
		}
		if err := events.ValidateIdentifier(id); err != nil {
			issues = append(issues, Issue{Code: CodeInvalidUser, User: id, ID: id, Detail: fmt.Sprintf("%v: the user and everything of theirs not imported", err)})
			continue
		}
		all[id] = true
	}
	if len(only) == 0 {
		return slices.Sorted(maps.Keys(all)), issues, nil
	}
	var out []string
	for _, u := range only {
		if !all[u] {
			return nil, nil, fmt.Errorf("--user %q: the source has no importable User with that identifier", u)
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out, issues, nil
}

// Plan reads one user's part of the source and returns its events in publishing order.
func (s *Source) Plan(ctx context.Context, user string, set Settings) (*UserPlan, error) {
	if set.Source == "" {
		set.Source = DefaultSource
	}
	if set.Actor == "" {
		set.Actor = DefaultActor
	}
	b := &builder{user: user, s: set, skipped: map[string]bool{}}
	if err := s.planUser(ctx, b); err != nil {
		return nil, err
	}
	if err := s.planConversations(ctx, b); err != nil {
		return nil, err
	}
	if err := s.planPreferences(ctx, b); err != nil {
		return nil, err
	}
	if err := s.planTraces(ctx, b); err != nil {
		return nil, err
	}
	slices.SortStableFunc(b.evs, func(x, y planned) int {
		ux, uy := x.ev.Kind == events.KindUserUpserted, y.ev.Kind == events.KindUserUpserted
		switch {
		case ux && !uy:
			return -1
		case uy && !ux:
			return 1
		}
		if c := x.key.Compare(y.key); c != 0 {
			return c
		}
		if c := rank[x.ev.Kind] - rank[y.ev.Kind]; c != 0 {
			return c
		}
		return x.n - y.n
	})
	p := &UserPlan{User: user, Issues: b.issues}
	for _, e := range b.evs {
		p.Events = append(p.Events, e.ev)
	}
	return p, nil
}

// planUser imports the user itself: the user_upserted event comes first, timed at the User's
// created_at, with the attributes the library holds now (null or {} mean none: the library
// stores none for {}, and a new Engram user has none).
func (s *Source) planUser(ctx context.Context, b *builder) error {
	rows, err := s.read(ctx, `MATCH (u:User {identifier: $user})
		RETURN u.attributes_json AS attributes, u.created_at AS created_at LIMIT 1`, map[string]any{"user": b.user})
	if err != nil {
		return fmt.Errorf("read user %s: %w", b.user, err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("read user %s: no such User in the source", b.user)
	}
	at, ok := timeOf(rows[0]["created_at"])
	if !ok {
		// Without a creation time the event still needs one that is the same on every run.
		at = time.Unix(0, 0).UTC()
		b.issue(CodeNoTime, b.user, "User has no created_at: imported with created_at %s", at.Format(time.RFC3339))
	}
	var attrs map[string]any
	if raw := rows[0]["attributes"]; raw != nil {
		attrs, ok = jsonObject(raw)
		if !ok {
			b.issue(CodeInvalidJSON, b.user, "attributes_json %q is not a JSON object: imported without attributes", clip(fmt.Sprint(raw)))
		}
	}
	// The attributes are part of the event's identity: a user whose attributes changed in the
	// library since an earlier import gets a new upsert, which replaces them.
	canon, _ := json.Marshal(attrs)
	d := events.UserUpserted{UserID: events.UserID(b.user), Identifier: b.user}
	if len(attrs) > 0 {
		d.Attributes = attrs
	}
	b.add(events.KindUserUpserted, at, time.Time{}, d, b.user, string(canon))
	return nil
}

const conversationsQuery = `
MATCH (:User {identifier: $user})-[:HAS_CONVERSATION]->(c:Conversation)
WITH DISTINCT c
RETURN c.id AS id, c.session_id AS session_id, c.title AS title, c.created_at AS created_at,
       c.user_identifier AS user_identifier,
       [(o:User)-[:HAS_CONVERSATION]->(c) | o.identifier] AS owners,
       [(c)-[:HAS_MESSAGE]->(m:Message) | m {.id, .role, .content, .timestamp, .metadata, .embedding}] AS messages`

// planConversations imports the user's conversations, each as its messages in the order the
// library reads them (timestamp, then id). The conversation's id is Engram's (derived from
// user and session); its title goes on the first message.
func (s *Source) planConversations(ctx context.Context, b *builder) error {
	rows, err := s.read(ctx, conversationsQuery, map[string]any{"user": b.user})
	if err != nil {
		return fmt.Errorf("read conversations of %s: %w", b.user, err)
	}
	for _, r := range rows {
		cid := str(r["id"])
		owner := ownerOf(strList(r["owners"]), str(r["user_identifier"]))
		if owner != b.user {
			b.issue(CodeSharedConversation, cid, "conversation of %d users: imported for %s only", len(strList(r["owners"])), owner)
			continue
		}
		session := str(r["session_id"])
		msgs := mapList(r["messages"])
		if len(msgs) == 0 {
			b.issue(CodeEmptyConversation, cid, "conversation of session %q has no messages: Engram creates a conversation with its first message, so it is not imported", session)
			continue
		}
		created, hasCreated := timeOf(r["created_at"])
		slices.SortStableFunc(msgs, func(x, y map[string]any) int {
			tx, _ := timeOf(x["timestamp"])
			ty, _ := timeOf(y["timestamp"])
			if c := tx.Compare(ty); c != 0 {
				return c
			}
			return strings.Compare(str(x["id"]), str(y["id"]))
		})
		title := str(r["title"])
		var last time.Time
		for i, m := range msgs {
			mid := str(m["id"])
			ts, ok := timeOf(m["timestamp"])
			if !ok {
				if !hasCreated {
					b.issue(CodeNoTime, mid, "message without timestamp in a conversation without created_at: not imported")
					continue
				}
				ts = created
				b.issue(CodeNoTime, mid, "message without timestamp: imported at its conversation's created_at")
			}
			d := events.MessageAdded{
				MessageID: mid, ConversationID: events.ConversationID(b.user, session), SessionID: session,
				Role: str(m["role"]), Content: str(m["content"]), Timestamp: &ts,
				Embedding: b.vector(mid, m["embedding"]),
			}
			if raw := m["metadata"]; raw != nil {
				meta, ok := jsonObject(raw)
				if !ok {
					b.issue(CodeInvalidJSON, mid, "message metadata %q is not a JSON object: imported without metadata", clip(fmt.Sprint(raw)))
				}
				d.Metadata = meta
			}
			// The conversation is created by its first message's event: its ce-time is the
			// conversation's created_at, as the projection takes created_at from it.
			at := ts
			if i == 0 {
				d.Title = title
				if hasCreated {
					at = created
				}
			}
			if key, ok := b.add(events.KindMessageAdded, at, last, d, mid); ok {
				last = key
			}
		}
	}
	return nil
}

const preferencesQuery = `
MATCH (:User {identifier: $user})-[:HAS_PREFERENCE]->(p:Preference)
WITH DISTINCT p
RETURN p.id AS id, p.category AS category, p.preference AS preference, p.context AS context,
       p.confidence AS confidence, p.created_at AS created_at, p.valid_from AS valid_from,
       p.valid_until AS valid_until, p.metadata AS metadata, p.embedding AS embedding,
       [(o:User)-[:HAS_PREFERENCE]->(p) | o.identifier] AS owners,
       [(p)-[:APPLIES_TO]->(e:Entity) | e {.id, .name, .type}] AS applies_to,
       [(p)-[:SUPERSEDED_BY]->(n:Preference) | n {.id, .created_at}] AS superseded_by`

type prefInfo struct {
	key        time.Time // order key of its preference_added
	validUntil *time.Time
	next       []map[string]any // its SUPERSEDED_BY targets
}

// planPreferences imports the user's preferences (created_at as the event time, valid_from as
// the data's) and then the supersede chains (valid_until as the data's and the event time).
func (s *Source) planPreferences(ctx context.Context, b *builder) error {
	rows, err := s.read(ctx, preferencesQuery, map[string]any{"user": b.user})
	if err != nil {
		return fmt.Errorf("read preferences of %s: %w", b.user, err)
	}
	prefs := map[string]*prefInfo{}
	for _, r := range rows {
		pid := str(r["id"])
		if owner := ownerOf(strList(r["owners"]), ""); owner != b.user {
			b.issue(CodeSharedPreference, pid, "preference of %d users (the library's cross-user dedup): imported for %s only", len(strList(r["owners"])), owner)
			continue
		}
		created, ok := timeOf(r["created_at"])
		validFrom, hasFrom := timeOf(r["valid_from"])
		switch {
		case !ok && !hasFrom:
			b.issue(CodeNoTime, pid, "preference without created_at and valid_from: not imported")
			b.skipped[pid] = true
			continue
		case !ok:
			created = validFrom
		case !hasFrom:
			b.issue(CodeNoValidFrom, pid, "preference without valid_from (the library sets it in a second write after creating the node, which did not happen): the library's as_of reads treat it as valid since forever, Engram's projection as valid from created_at %s", created.Format(time.RFC3339Nano))
		}
		d := events.PreferenceAdded{
			PreferenceID: pid, Category: str(r["category"]), Preference: str(r["preference"]), Context: str(r["context"]),
			Embedding: b.vector(pid, r["embedding"]),
		}
		if hasFrom {
			d.ValidFrom = &validFrom
		}
		if c, ok := number(r["confidence"]); ok {
			d.Confidence = &c
		}
		if raw := r["metadata"]; raw != nil {
			meta, ok := jsonObject(raw)
			if !ok {
				b.issue(CodeInvalidJSON, pid, "preference metadata %q is not a JSON object: imported without metadata", clip(fmt.Sprint(raw)))
			}
			d.Metadata = meta
		}
		for _, e := range mapList(r["applies_to"]) {
			name := str(e["name"])
			if name == "" {
				b.issue(CodeDanglingEntity, str(e["id"]), "preference %s applies to an Entity without a name: Engram names entities by name and type, so this reference is not imported", pid)
				continue
			}
			d.AppliesTo = append(d.AppliesTo, events.EntityRef{Name: name, Type: str(e["type"])})
		}
		slices.SortFunc(d.AppliesTo, func(x, y events.EntityRef) int {
			return strings.Compare(x.Name+"\x00"+x.Type, y.Name+"\x00"+y.Type)
		})
		key, ok := b.add(events.KindPreferenceAdded, created, time.Time{}, d, pid)
		if !ok {
			continue
		}
		info := &prefInfo{key: key, next: mapList(r["superseded_by"])}
		if vu, ok := timeOf(r["valid_until"]); ok {
			info.validUntil = &vu
		}
		prefs[pid] = info
	}
	s.planSupersedes(b, prefs)
	return nil
}

// planSupersedes keeps, of each preference's SUPERSEDED_BY edges, the one to the earliest
// created replacement (the library keeps the first valid_until too: coalesce), and reports
// the others: Engram's chains are linear. The chains are published from their heads, so a
// supersede never names a preference already superseded (the projector refuses that).
func (s *Source) planSupersedes(b *builder, prefs map[string]*prefInfo) {
	next := map[string]string{}
	isNew := map[string]bool{}
	for _, old := range slices.Sorted(maps.Keys(prefs)) {
		p := prefs[old]
		if p.validUntil != nil && len(p.next) == 0 {
			b.issue(CodeValidUntilOnly, old, "valid_until %s without a SUPERSEDED_BY edge: Engram closes a preference only by a supersede, so it is imported as still valid", p.validUntil.Format(time.RFC3339Nano))
		}
		targets := p.next
		slices.SortFunc(targets, func(x, y map[string]any) int {
			tx, _ := timeOf(x["created_at"])
			ty, _ := timeOf(y["created_at"])
			if c := tx.Compare(ty); c != 0 {
				return c
			}
			return strings.Compare(str(x["id"]), str(y["id"]))
		})
		for _, t := range targets {
			nid := str(t["id"])
			switch {
			case next[old] != "":
				b.issue(CodeSecondSupersede, old, "superseded again by %s after %s: Engram keeps a linear chain, so only the supersede by %s is imported", nid, next[old], next[old])
			case prefs[nid] == nil && b.skipped[nid]:
				b.issue(CodeDependsOnSkipped, old, "superseded by %s, which is not imported", nid)
			case prefs[nid] == nil:
				b.issue(CodeForeignSupersede, old, "superseded by %s, which is not a preference of %s: not imported", nid, b.user)
			case nid == old:
				b.issue(CodeSupersedeCycle, old, "superseded by itself: not imported")
			default:
				next[old] = nid
				isNew[nid] = true
			}
		}
	}
	done := map[string]bool{}
	var walk func(old string, after time.Time)
	walk = func(old string, after time.Time) {
		nid, ok := next[old]
		if !ok || done[old] {
			return
		}
		done[old] = true
		p, n := prefs[old], prefs[nid]
		d := events.PreferenceSuperseded{OldID: old, NewID: nid}
		at := n.key
		if p.validUntil != nil {
			at, d.ValidUntil = *p.validUntil, p.validUntil
		} else {
			b.issue(CodeNoTime, old, "SUPERSEDED_BY without valid_until: imported with valid_until %s, the replacement's created_at", at.Format(time.RFC3339Nano))
		}
		after = latest(after, p.key, n.key)
		if key, ok := b.add(events.KindPreferenceSuperseded, at, after, d, old, nid); ok {
			walk(nid, key)
		}
	}
	for _, old := range slices.Sorted(maps.Keys(next)) {
		if !isNew[old] {
			walk(old, time.Time{})
		}
	}
	for _, old := range slices.Sorted(maps.Keys(next)) {
		if !done[old] {
			b.issue(CodeSupersedeCycle, old, "in a cycle of supersedes (…→%s→%s→…): not imported", old, next[old])
		}
	}
}

const tracesQuery = `
MATCH (:User {identifier: $user})-[:HAS_TRACE]->(t:ReasoningTrace)
WITH DISTINCT t
RETURN t {.id, .session_id, .task, .outcome, .success, .started_at, .completed_at, .metadata,
          .error_kind, .metrics_json, .user_identifier, .task_embedding} AS trace,
       [(o:User)-[:HAS_TRACE]->(t) | o.identifier] AS owners,
       [(t)-[:HAS_STEP]->(s:ReasoningStep) | s {.id, .step_number, .thought, .action, .observation,
          .timestamp, .metadata,
          tool_calls: [(s)-[:USES_TOOL]->(c:ToolCall) | c {.id, .tool_name, .arguments, .result,
                       .status, .duration_ms, .error, .timestamp}]}] AS steps`

// planTraces imports the user's reasoning traces: started at started_at, each step at its
// timestamp with its step_number, each tool call at its timestamp, completed at completed_at.
func (s *Source) planTraces(ctx context.Context, b *builder) error {
	rows, err := s.read(ctx, tracesQuery, map[string]any{"user": b.user})
	if err != nil {
		return fmt.Errorf("read traces of %s: %w", b.user, err)
	}
	for _, r := range rows {
		t, _ := r["trace"].(map[string]any)
		tid := str(t["id"])
		if owner := ownerOf(strList(r["owners"]), str(t["user_identifier"])); owner != b.user {
			b.issue(CodeSharedTrace, tid, "trace of %d users: imported for %s only", len(strList(r["owners"])), owner)
			continue
		}
		started, ok := timeOf(t["started_at"])
		if !ok {
			b.issue(CodeNoTime, tid, "trace without started_at: not imported (nor its steps and tool calls)")
			continue
		}
		d := events.TraceStarted{TraceID: tid, SessionID: str(t["session_id"]), Task: str(t["task"]),
			Embedding: b.vector(tid, t["task_embedding"])}
		if raw := t["metadata"]; raw != nil {
			meta, ok := jsonObject(raw)
			if !ok {
				b.issue(CodeInvalidJSON, tid, "trace metadata %q is not a JSON object: imported without metadata", clip(fmt.Sprint(raw)))
			}
			d.Metadata = meta
		}
		if t["error_kind"] != nil || t["metrics_json"] != nil {
			b.issue(CodeDroppedField, tid, "trace error_kind/metrics_json (a structured TraceOutcome): Engram's trace_completed has no such fields, so they are not imported")
		}
		traceKey, ok := b.add(events.KindTraceStarted, started, time.Time{}, d, tid)
		if !ok {
			continue
		}
		last := traceKey
		steps := mapList(r["steps"])
		slices.SortStableFunc(steps, func(x, y map[string]any) int {
			nx, _ := number(x["step_number"])
			ny, _ := number(y["step_number"])
			if nx != ny {
				if nx < ny {
					return -1
				}
				return 1
			}
			return strings.Compare(str(x["id"]), str(y["id"]))
		})
		for _, st := range steps {
			if k, ok := b.planStep(tid, traceKey, st); ok {
				last = latest(last, k)
			}
		}
		if completed, ok := timeOf(t["completed_at"]); ok {
			c := events.TraceCompleted{TraceID: tid, Outcome: str(t["outcome"])}
			if v, ok := t["success"].(bool); ok {
				c.Success = &v
			}
			b.add(events.KindTraceCompleted, completed, last, c, tid)
		}
	}
	return nil
}

// planStep imports one step and its tool calls; it returns the latest order key among them.
func (b *builder) planStep(tid string, after time.Time, st map[string]any) (time.Time, bool) {
	sid := str(st["id"])
	ts, ok := timeOf(st["timestamp"])
	if !ok {
		ts = after
		b.issue(CodeNoTime, sid, "step without timestamp: imported at its trace's started_at")
	}
	n, _ := number(st["step_number"])
	d := events.TraceStepAdded{TraceID: tid, StepID: sid, StepNumber: int(n),
		Thought: str(st["thought"]), Action: str(st["action"]), Observation: str(st["observation"])}
	if raw := st["metadata"]; raw != nil {
		if meta, ok := jsonObject(raw); !ok || len(meta) > 0 {
			b.issue(CodeDroppedField, sid, "step metadata %s: Engram's trace_step_added has no metadata, so it is not imported", clip(fmt.Sprint(raw)))
		}
	}
	key, ok := b.add(events.KindTraceStepAdded, ts, after, d, sid)
	if !ok {
		for _, c := range mapList(st["tool_calls"]) {
			b.issue(CodeDependsOnSkipped, str(c["id"]), "tool call of step %s, which is not imported", sid)
		}
		return time.Time{}, false
	}
	last := key
	calls := mapList(st["tool_calls"])
	slices.SortStableFunc(calls, func(x, y map[string]any) int {
		tx, _ := timeOf(x["timestamp"])
		ty, _ := timeOf(y["timestamp"])
		if c := tx.Compare(ty); c != 0 {
			return c
		}
		return strings.Compare(str(x["id"]), str(y["id"]))
	})
	for _, c := range calls {
		cid := str(c["id"])
		at, ok := timeOf(c["timestamp"])
		if !ok {
			at = ts
			b.issue(CodeNoTime, cid, "tool call without timestamp: imported at its step's timestamp")
		}
		tc := events.ToolCallRecorded{TraceID: tid, StepID: sid, ToolCallID: cid, ToolName: str(c["tool_name"]),
			Status: str(c["status"]), Error: str(c["error"])}
		if tc.Status == "" {
			tc.Status = "success"
		}
		var bad bool
		if tc.Arguments, bad = jsonValue(c["arguments"]); bad {
			b.issue(CodeInvalidJSON, cid, "tool call arguments %q are not JSON: imported without arguments", clip(fmt.Sprint(c["arguments"])))
		}
		if tc.Result, bad = jsonValue(c["result"]); bad {
			b.issue(CodeInvalidJSON, cid, "tool call result %q is not JSON: imported without result", clip(fmt.Sprint(c["result"])))
		}
		if v, ok := c["duration_ms"].(int64); ok {
			tc.DurationMS = &v
		}
		if k, ok := b.add(events.KindToolCallRecorded, at, key, tc, cid); ok {
			last = latest(last, k)
		}
	}
	return last, true
}

// ownerOf is the one user a node shared by several users is imported for: the one the node
// names (user_identifier, the last the library linked), else the first identifier in order.
// It depends only on the graph, so an import of one user and of all users agree.
func ownerOf(owners []string, named string) string {
	if slices.Contains(owners, named) {
		return named
	}
	if len(owners) == 0 {
		return ""
	}
	return slices.Min(owners)
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// jsonObject reads one of the library's JSON-string properties that holds an object.
func jsonObject(v any) (map[string]any, bool) {
	s, ok := v.(string)
	if !ok {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// jsonValue reads a JSON-string property holding any value; bad is true when it is not JSON.
func jsonValue(v any) (out any, bad bool) {
	if v == nil {
		return nil, false
	}
	s, ok := v.(string)
	if !ok {
		return nil, true
	}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, true
	}
	return out, false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// vector is a node's embedding as its event carries it (the library's embedding, or a
// trace's task_embedding): nil when it has none, and nil with an issue when it is not a list
// of numbers Engram accepts (embed.Check).
func (b *builder) vector(id string, v any) []float64 {
	var out []float64
	switch l := v.(type) {
	case nil:
		return nil
	case []float64:
		out = slices.Clone(l)
	case []any:
		out = make([]float64, 0, len(l))
		for _, x := range l {
			f, ok := number(x)
			if !ok {
				b.issue(CodeEmbedding, id, "embedding holds %T, not a number: imported without it", x)
				return nil
			}
			out = append(out, f)
		}
	default:
		b.issue(CodeEmbedding, id, "embedding is %T, not a list of numbers: imported without it", v)
		return nil
	}
	if err := embed.Check(out); err != nil {
		b.issue(CodeEmbedding, id, "embedding %v: imported without it", err)
		return nil
	}
	return out
}

func strList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func mapList(v any) []map[string]any {
	l, _ := v.([]any)
	out := make([]map[string]any, 0, len(l))
	for _, x := range l {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// clip shortens a value quoted in an issue.
func clip(s string) string {
	const n = 80
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
