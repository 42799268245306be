// Package demo runs the seed page's scenario (neo4j-agent-memory v0.4, multi-tenant memory)
// through the Go client against a running Engram, printing what every call returned. memctl
// demo runs it for people; the end-to-end test runs it and checks the results.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/engram-memory/engram/client"
)

// Users names the scenario's two users; the seed uses sara@omg.com and liam@omg.com.
type Users struct{ Sara, Liam string }

// SeedUsers are the seed page's users.
var SeedUsers = Users{Sara: "sara@omg.com", Liam: "liam@omg.com"}

// Result holds what the scenario's reads returned, for checks.
type Result struct {
	AllPrefs        []client.Preference // get_preferences_for(sara) after the first add
	HealthcarePrefs []client.Preference // ... applies_to Healthcare/Industry
	Junior, Senior  *client.Preference
	ActiveAfter     []client.Preference // active preferences after the supersede
	History         []client.Preference // active_only = false after the supersede
	Snapshot        []client.Preference // as_of before the supersede, active_only = false
	SnapshotAt      time.Time
	SaraTraces      []client.Trace
	LiamTraces      []client.Trace
	SaraTrace       *client.Trace
	LiamPrefs       []client.Preference
	SaraMessages    *client.MessagePage
}

// Run plays the seed page, step by step, printing each call and its answer to out.
func Run(ctx context.Context, c *client.Client, u Users, out io.Writer) (*Result, error) {
	var res Result
	say := func(call string, v any) {
		b, _ := json.MarshalIndent(v, "    ", "  ")
		fmt.Fprintf(out, "%s\n    -> %s\n", call, b)
	}
	step := func(title string) { fmt.Fprintf(out, "\n== %s\n", title) }

	step("1. Upsert the users (idempotent)")
	for _, x := range []struct {
		id    string
		attrs map[string]any
	}{{u.Sara, map[string]any{"role": "manager", "team": "consulting"}}, {u.Liam, map[string]any{"role": "consultant"}}} {
		user, err := c.Users.UpsertUser(ctx, x.id, client.WithAttributes(x.attrs))
		if err != nil {
			return nil, err
		}
		say(fmt.Sprintf("users.upsert_user(%q, %v)", x.id, x.attrs), map[string]any{"id": user.ID, "sequence": user.Receipt.Sequence})
	}

	step("2. Writes scoped with user_identifier=")
	sessSara, sessLiam := "sara-2026-05-01", "liam-2026-05-01"
	m1, err := c.ShortTerm.AddMessage(ctx, sessSara, "user", "Find me a healthcare team", client.ForUser(u.Sara))
	if err != nil {
		return nil, err
	}
	say(fmt.Sprintf("short_term.add_message(%q, user, ..., user_identifier=%q)", sessSara, u.Sara), map[string]any{"message_id": m1.ID, "conversation_id": m1.ConversationID})
	m2, err := c.ShortTerm.AddMessage(ctx, sessLiam, "user", "Find me a fintech team", client.ForUser(u.Liam))
	if err != nil {
		return nil, err
	}
	say(fmt.Sprintf("short_term.add_message(%q, user, ..., user_identifier=%q)", sessLiam, u.Liam), map[string]any{"message_id": m2.ID})
	healthcare := client.EntityRef{Name: "Healthcare", Type: "Industry"}
	p, err := c.LongTerm.AddPreference(ctx, "consultants", "Senior on healthcare clients",
		client.ForUser(u.Sara), client.AppliesTo(healthcare))
	if err != nil {
		return nil, err
	}
	say(fmt.Sprintf("long_term.add_preference(consultants, ..., user_identifier=%q, applies_to=[Healthcare/Industry])", u.Sara), map[string]any{"preference_id": p.ID})
	tr, err := c.Reasoning.StartTrace(ctx, sessSara, "consultant search", client.ForUser(u.Sara))
	if err != nil {
		return nil, err
	}
	st, err := c.Reasoning.AddStep(ctx, tr.ID, client.Thought("look for senior healthcare consultants"), client.Action("search"))
	if err != nil {
		return nil, err
	}
	if _, err := c.Reasoning.RecordToolCall(ctx, tr.ID, st.ID, "consultant_search", client.WithArguments(map[string]any{"industry": "Healthcare"}),
		client.WithResult(map[string]any{"hits": 3}), client.WithDuration(42*time.Millisecond)); err != nil {
		return nil, err
	}
	if _, err := c.Reasoning.CompleteTrace(ctx, tr.ID, client.WithOutcome("3 candidates"), client.WithSuccess(true)); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("reasoning.start_trace(%q, consultant search, user_identifier=%q) + step + tool call + complete", sessSara, u.Sara), map[string]any{"trace_id": tr.ID})

	step("3. Read back with get_preferences_for")
	if res.AllPrefs, err = c.LongTerm.GetPreferencesFor(ctx, u.Sara); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("long_term.get_preferences_for(%q)", u.Sara), brief(res.AllPrefs))
	if res.HealthcarePrefs, err = c.LongTerm.GetPreferencesFor(ctx, u.Sara, client.AppliesToEntity(healthcare)); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("long_term.get_preferences_for(%q, applies_to=Healthcare/Industry)", u.Sara), brief(res.HealthcarePrefs))

	step("4. Supersede preferences over time")
	if res.Junior, err = c.LongTerm.AddPreference(ctx, "consultants", "Junior", client.ForUser(u.Sara)); err != nil {
		return nil, err
	}
	if res.Senior, err = c.LongTerm.AddPreference(ctx, "consultants", "Senior", client.ForUser(u.Sara)); err != nil {
		return nil, err
	}
	// The snapshot instant: after both adds, before the supersede (the seed looks a day back;
	// a fresh graph has no day of history, so the instant is taken here).
	if _, err := c.LongTerm.GetPreferencesFor(ctx, u.Sara); err != nil { // wait until projected
		return nil, err
	}
	res.SnapshotAt = time.Now().UTC()
	time.Sleep(5 * time.Millisecond) // the supersede's event time must lie after the snapshot instant
	if _, err := c.LongTerm.SupersedePreference(ctx, res.Junior.ID, res.Senior.ID); err != nil {
		return nil, err
	}
	say("long_term.supersede_preference(old.id, new.id)", map[string]any{"old": res.Junior.ID, "new": res.Senior.ID})
	if res.ActiveAfter, err = c.LongTerm.GetPreferencesFor(ctx, u.Sara); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("long_term.get_preferences_for(%q)  # active only", u.Sara), brief(res.ActiveAfter))
	if res.History, err = c.LongTerm.GetPreferencesFor(ctx, u.Sara, client.ActiveOnly(false)); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("long_term.get_preferences_for(%q, active_only=False)", u.Sara), brief(res.History))
	if res.Snapshot, err = c.LongTerm.GetPreferencesFor(ctx, u.Sara, client.AsOf(res.SnapshotAt), client.ActiveOnly(false)); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("long_term.get_preferences_for(%q, as_of=%s, active_only=False)", u.Sara, res.SnapshotAt.Format(time.RFC3339Nano)), brief(res.Snapshot))

	step("5. Traces and conversations per user; Liam sees nothing of Sara's")
	if res.SaraTraces, err = c.Reasoning.ListTraces(ctx, u.Sara); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("traces of %q", u.Sara), res.SaraTraces)
	if res.SaraTrace, err = c.Reasoning.GetTrace(ctx, u.Sara, tr.ID); err != nil {
		return nil, err
	}
	if res.SaraMessages, err = c.ShortTerm.GetMessages(ctx, u.Sara, sessSara); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("messages of %q in %s", u.Sara, sessSara), res.SaraMessages.Messages)
	if res.LiamTraces, err = c.Reasoning.ListTraces(ctx, u.Liam); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("traces of %q", u.Liam), res.LiamTraces)
	if res.LiamPrefs, err = c.LongTerm.GetPreferencesFor(ctx, u.Liam, client.ActiveOnly(false)); err != nil {
		return nil, err
	}
	say(fmt.Sprintf("long_term.get_preferences_for(%q, active_only=False)", u.Liam), brief(res.LiamPrefs))
	return &res, nil
}

type briefPref struct {
	ID         string     `json:"id"`
	Preference string     `json:"preference"`
	AppliesTo  []string   `json:"applies_to,omitempty"`
	ValidFrom  *time.Time `json:"valid_from,omitempty"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	Superseded *string    `json:"superseded_by,omitempty"`
}

func brief(ps []client.Preference) []briefPref {
	out := make([]briefPref, 0, len(ps))
	for _, p := range ps {
		b := briefPref{ID: p.ID, Preference: p.Preference, ValidFrom: p.ValidFrom, ValidUntil: p.ValidUntil, Superseded: p.SupersededBy}
		for _, e := range p.AppliesTo {
			b.AppliesTo = append(b.AppliesTo, e.Name+"/"+e.Type)
		}
		out = append(out, b)
	}
	return out
}
