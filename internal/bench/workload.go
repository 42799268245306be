package bench

import (
	"fmt"
	"time"

	"github.com/engram-memory/engram/internal/events"
)

// Tenant groups: each scenario writes for tenants of its own group, so its data can be
// purged on its own and never mixes with another scenario's.
const (
	groupIngestHTTP  = "ih"
	groupIngestBatch = "ib"
	groupPublish     = "pu"
	groupProjection  = "pj"
	groupFreshness   = "fr"
	groupReads       = "rd"
	groupRawNeo4j    = "rn"
	groupRawPublish  = "rp"
)

// EventSource is the CloudEvents source of the events the driver writes itself.
const EventSource = "/engram/bench"

// Tenants names the run's users. Every identifier is bench-<run>-<group><n>@bench.engram, so
// every owner token the run creates starts with OwnerPrefix and cleanup finds them all.
type Tenants struct{ RunID string }

// User is the identifier of user n of a group.
func (t Tenants) User(group string, n int) string {
	return fmt.Sprintf("bench-%s-%s%d@bench.engram", t.RunID, group, n)
}

// OwnerPrefix starts the owner token (docs/graph.md) of every node the run creates: identifiers
// keep ASCII letters, digits and '-' in their token.
func (t Tenants) OwnerPrefix() string { return "bench-" + t.RunID + "-" }

// GroupPrefix starts the owner token of every node of one group's users.
func (t Tenants) GroupPrefix(group string) string { return t.OwnerPrefix() + group }

// ToolName is the name of one of the run's tools; Tool nodes are global, so their names are
// the run's own too.
func (t Tenants) ToolName(n int) string {
	return fmt.Sprintf("bench-%s-%s", t.RunID, []string{"search_consultants", "lookup_availability", "rank_candidates"}[n%3])
}

// EventsPerUser is the length of one user's script in Mix.
const EventsPerUser = 41

var (
	industries = []events.EntityRef{{Name: "Healthcare", Type: "Industry"}, {Name: "Finance", Type: "Industry"}, {Name: "Retail", Type: "Industry"}}
	locations  = []events.EntityRef{{Name: "Berlin", Type: "Location"}, {Name: "Lisbon", Type: "Location"}}
	categories = []string{"consultants", "communication", "scheduling", "tools", "reporting"}
)

// userScript is the realistic life of one user, as an agent writes it: the user upserted, two
// sessions of ten messages, ten preferences (half applying to entities), two supersedes, and
// one reasoning trace with three steps and three tool calls. EventsPerUser events in all.
func userScript(t Tenants, user string, base time.Time) []*events.Event {
	at := base
	var out []*events.Event
	add := func(d any) {
		at = at.Add(137 * time.Millisecond)
		out = append(out, &events.Event{ID: events.NewID(), Source: EventSource, User: user, Time: at, Actor: "bench-agent", Data: d})
	}
	msg := func(session string, i int) {
		role := "user"
		content := fmt.Sprintf("Message %d: could you find me a senior team for a healthcare analytics project starting next quarter?", i)
		if i%2 == 1 {
			role = "assistant"
			content = fmt.Sprintf("Reply %d: I found three consultants with healthcare experience; shall I check their availability?", i)
		}
		add(events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(user, session), SessionID: session,
			Role: role, Content: content, Metadata: map[string]any{"channel": "chat"}})
	}
	prefs := make([]string, 0, 10)
	pref := func(i int) {
		id := events.NewID()
		prefs = append(prefs, id)
		conf := 0.6 + float64(i%4)/10
		p := events.PreferenceAdded{PreferenceID: id, Category: categories[i%len(categories)],
			Preference: fmt.Sprintf("Preference %d: prefers senior consultants with domain experience and weekly written updates", i),
			Context:    "stated in conversation", Confidence: &conf}
		if i%2 == 0 {
			p.AppliesTo = []events.EntityRef{industries[i%len(industries)]}
			if i%4 == 0 {
				p.AppliesTo = append(p.AppliesTo, locations[i%len(locations)])
			}
		}
		if i%3 == 0 {
			vf := at.Add(-24 * time.Hour)
			p.ValidFrom = &vf
		}
		add(p)
	}
	trace := events.NewID()
	step := func(i int) {
		stepID := events.NewID()
		add(events.TraceStepAdded{TraceID: trace, StepID: stepID, StepNumber: i + 1, Thought: "The user wants senior healthcare consultants",
			Action: "search the consultant directory", Observation: "found candidates"})
		dur := int64(20 + i*7)
		add(events.ToolCallRecorded{TraceID: trace, StepID: stepID, ToolCallID: events.NewID(), ToolName: t.ToolName(i),
			Arguments: map[string]any{"industry": "healthcare", "seniority": "senior"}, Result: map[string]any{"count": 3 + i},
			Status: "success", DurationMS: &dur})
	}
	add(events.UserUpserted{UserID: events.UserID(user), Identifier: user, Attributes: map[string]any{"role": "manager", "team": "staffing"}})
	for i := range 4 {
		msg("s1", i)
	}
	for i := range 3 {
		pref(i)
	}
	add(events.TraceStarted{TraceID: trace, SessionID: "s1", Task: "find senior healthcare consultants"})
	step(0)
	for i := 4; i < 10; i++ {
		msg("s1", i)
	}
	for i := 3; i < 6; i++ {
		pref(i)
	}
	add(events.PreferenceSuperseded{OldID: prefs[0], NewID: prefs[3]})
	step(1)
	for i := range 10 {
		msg("s2", i)
	}
	for i := 6; i < 10; i++ {
		pref(i)
	}
	add(events.PreferenceSuperseded{OldID: prefs[1], NewID: prefs[6]})
	step(2)
	ok := true
	add(events.TraceCompleted{TraceID: trace, Outcome: "three candidates proposed", Success: &ok})
	return out
}

// Mix returns n events of a realistic mix for users of group: user scripts interleaved the
// way concurrent agents write, 256 users active at a time, each user's events in order.
func Mix(t Tenants, group string, n int, base time.Time) []*events.Event {
	users := (n + EventsPerUser - 1) / EventsPerUser
	out := make([]*events.Event, 0, n)
	const window = 256
	for start := 0; start < users && len(out) < n; start += window {
		scripts := make([][]*events.Event, 0, window)
		for u := start; u < min(start+window, users); u++ {
			scripts = append(scripts, userScript(t, t.User(group, u), base))
		}
		for i := 0; i < EventsPerUser && len(out) < n; i++ {
			for _, s := range scripts {
				if len(out) == n {
					break
				}
				out = append(out, s[i])
			}
		}
	}
	return out
}

// MixUsers is the number of users Mix(n) writes for.
func MixUsers(n int) int { return (n + EventsPerUser - 1) / EventsPerUser }
