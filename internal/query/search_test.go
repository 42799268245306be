package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
)

// term returns a word unique to the test: the shared database holds other tests' data, and
// a search for a common word would find it (or, for another user, must not).
func term(t *testing.T) string {
	t.Helper()
	return "zq" + strings.ReplaceAll(events.NewID()[24:], "-", "")
}

func TestSearchWords(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		q     string
		want  []string
		field string // the ArgumentError's field, "" when accepted
	}{
		{q: "healthcare consultants", want: []string{"healthcare", "consultants"}},
		{q: "  a\tb\nc\r\n ", want: []string{"a", "b", "c"}},
		{q: "same same Same", want: []string{"same", "Same"}},
		{q: `owner:liam *  ( AND "x`, want: []string{"owner:liam", "AND", `"x`}},
		{q: "***  ()  -- ", field: "q"},
		{q: "", field: "q"},
		{q: "a\x00b", field: "q"},
		{q: "a\u0085b", field: "q"},
		{q: "\xff", field: "q"},
		{q: strings.Repeat("a", maxQueryRunes+1), field: "q"},
		{q: strings.Repeat("w ", maxQueryWords), want: []string{"w"}},
		{q: strings.TrimSpace(strings.Repeat("w1 w2 ", maxQueryWords/2+1)), want: []string{"w1", "w2"}},
		{q: func() string {
			var b strings.Builder
			for i := range maxQueryWords + 1 {
				fmt.Fprintf(&b, "w%d ", i)
			}
			return b.String()
		}(), field: "q"},
		{q: "日本語 ünïcödé ½", want: []string{"日本語", "ünïcödé"}},
	} {
		got, err := searchWords(c.q)
		var arg *ArgumentError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("searchWords(%q): %v", clip(c.q), err)
		case c.field != "" && (!errors.As(err, &arg) || arg.Field != c.field):
			t.Errorf("searchWords(%q) = %v, %v; want an error naming %s", clip(c.q), got, err, c.field)
		case c.field == "" && !slices.Equal(got, c.want):
			t.Errorf("searchWords(%q) = %q, want %q", clip(c.q), got, c.want)
		}
	}
}

func TestLuceneQuery(t *testing.T) {
	t.Parallel()
	got := luceneQuery("sara_40omg_2Ecom", []string{"preference", "context"}, []string{`a"b`, `c\`, "d*"})
	want := `owner:"sara_40omg_2Ecom"^0 AND (preference:"a\"b" OR context:"a\"b" OR preference:"c\\" OR context:"c\\" OR preference:"d*" OR context:"d*")`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// FuzzLuceneQuery: whatever q is, the Lucene query keeps every word of it inside a quoted
// phrase of a searched field, so no input can add a clause, reach another field (owner) or
// unbalance the query.
func FuzzLuceneQuery(f *testing.F) {
	for _, seed := range []string{"healthcare", `a"b`, `\`, `\"`, `owner:"x"`, "a) OR owner:*", "*", "AND OR NOT", "((", `"\\"`} {
		f.Add(seed)
	}
	fields := []string{"thought", "action"}
	f.Fuzz(func(t *testing.T, q string) {
		words, err := searchWords(q)
		if err != nil {
			var arg *ArgumentError
			if !errors.As(err, &arg) || arg.Field != "q" {
				t.Fatalf("searchWords(%q): %v is not an ArgumentError naming q", q, err)
			}
			return
		}
		lq := luceneQuery("ann-lee", fields, words)
		rest, ok := strings.CutPrefix(lq, `owner:"ann-lee"^0 AND (`)
		if !ok {
			t.Fatalf("%q: owner clause missing: %s", q, lq)
		}
		var phrases []string
		for i := 0; ; i++ {
			f := fields[i%len(fields)]
			if i > 0 {
				if rest, ok = strings.CutPrefix(rest, " OR "); !ok {
					t.Fatalf("%q: want OR between clauses: %s", q, lq)
				}
			}
			if rest, ok = strings.CutPrefix(rest, f+`:"`); !ok {
				t.Fatalf("%q: clause %d does not start with %s:\": %s", q, i, f, lq)
			}
			phrase, after := unquote(t, rest)
			phrases, rest = append(phrases, phrase), after
			if rest == ")" {
				break
			}
		}
		var want []string
		for _, w := range words {
			want = append(want, w, w)
		}
		if !slices.Equal(phrases, want) {
			t.Fatalf("%q: phrases %q, want %q", q, phrases, want)
		}
	})
}

// unquote reads a Lucene phrase up to its closing quote, undoing the escapes.
func unquote(t *testing.T, s string) (phrase, rest string) {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) || (s[i+1] != '\\' && s[i+1] != '"') {
				t.Fatalf("stray escape in %q", s)
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	t.Fatalf("unterminated phrase %q", s)
	return "", ""
}

func hitIDs(hits []MessageHit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func newSearchReader(t *testing.T, d neo4j.DriverWithContext) *Reader {
	t.Helper()
	r, err := NewReader(d, "", WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSearchMessages: a user finds their own messages by any word, best match first, equal
// scores by id; another user's identical text is never found; session_id and limit narrow.
func TestSearchMessages(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r := newSearchReader(t, d)
	sara, liam := newFixture(t, d, "sara"), newFixture(t, d, "liam")
	w, other := term(t), term(t)
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	// The word twice in a short text scores best; equal texts score equal.
	best := sara.message("s1", "user", w+" "+w, t0, nil)
	tieA := sara.message("s1", "assistant", w+" and more text", t0, map[string]any{"k": 1})
	tieB := sara.message("s2", "user", w+" and more text", t0.Add(time.Minute), nil)
	sara.message("s2", "user", other+" nothing else", t0, nil)
	liamsOwn := liam.message("s1", "user", w+" "+w, t0, nil) // sara's text and session id
	ties := []string{tieA, tieB}
	slices.Sort(ties)

	hits, err := r.SearchMessages(t.Context(), sara.id, MessageSearch{Text: w})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hitIDs(hits), append([]string{best}, ties...); !slices.Equal(got, want) {
		t.Fatalf("sara's search: %v, want %v", got, want)
	}
	if !(hits[0].Score > hits[1].Score) || hits[1].Score != hits[2].Score {
		t.Errorf("scores %v, %v, %v: want the first higher, the ties equal", hits[0].Score, hits[1].Score, hits[2].Score)
	}
	h := hits[slices.Index(hitIDs(hits), tieA)]
	if h.SessionID != "s1" || h.Role != "assistant" || h.Content != w+" and more text" || h.Timestamp == nil ||
		!h.Timestamp.Equal(t0) || string(h.Metadata) != `{"k":1}` || h.RecordedAt == nil {
		t.Errorf("hit fields: %+v", h)
	}

	// Any word: the other term finds its own message too, ranked after.
	hits, err = r.SearchMessages(t.Context(), sara.id, MessageSearch{Text: other + " " + w, Limit: 50})
	if err != nil || len(hits) != 4 {
		t.Fatalf("two words: %v %v", hitIDs(hits), err)
	}
	hits, err = r.SearchMessages(t.Context(), sara.id, MessageSearch{Text: w, SessionID: "s2"})
	if err != nil || !slices.Equal(hitIDs(hits), []string{tieB}) {
		t.Errorf("session s2: %v %v", hitIDs(hits), err)
	}
	hits, err = r.SearchMessages(t.Context(), sara.id, MessageSearch{Text: w, Limit: 1})
	if err != nil || !slices.Equal(hitIDs(hits), []string{best}) {
		t.Errorf("limit 1: %v %v", hitIDs(hits), err)
	}
	hits, err = r.SearchMessages(t.Context(), liam.id, MessageSearch{Text: w})
	if err != nil || !slices.Equal(hitIDs(hits), []string{liamsOwn}) {
		t.Errorf("liam's search: %v %v, want only his own", hitIDs(hits), err)
	}
	for _, id := range []string{"nobody-" + w + "@test.engram", ""} {
		if hits, err := r.SearchMessages(t.Context(), id, MessageSearch{Text: w}); err != nil || len(hits) != 0 {
			t.Errorf("search of %q: %v %v, want nothing", id, hitIDs(hits), err)
		}
	}
	for _, q := range []MessageSearch{{Text: ""}, {Text: "*"}, {Text: w, Limit: 51}, {Text: w, Limit: -1}, {Text: w, SessionID: "a\x01"}} {
		if _, err := r.SearchMessages(t.Context(), sara.id, q); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: %v, want an invalid argument", q, err)
		}
	}
}

// TestSearchEscaping: Lucene's syntax in q is text. Queries made of the test's word and
// syntax find exactly what the word alone finds (the user's messages hold none of the
// syntax's words), never another user's messages and never all of the user's.
func TestSearchEscaping(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r := newSearchReader(t, d)
	sara, liam := newFixture(t, d, "sara"), newFixture(t, d, "liam")
	w := term(t)
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	hit := sara.message("s", "user", "about "+w+" today", t0, nil)
	sara.message("s", "user", "unrelated words only", t0, nil)
	liam.message("s", "user", "about "+w+" today", t0, nil)
	liam.message("s", "user", "owner content sara liam", t0, nil)

	for _, q := range []string{
		w, w + " *", w + " ?", w + ` "`, w + ` ")`, "(" + w, w + " )", w + " (((", w + ` \`, w + ` \"`, w + "~", w + " ^9", w + "^",
		w + " AND", w + " AND NOT", w + " OR", "NOT " + w, w + " && ||", w + " !", w + " +", w + " -",
		w + " {", w + " [* TO *]", w + " /.*/", w + " :", w + ` owner:"` + liam.owner + `"`, w + " owner:" + liam.owner,
		w + ` content:*`, `"` + w + `"`, w + ` ") OR owner:* OR ("`, w + ` \") OR (owner:*`,
	} {
		hits, err := r.SearchMessages(t.Context(), sara.id, MessageSearch{Text: q, Limit: 50})
		if err != nil {
			t.Errorf("%q: %v", q, err)
			continue
		}
		if got := hitIDs(hits); !slices.Equal(got, []string{hit}) {
			t.Errorf("%q found %v, want only %s", q, got, hit)
		}
	}
	// Syntax alone has no word: a 400, not everything.
	for _, q := range []string{"*", "* ?", `"`, "()", `\`, ":", "+-!", "/.*/"} {
		if _, err := r.SearchMessages(t.Context(), sara.id, MessageSearch{Text: q}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%q: %v, want an invalid argument", q, err)
		}
	}
	// Should a word ever analyze to nothing, the Lucene query would require the owner only:
	// its boost 0 makes such matches score 0, and the read drops them.
	res, err := neo4j.ExecuteQuery(t.Context(), d, readOptions+searchMessagesCypher, map[string]any{
		"owner": sara.owner, "lucene": `owner:"` + sara.owner + `"^0 AND (content:"***")`, "session_id": nil, "limit": int64(10),
	}, neo4j.EagerResultTransformer)
	if err != nil || len(res.Records) != 0 {
		t.Errorf("owner clause alone: %d hits, %v; want none", len(res.Records), err)
	}
}

// TestSearchOwnersTheAnalyzerConfuses: the analyzer lower-cases tokens and splits them at '-',
// so the Lucene owner phrase of ann-lee also matches Ann-Lee's and bob-ann-lee's nodes; the
// exact owner check keeps each user to their own.
func TestSearchOwnersTheAnalyzerConfuses(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r := newSearchReader(t, d)
	w := term(t)
	base := "ann-" + w + "@test.engram"
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	own := map[string]string{}
	for _, id := range []string{base, strings.ToUpper(base[:1]) + base[1:], "bob-" + base} {
		f := newFixtureFor(t, d, id)
		own[id] = f.message("s", "user", w, t0, nil)
	}
	for id, msg := range own {
		hits, err := r.SearchMessages(t.Context(), id, MessageSearch{Text: w, Limit: 50})
		if err != nil || !slices.Equal(hitIDs(hits), []string{msg}) {
			t.Errorf("%s found %v (%v), want only %s", id, hitIDs(hits), err, msg)
		}
	}
}

// newFixtureFor is newFixture for an identifier chosen by the test (unique to it).
func newFixtureFor(t *testing.T, d neo4j.DriverWithContext, id string) *fixture {
	t.Helper()
	owner, err := events.TenantToken(id)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, d: d, id: id, owner: owner, loc: offsetZ}
	t.Cleanup(f.cleanup)
	return f
}

// TestSearchPreferences: preference and context are searched, superseded preferences are
// found with what superseded them, category narrows, another user's are never found.
func TestSearchPreferences(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r := newSearchReader(t, d)
	sara, liam := newFixture(t, d, "sara"), newFixture(t, d, "liam")
	w := term(t)
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	old := sara.preference(pref{category: "consultants", text: "junior " + w, validFrom: t0, recordedAt: t0,
		appliesTo: []events.EntityRef{{Name: "Healthcare", Type: "Industry"}}})
	cur := sara.preference(pref{category: "consultants", text: "senior " + w + " " + w, validFrom: t0.Add(time.Hour), recordedAt: t0.Add(time.Hour)})
	sara.supersede(old, cur, t0.Add(time.Hour), t0.Add(2*time.Hour))
	ctx := sara.preference(pref{category: "meetings", text: "mornings", context: "when " + w + " is on", validFrom: t0, recordedAt: t0})
	liam.preference(pref{category: "consultants", text: "senior " + w + " " + w, validFrom: t0, recordedAt: t0})

	hits, err := r.SearchPreferences(t.Context(), sara.id, PreferenceSearch{Text: w})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range hits {
		ids = append(ids, h.ID)
	}
	if len(ids) != 3 || ids[0] != cur || !slices.Contains(ids, old) || !slices.Contains(ids, ctx) {
		t.Fatalf("sara's search: %v, want %s first, then %s and %s", ids, cur, old, ctx)
	}
	for i := 1; i < len(hits); i++ {
		if a, b := hits[i-1], hits[i]; a.Score < b.Score || (a.Score == b.Score && a.ID > b.ID) {
			t.Errorf("not by score, then id: %v", ids)
		}
	}
	h := hits[slices.Index(ids, old)]
	if h.SupersededBy == nil || *h.SupersededBy != cur || h.ValidUntil == nil || !h.ValidUntil.Equal(t0.Add(time.Hour)) ||
		len(h.AppliesTo) != 1 || h.AppliesTo[0].Name != "Healthcare" || h.Category != "consultants" || h.Score <= 0 {
		t.Errorf("superseded hit: %+v", h)
	}
	if h := hits[0]; !slices.Equal(h.Supersedes, []string{old}) || h.SupersededBy != nil || h.Confidence != 1 {
		t.Errorf("current hit: %+v", h)
	}
	hits, err = r.SearchPreferences(t.Context(), sara.id, PreferenceSearch{Text: w, Category: "meetings"})
	if err != nil || len(hits) != 1 || hits[0].ID != ctx || hits[0].Context == nil {
		t.Errorf("category meetings: %+v %v", hits, err)
	}
	hits, err = r.SearchPreferences(t.Context(), liam.id, PreferenceSearch{Text: w})
	if err != nil || len(hits) != 1 || hits[0].ID == cur {
		t.Errorf("liam's search: %+v %v, want only his own", hits, err)
	}
}

// TestSearchEntities: name and description are searched, type narrows (exact case).
func TestSearchEntities(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r := newSearchReader(t, d)
	sara, liam := newFixture(t, d, "sara"), newFixture(t, d, "liam")
	w := term(t)
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	sara.preference(pref{category: "c", text: "p", validFrom: t0, recordedAt: t0,
		appliesTo: []events.EntityRef{{Name: w + " Health", Type: "Industry"}, {Name: w + " Clinic", Type: "Organization"}, {Name: "Plain", Type: "Industry"}}})
	liam.preference(pref{category: "c", text: "p", validFrom: t0, recordedAt: t0,
		appliesTo: []events.EntityRef{{Name: w + " Health", Type: "Industry"}}})
	plain := events.EntityID(sara.id, "Plain", "Industry")
	sara.write(`MATCH (e:Entity {id: $id}) WHERE e.owner = $owner SET e.description = $description`,
		map[string]any{"id": plain, "description": "a " + w + " described"})

	hits, err := r.SearchEntities(t.Context(), sara.id, EntitySearch{Text: w})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{events.EntityID(sara.id, w+" Health", "Industry"), events.EntityID(sara.id, w+" Clinic", "Organization"), plain}
	var ids []string
	for _, h := range hits {
		ids = append(ids, h.ID)
	}
	if len(ids) != 3 || !slices.Contains(ids, want[0]) || !slices.Contains(ids, want[1]) || !slices.Contains(ids, want[2]) {
		t.Fatalf("sara's search: %v, want %v", ids, want)
	}
	if h := hits[slices.Index(ids, plain)]; h.Description == nil || *h.Description != "a "+w+" described" || h.Name != "Plain" || h.CreatedAt == nil {
		t.Errorf("described hit: %+v", h)
	}
	hits, err = r.SearchEntities(t.Context(), sara.id, EntitySearch{Text: w, Type: "Industry"})
	if err != nil || len(hits) != 2 || slices.Contains([]string{hits[0].ID, hits[1].ID}, want[1]) {
		t.Errorf("type Industry: %+v %v", hits, err)
	}
	if hits, err = r.SearchEntities(t.Context(), sara.id, EntitySearch{Text: w, Type: "industry"}); err != nil || len(hits) != 0 {
		t.Errorf("type industry (other case): %+v %v", hits, err)
	}
	if hits, err = r.SearchEntities(t.Context(), liam.id, EntitySearch{Text: w}); err != nil || len(hits) != 1 ||
		hits[0].ID != events.EntityID(liam.id, w+" Health", "Industry") {
		t.Errorf("liam's search: %+v %v, want only his own", hits, err)
	}
}

// TestSearchSteps: thought, action and observation are searched; each hit carries its trace
// and tool calls; success_only keeps the steps of successful traces.
func TestSearchSteps(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r := newSearchReader(t, d)
	sara, liam := newFixture(t, d, "sara"), newFixture(t, d, "liam")
	w := term(t)
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	won := sara.trace("s1", "find consultants", t0)
	wonStep := sara.step(won, 1, "look for "+w, t0)
	call := sara.toolCall(wonStep, "search-"+w, t0)
	sara.complete(won, "found two", true, t0.Add(time.Minute))
	open := sara.trace("s2", "book rooms", t0)
	openStep := sara.step(open, 1, "think about "+w+" "+w, t0)
	sara.step(open, 2, "unrelated", t0)
	lt := liam.trace("s1", "find consultants", t0)
	liam.step(lt, 1, "look for "+w, t0)

	hits, err := r.SearchSteps(t.Context(), sara.id, StepSearch{Text: w})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 2 || hits[0].ID != openStep || hits[1].ID != wonStep {
		t.Fatalf("sara's search: %+v, want %s then %s", hits, openStep, wonStep)
	}
	h := hits[1]
	if h.TraceID != won || h.Task != "find consultants" || h.SessionID != "s1" || h.Outcome == nil || *h.Outcome != "found two" ||
		h.Success == nil || !*h.Success || h.Order == nil || *h.Order != 1 || len(h.ToolCalls) != 1 || h.ToolCalls[0].ID != call ||
		string(h.ToolCalls[0].Arguments) != `{"q":"healthcare"}` {
		t.Errorf("hit of the successful trace: %+v", h)
	}
	if h := hits[0]; h.Success != nil || h.Outcome != nil || len(h.ToolCalls) != 0 || h.ToolCalls == nil {
		t.Errorf("hit of the open trace: %+v", h)
	}
	hits, err = r.SearchSteps(t.Context(), sara.id, StepSearch{Text: w, SuccessOnly: true})
	if err != nil || len(hits) != 1 || hits[0].ID != wonStep {
		t.Errorf("success only: %+v %v", hits, err)
	}
	if hits, err = r.SearchSteps(t.Context(), liam.id, StepSearch{Text: w}); err != nil || len(hits) != 1 || hits[0].TraceID != lt {
		t.Errorf("liam's search: %+v %v, want only his own", hits, err)
	}
}

// TestSearchAfterErasure: once a user's nodes are deleted (what the projector does on
// user_erased: every node with the user's owner), no search finds anything of theirs, and the
// other user's identical text is still found.
func TestSearchAfterErasure(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r := newSearchReader(t, d)
	sara, liam := newFixture(t, d, "sara"), newFixture(t, d, "liam")
	w := term(t)
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for _, f := range []*fixture{sara, liam} {
		f.message("s", "user", w, t0, nil)
		f.preference(pref{category: "c", text: w, validFrom: t0, recordedAt: t0, appliesTo: []events.EntityRef{{Name: w, Type: "T"}}})
		f.step(f.trace("s", "task", t0), 1, w, t0)
	}
	counts := func(f *fixture) [4]int {
		t.Helper()
		m, err1 := r.SearchMessages(t.Context(), f.id, MessageSearch{Text: w})
		p, err2 := r.SearchPreferences(t.Context(), f.id, PreferenceSearch{Text: w})
		e, err3 := r.SearchEntities(t.Context(), f.id, EntitySearch{Text: w})
		s, err4 := r.SearchSteps(t.Context(), f.id, StepSearch{Text: w})
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		return [4]int{len(m), len(p), len(e), len(s)}
	}
	if got := counts(sara); got != [4]int{1, 1, 1, 1} {
		t.Fatalf("before the erasure sara finds %v", got)
	}
	sara.cleanup()
	res, err := neo4j.ExecuteQuery(t.Context(), d, "MATCH (n {owner: $owner}) RETURN count(n)", map[string]any{"owner": sara.owner}, neo4j.EagerResultTransformer)
	if err != nil || res.Records[0].Values[0].(int64) != 0 {
		t.Fatalf("sara's nodes left after the erasure: %v %v", res.Records, err)
	}
	if got := counts(sara); got != [4]int{} {
		t.Errorf("after the erasure sara finds %v, want nothing", got)
	}
	if got := counts(liam); got != [4]int{1, 1, 1, 1} {
		t.Errorf("after sara's erasure liam finds %v, want his own", got)
	}
}

// TestSearchIsBoundedByOwner measures the choice docs/query.md explains: on a graph where many
// users' messages match, filtering the index's answer by owner afterwards reads every
// tenant's matches; the owner in the Lucene query reads the user's own only.
func TestSearchIsBoundedByOwner(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	const users, each = 40, 5
	w := term(t)
	var fs []*fixture
	rows := make([]map[string]any, 0, users)
	for i := range users {
		f := newFixture(t, d, "many"+strconv.Itoa(i))
		fs = append(fs, f)
		rows = append(rows, map[string]any{"owner": f.owner, "identifier": f.id, "conversation_id": events.ConversationID(f.id, "s")})
	}
	if _, err := neo4j.ExecuteQuery(t.Context(), d, `
UNWIND $rows AS row
CREATE (c:Conversation {id: row.conversation_id, session_id: 's', user_identifier: row.identifier, owner: row.owner})
WITH c, row
UNWIND range(1, $each) AS i
CREATE (c)-[:HAS_MESSAGE]->(:Message {id: row.owner + '-' + toString(i), role: 'user', content: $content + ' number ' + toString(i), owner: row.owner})
`, map[string]any{"rows": rows, "each": each, "content": w}, neo4j.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
	// What the index answers: one row for each node matched.
	answered := func(lucene string) int64 {
		t.Helper()
		res, err := neo4j.ExecuteQuery(t.Context(), d, graph.AwaitFullText+" CALL db.index.fulltext.queryNodes('message_search', $lucene) YIELD node RETURN count(node)",
			map[string]any{"lucene": lucene}, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
		return res.Records[0].Values[0].(int64)
	}
	profile := func(cypher string, params map[string]any) planNode {
		t.Helper()
		params["owner"], params["session_id"], params["limit"] = fs[0].owner, nil, int64(10)
		res, err := neo4j.ExecuteQuery(t.Context(), d, "PROFILE "+readOptions+cypher, params, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Records) != each {
			t.Fatalf("%d hits, want %d", len(res.Records), each)
		}
		return fromProfile(res.Summary.Profile())
	}
	// The alternative: the index answers every tenant's matches, filtered by owner after.
	textOnly := `content:"` + w + `"`
	filterAfter := strings.Replace(searchMessagesCypher, "$lucene", "$text_only", 1)
	withOwner := luceneQuery(fs[0].owner, messageFields, []string{w})
	if n := answered(textOnly); n != users*each {
		t.Errorf("the text alone: the index answered %d nodes, want every tenant's %d", n, users*each)
	}
	if n := answered(withOwner); n != each {
		t.Errorf("owner in the Lucene query: the index answered %d nodes, want the user's %d", n, each)
	}
	after := profile(filterAfter, map[string]any{"text_only": textOnly})
	chosen := profile(searchMessagesCypher, map[string]any{"lucene": withOwner})
	var ab, cb strings.Builder
	after.render(&ab, 0, true)
	chosen.render(&cb, 0, true)
	if after.totalHits() <= chosen.totalHits() {
		t.Errorf("filtering after the index costs %d db hits, the owner in the query %d: want more", after.totalHits(), chosen.totalHits())
	}
	t.Logf("filter after the index (%d users × %d matching messages), %d db hits:\n%s", users, each, after.totalHits(), ab.String())
	t.Logf("owner in the Lucene query, %d db hits:\n%s", chosen.totalHits(), cb.String())
}

// totalHits sums the db hits of the whole plan.
func (n planNode) totalHits() int64 {
	sum := n.dbHits
	for _, c := range n.children {
		sum += c.totalHits()
	}
	return sum
}

// TestSearchHTTP: the routes answer the Reader's hits, with the user's consistency token as
// other reads, and 400 naming the parameter for bad input.
func TestSearchHTTP(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	srv := newServer(t, d)
	f := newFixture(t, d, "http")
	w := term(t)
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	msg := f.message("s", "user", w, t0, nil)
	p := f.preference(pref{category: "c", text: w, validFrom: t0, recordedAt: t0, appliesTo: []events.EntityRef{{Name: w, Type: "T"}}})
	step := f.step(f.trace("s", "task", t0), 1, w, t0)
	u := userURL(srv.url, f.id) + "/search"
	q := "?q=" + url.QueryEscape(w+` "*`)

	var mb struct{ Messages []MessageHit }
	if code, body := get(t, u+"/messages"+q+"&session_id=s&limit=5", nil, &mb); code != 200 || len(mb.Messages) != 1 ||
		mb.Messages[0].ID != msg || mb.Messages[0].Score <= 0 || !strings.Contains(string(body), `"session_id":"s"`) {
		t.Errorf("messages: %d %s", code, body)
	}
	var pb struct{ Preferences []PreferenceHit }
	if code, body := get(t, u+"/preferences"+q+"&category=c", nil, &pb); code != 200 || len(pb.Preferences) != 1 || pb.Preferences[0].ID != p {
		t.Errorf("preferences: %d %s", code, body)
	}
	var eb struct{ Entities []EntityHit }
	if code, body := get(t, u+"/entities"+q+"&type=T", nil, &eb); code != 200 || len(eb.Entities) != 1 || eb.Entities[0].Name != w {
		t.Errorf("entities: %d %s", code, body)
	}
	var sb struct{ Steps []StepHit }
	if code, body := get(t, u+"/steps"+q+"&success_only=false", nil, &sb); code != 200 || len(sb.Steps) != 1 || sb.Steps[0].ID != step {
		t.Errorf("steps: %d %s", code, body)
	}
	// Every field is present, null or [] when empty, as in the other reads.
	if _, body := get(t, u+"/steps"+q, nil, nil); !strings.Contains(string(body), `"outcome":null`) || !strings.Contains(string(body), `"tool_calls":[]`) {
		t.Errorf("steps body: %s", body)
	}
	if _, body := get(t, u+"/messages?q=nothing"+w, nil, nil); string(body) != `{"messages":[]}`+"\n" {
		t.Errorf("no hits: %q", body)
	}

	tok, _ := events.TenantToken(f.id)
	partition := events.Partition(tok, natsdeploy.Partitions)
	name := srv.group + "-p" + strconv.Itoa(partition)
	if code, body := get(t, u+"/messages"+q+"&consistency=7", nil, nil); code != http.StatusGatewayTimeout || !strings.Contains(string(body), name) {
		t.Errorf("behind the token: %d %s", code, body)
	}
	setCheckpoint(t, d, name, partition, 7)
	if code, body := get(t, u+"/preferences"+q, http.Header{ConsistencyHeader: {"7"}}, &pb); code != 200 || len(pb.Preferences) != 1 {
		t.Errorf("token covered: %d %s", code, body)
	}

	for _, c := range []struct{ target, field string }{
		{"/messages", "q"},
		{"/messages?q=", "q"},
		{"/messages?q=%2A%20%28", "q"},
		{"/messages?q=" + strings.Repeat("a", maxQueryRunes+1), "q"},
		{"/messages?q=a%00", "q"},
		{"/messages?q=a&q=b", "q"},
		{"/messages?q=a&limit=0", "limit"},
		{"/preferences?q=a&limit=51", "limit"},
		{"/messages?q=a&session_id=", "session_id"},
		{"/messages?q=a&category=c", "category"},
		{"/preferences?q=a&category=" + strings.Repeat("c", 257), "category"},
		{"/entities?q=a&type=a%01", "type"},
		{"/entities?q=a&session_id=s", "session_id"},
		{"/steps?q=a&success_only=yes", "success_only"},
		{"/steps?q=a&success_only=", "success_only"},
		{"/steps?q=a&consistency=x", "consistency"},
	} {
		code, body := get(t, u+c.target, nil, nil)
		var p app.Problem
		if err := json.Unmarshal(body, &p); err != nil || code != http.StatusBadRequest || p.Field != c.field || p.Error == "" {
			t.Errorf("%s: %d %s, want 400 naming %s", c.target, code, body, c.field)
		}
	}
}

// TestSearchSharedTenant: the shared tenant's search ("" in the Reader) finds the shared
// tenant's nodes, and a user's search never does.
func TestSearchSharedTenant(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r := newSearchReader(t, d)
	sara := newFixture(t, d, "sara")
	w := term(t)
	session := "shared-" + w
	id := events.NewID()
	if _, err := neo4j.ExecuteQuery(t.Context(), d, `
CREATE (c:Conversation {id: $conversation_id, session_id: $session, owner: $owner})
CREATE (c)-[:HAS_MESSAGE]->(:Message {id: $id, role: 'user', content: $content, owner: $owner})
`, map[string]any{"conversation_id": events.ConversationID("", session), "session": session, "owner": events.SharedTenantToken,
		"id": id, "content": "shared " + w}, neo4j.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = neo4j.ExecuteQuery(context.Background(), d, "MATCH (c:Conversation {id: $id}) OPTIONAL MATCH (c)-[:HAS_MESSAGE]->(m) DETACH DELETE c, m",
			map[string]any{"id": events.ConversationID("", session)}, neo4j.EagerResultTransformer)
	})
	sara.message("s", "user", "sara's "+w, time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC), nil)
	hits, err := r.SearchMessages(t.Context(), "", MessageSearch{Text: w, SessionID: session})
	if err != nil || !slices.Equal(hitIDs(hits), []string{id}) || hits[0].SessionID != session {
		t.Errorf("the shared tenant's search: %+v %v, want %s", hits, err, id)
	}
	if hits, err := r.SearchMessages(t.Context(), sara.id, MessageSearch{Text: "shared " + w}); err != nil || len(hits) != 1 || hits[0].ID == id {
		t.Errorf("sara's search: %+v %v, want only her own", hits, err)
	}
}
