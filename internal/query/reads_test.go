package query

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/events"
)

func TestUser(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, _ := NewReader(d, "")
	f := newFixture(t, d, "user")
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	f.user(map[string]any{"role": "manager", "team": "consulting"}, at)

	u, err := r.User(t.Context(), f.id)
	if err != nil {
		t.Fatal(err)
	}
	if u.Identifier != f.id || u.ID == "" || !u.CreatedAt.Equal(at) || string(u.Attributes) != `{"role":"manager","team":"consulting"}` {
		t.Fatalf("user %+v", u)
	}
	if _, err := r.User(t.Context(), f.id+".unknown"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: err %v, want ErrNotFound", err)
	}
	if _, err := r.User(t.Context(), "bad\nid"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("invalid identifier: err %v, want ErrInvalidArgument", err)
	}
}

func messageIDs(ms []Message) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func reversed(s []string) []string {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func TestConversationsAndMessages(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, _ := NewReader(d, "", WithMaxLimit(50))
	f := newFixture(t, d, "messages")
	ctx := t.Context()
	base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

	// Seven messages; the 3rd and 4th share a timestamp, so only the cursor pages through them
	// without loss.
	offsets := []time.Duration{0, time.Minute, 2 * time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute}
	var all []string
	for i, off := range offsets {
		all = append(all, f.message("s-1", "user", "message "+string(rune('a'+i)), base.Add(off), map[string]any{"i": i}))
	}
	// The ids of equal timestamps are ordered by id.
	if all[2] > all[3] {
		all[2], all[3] = all[3], all[2]
	}
	f.message("s-2", "assistant", "other session", base.Add(10*time.Minute), nil)

	convs, err := r.Conversations(ctx, f.id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(convs) != 2 || convs[0].SessionID != "s-2" || convs[1].SessionID != "s-1" || !convs[1].UpdatedAt.Equal(base.Add(5*time.Minute)) ||
		convs[0].MessageCount != 1 || convs[1].MessageCount != 7 {
		t.Fatalf("conversations %+v", convs)
	}
	if one, _ := r.Conversations(ctx, f.id, 1); len(one) != 1 || one[0].SessionID != "s-2" {
		t.Fatalf("conversations limit 1: %+v", one)
	}

	page, err := r.Messages(ctx, f.id, "s-1", MessageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(page.Messages); !slices.Equal(got, all) || page.NextCursor != "" {
		t.Fatalf("oldest first: %v (cursor %q), want %v", got, page.NextCursor, all)
	}
	m0 := page.Messages[0]
	if m0.Role != "user" || m0.Content != "message a" || string(m0.Metadata) != `{"i":0}` || !m0.Timestamp.Equal(base) {
		t.Fatalf("first message %+v", m0)
	}
	newest, err := r.Messages(ctx, f.id, "s-1", MessageQuery{Order: NewestFirst})
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(newest.Messages); !slices.Equal(got, reversed(all)) {
		t.Fatalf("newest first: %v", got)
	}

	// Paging with the cursor, both orders, two at a time: every message exactly once.
	for _, order := range []Order{OldestFirst, NewestFirst} {
		var got []string
		q := MessageQuery{Order: order, Limit: 2}
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("%s: cursor does not end", order)
			}
			p, err := r.Messages(ctx, f.id, "s-1", q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, messageIDs(p.Messages)...)
			if p.NextCursor == "" {
				break
			}
			q.Cursor = p.NextCursor
		}
		want := all
		if order == NewestFirst {
			want = reversed(all)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s paged: %v, want %v", order, got, want)
		}
	}

	// since/before are exclusive bounds on the timestamp.
	since, before := base.Add(time.Minute), base.Add(4*time.Minute)
	window, err := r.Messages(ctx, f.id, "s-1", MessageQuery{Since: &since, Before: &before})
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(window.Messages); !slices.Equal(got, all[2:5]) {
		t.Fatalf("since/before: %v, want %v", got, all[2:5])
	}
	latest, err := r.Messages(ctx, f.id, "s-1", MessageQuery{Order: NewestFirst, Limit: 3, Before: &before})
	if err != nil {
		t.Fatal(err)
	}
	if got := messageIDs(latest.Messages); !slices.Equal(got, reversed(all[2:5])) || latest.NextCursor == "" {
		t.Fatalf("newest 3 before: %v (cursor %q)", got, latest.NextCursor)
	}

	if none, err := r.Messages(ctx, f.id, "no-such-session", MessageQuery{}); err != nil || len(none.Messages) != 0 {
		t.Fatalf("unknown session: %+v, %v", none, err)
	}
	for _, q := range []MessageQuery{{Limit: 51}, {Limit: -1}, {Order: "up"}, {Cursor: "nope"}} {
		if _, err := r.Messages(ctx, f.id, "s-1", q); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("%+v: err %v, want ErrInvalidArgument", q, err)
		}
	}
}

func TestTraces(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, _ := NewReader(d, "")
	f := newFixture(t, d, "traces")
	ctx := t.Context()
	base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	tool := "search-" + f.owner

	tr := f.trace("s-1", "consultant search", base)
	// Steps written out of order: the read orders them by HAS_STEP order.
	s2 := f.step(tr, 2, "rank them", base.Add(2*time.Second))
	s1 := f.step(tr, 1, "find candidates", base.Add(time.Second))
	c2 := f.toolCall(s1, tool, base.Add(1500*time.Millisecond))
	c1 := f.toolCall(s1, tool, base.Add(1200*time.Millisecond))
	f.complete(tr, "found 2", true, base.Add(3*time.Second))
	other := f.trace("s-2", "another task", base.Add(time.Hour))

	list, err := r.Traces(ctx, f.id, TraceQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != other || list[1].ID != tr || list[1].StepCount != 2 || list[0].StepCount != 0 {
		t.Fatalf("traces %+v", list)
	}
	sess, err := r.Traces(ctx, f.id, TraceQuery{SessionID: "s-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sess) != 1 || sess[0].ID != tr || *sess[0].Outcome != "found 2" || !*sess[0].Success || string(sess[0].Metadata) != `{"source":"test"}` {
		t.Fatalf("session traces %+v", sess)
	}
	if one, _ := r.Traces(ctx, f.id, TraceQuery{Limit: 1}); len(one) != 1 || one[0].ID != other {
		t.Fatalf("limit 1: %+v", one)
	}

	got, err := r.Trace(ctx, f.id, tr)
	if err != nil {
		t.Fatal(err)
	}
	if got.Task != "consultant search" || len(got.Steps) != 2 || got.Steps[0].ID != s1 || got.Steps[1].ID != s2 {
		t.Fatalf("trace %+v", got)
	}
	calls := got.Steps[0].ToolCalls
	if len(calls) != 2 || calls[0].ID != c1 || calls[1].ID != c2 || calls[0].ToolName != tool ||
		string(calls[0].Arguments) != `{"q":"healthcare"}` || string(calls[0].Result) != `["ann","bob"]` || *calls[0].DurationMS != 12 {
		t.Fatalf("tool calls %+v", calls)
	}
	if got.Steps[1].ToolCalls == nil || len(got.Steps[1].ToolCalls) != 0 {
		t.Fatalf("step without tool calls: %+v", got.Steps[1])
	}
	if _, err := r.Trace(ctx, f.id, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown trace: %v", err)
	}
}

// TestIsolation: Liam passes every id of Sara's he could know and gets nothing of hers.
func TestIsolation(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, _ := NewReader(d, "")
	ctx := t.Context()
	s := writeSeedPrefs(t, d, "sara")
	sara := s.f
	base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	sara.message("shared-session", "user", "Find me a healthcare team", base, nil)
	saraTrace := sara.trace("shared-session", "consultant search", base)

	liam := newFixture(t, d, "liam")
	liam.user(map[string]any{"role": "consultant"}, base)
	liam.message("shared-session", "user", "Find me a fintech team", base, nil)
	liam.preference(pref{category: "consultants", text: "Fintech", validFrom: base, recordedAt: base})

	prefs, err := r.PreferencesFor(ctx, liam.id, ActiveOnly(false))
	if err != nil {
		t.Fatal(err)
	}
	if len(prefs) != 1 || prefs[0].Preference != "Fintech" {
		t.Fatalf("liam's preferences %+v", prefs)
	}
	for _, opt := range []PreferenceOption{
		AppliesTo(events.EntityRef{ID: events.EntityID(sara.id, "Healthcare", "Industry")}),
		AppliesTo(events.EntityRef{Name: "Healthcare", Type: "Industry"}),
		AppliesTo(events.EntityRef{Name: "Healthcare"}),
	} {
		got, err := r.PreferencesFor(ctx, liam.id, opt, ActiveOnly(false))
		if err != nil || len(got) != 0 {
			t.Fatalf("liam with sara's entity: %+v, %v", got, err)
		}
	}
	hist, err := r.PreferenceHistory(ctx, liam.id)
	if err != nil || len(hist) != 1 {
		t.Fatalf("liam's history %+v, %v", hist, err)
	}

	msgs, err := r.Messages(ctx, liam.id, "shared-session", MessageQuery{})
	if err != nil || len(msgs.Messages) != 1 || msgs.Messages[0].Content != "Find me a fintech team" {
		t.Fatalf("liam's shared-session messages %+v, %v", msgs, err)
	}
	if _, err := r.Trace(ctx, liam.id, saraTrace); !errors.Is(err, ErrNotFound) {
		t.Fatalf("liam reading sara's trace: %v, want ErrNotFound", err)
	}
	if ts, err := r.Traces(ctx, liam.id, TraceQuery{SessionID: "shared-session"}); err != nil || len(ts) != 0 {
		t.Fatalf("liam's traces %+v, %v", ts, err)
	}
	convs, err := r.Conversations(ctx, liam.id, 0)
	if err != nil || len(convs) != 1 || convs[0].ID == events.ConversationID(sara.id, "shared-session") {
		t.Fatalf("liam's conversations %+v, %v", convs, err)
	}
}
