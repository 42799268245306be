package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// Strings the fidelity checks write and read back.
const (
	// fidelityUnicode: CJK, emoji with a skin tone, a ZWJ family, a flag, a keycap, combining
	// marks (decomposed é and a stack of marks, never to be normalised), right-to-left Arabic
	// and Hebrew with direction marks and an embedding, characters outside the BMP, zero-width
	// and format characters, a BOM inside the text, U+2028/U+2029.
	fidelityUnicode = "日本語 中文 한국어 — emoji 🙂👍🏽 family 👨‍👩‍👧‍👦 flag 🇯🇵 keycap 1️⃣ " +
		"café vs cafe\u0301, Z\u0351\u0308\u036b\u0357 " +
		"RTL: مرحبا بالعالم \u200f שלום עולם \u202bembedded\u202c \u200e " +
		"astral: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀 🀄 " +
		"zero-width:\u200b\u200c\u200d\u2060 bom:\ufeff sep:\u2028\u2029 end"
	// fidelityEscapes: what JSON must escape, and what a naive encoder mangles.
	fidelityEscapes = "line 1\nline 2\r\nline 3\rtab\there \"double\" 'single' `back` " +
		"back\\slash \\n (a literal backslash-n) \\\\ \\u0041 (a literal escape) / slash " +
		"</script> <b>&amp;</b> {\"json\": [1, 2]} %s %d %% $1 ${x}"
)

// fidelityControls is every control character a message's content may hold: C0 (NUL
// included), DEL and C1. The API refuses them in identifiers, never in content
// (docs/events.md).
func fidelityControls() string {
	var b strings.Builder
	b.WriteString("controls:")
	for r := rune(0); r < 0x20; r++ {
		b.WriteRune(r)
	}
	b.WriteRune(0x7f)
	for r := rune(0x80); r < 0xa0; r++ {
		b.WriteRune(r)
	}
	b.WriteString(":end")
	return b.String()
}

// repeatRunes is s repeated and cut to exactly n code points.
func repeatRunes(s string, n int) string {
	r := []rune(strings.Repeat(s, n/utf8.RuneCountInString(s)+1))
	return string(r[:n])
}

// firstDiff says where two strings first differ, for a failure message.
func firstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-16)
	return fmt.Sprintf("len %d, want %d; first difference at byte %d: got %q, want %q", len(got), len(want), i,
		got[lo:min(len(got), i+16)], want[lo:min(len(want), i+16)])
}

// jsonValue decodes JSON keeping numbers as written (json.Number), to compare values exactly.
func jsonValue(t *testing.T, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// sameJSON checks that got holds exactly the value want marshals to: the same members,
// strings byte for byte, numbers as written, nulls, booleans and arrays in order.
func sameJSON(t *testing.T, what string, got json.RawMessage, want any) {
	t.Helper()
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 {
		t.Errorf("%s: nothing read back, want %s", what, w)
		return
	}
	if g, wv := jsonValue(t, got), jsonValue(t, w); !reflect.DeepEqual(g, wv) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, w)
	}
}

// fidelityMetadata is nested metadata of every JSON kind: the kit's nested object, numbers
// (integers, negative, fractions, an exponent, negative zero), booleans, nulls, arrays
// (empty, mixed, nested), an empty object, a deep object, and Unicode and escapes in keys
// and values. Its numbers are ones a float64 holds exactly, spelled as Go spells a float64:
// others (9007199254740993, 12345678901234567890, 1.50, 3.0, 6.02214076E+23) are not read
// back as written, since the projector decodes them as float64 before storing them.
func fidelityMetadata() map[string]any {
	deep := map[string]any{"leaf": "bottom", "n": json.Number("20")}
	for i := 19; i >= 1; i-- {
		deep = map[string]any{"level": json.Number(fmt.Sprint(i)), "next": deep}
	}
	return map[string]any{
		"user":         map[string]any{"name": "Alice", "preferences": map[string]any{"theme": "dark", "notifications": true, "volume": json.Number("0.75")}},
		"score":        json.Number("0.95"),
		"count":        json.Number("42"),
		"negative":     json.Number("-17"),
		"tiny":         json.Number("1e-300"),
		"exp":          json.Number("6.02214076e+23"),
		"large":        json.Number("9007199254740992"),
		"fraction":     json.Number("-12.625"),
		"minus_zero":   json.Number("-0"),
		"yes":          true,
		"no":           false,
		"nothing":      nil,
		"empty_object": map[string]any{},
		"empty_array":  []any{},
		"mixed":        []any{json.Number("1"), "two", json.Number("3.5"), true, false, nil, map[string]any{"k": "v"}, []any{[]any{json.Number("1")}, []any{}}},
		"deep":         deep,
		"unicode 日本 🙂": fidelityUnicode,
		"esc\"ape\\\n": fidelityEscapes,
		"":             "an empty key",
	}
}

// TestFidelity writes content, metadata, preferences, steps and tool calls through the whole
// stack and checks that what is read back is what was written, byte for byte and value for
// value, and that what docs/events.md refuses is a 400 that stores nothing.
func TestFidelity(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	user := testenv.User(t, "fidelity")
	tool := "fidelity-tool-" + events.NewID()[24:]
	d := testenv.Neo4j(t)
	t.Cleanup(func() {
		testenv.Cleanup(t, d, user)
		if _, err := neo4j.ExecuteQuery(context.Background(), d, "MATCH (t:Tool {name: $name}) DETACH DELETE t",
			map[string]any{"name": tool}, neo4j.EagerResultTransformer); err != nil {
			t.Errorf("cleanup tool: %v", err)
		}
	})
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.Users.UpsertUser(ctx, user); err != nil {
		t.Fatal(err)
	}

	t.Run("messages", func(t *testing.T) { fidelityMessages(t, c, user) })
	t.Run("refused", func(t *testing.T) { fidelityRefused(t, c, stack, user) })
	t.Run("preferences", func(t *testing.T) { fidelityPreferences(t, c, user) })
	t.Run("trace", func(t *testing.T) { fidelityTrace(t, c, user, tool) })
}

// fidelityMessages: SCN-B-034, -035, -036, -038, -049.
func fidelityMessages(t *testing.T, c *client.Client, user string) {
	ctx := t.Context()
	type msg struct {
		name, session, role, content string
		metadata                     map[string]any
	}
	const session = "fidelity"
	// A session id of Unicode, spaces and characters a URL path must escape.
	const uniSession = "sessão 日本 🙂 a/b?c#d%20e"
	long := repeatRunes("abcdefghij", 10_000)
	longMixed := repeatRunes("aé漢🙂\u0301\n\"\\", 10_000)
	msgs := []msg{
		{"10 000 ASCII characters", session, "user", long, nil},
		{"10 000 mixed characters", session, "assistant", longMixed, map[string]any{"kind": "long"}},
		{"Unicode", session, "user", fidelityUnicode, map[string]any{"text": fidelityUnicode}},
		{"escapes", session, "assistant", fidelityEscapes, map[string]any{"text": fidelityEscapes}},
		{"control characters", session, "tool", fidelityControls(), map[string]any{"text": fidelityControls()}},
		{"nested metadata", session, "system", "nested", fidelityMetadata()},
		{"white space only", session, "user", " \t\n ", nil},
		{"Unicode in a Unicode session", uniSession, "user", fidelityUnicode + fidelityEscapes, fidelityMetadata()},
	}
	if n := utf8.RuneCountInString(long); n != 10_000 || len(long) != 10_000 {
		t.Fatalf("long content: %d characters", n)
	}
	if n := utf8.RuneCountInString(longMixed); n != 10_000 {
		t.Fatalf("mixed long content: %d characters", n)
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		opts := []client.WriteOption{client.ForUser(user)}
		if m.metadata != nil {
			opts = append(opts, client.WithMetadata(m.metadata))
		}
		w, err := c.ShortTerm.AddMessage(ctx, m.session, m.role, m.content, opts...)
		if err != nil {
			t.Fatalf("write %s: %v", m.name, err)
		}
		ids[i] = w.ID
	}
	read := map[string]client.Message{}
	for _, s := range []string{session, uniSession} {
		page, err := c.ShortTerm.GetMessages(ctx, user, s, client.Limit(100))
		if err != nil {
			t.Fatalf("read session %q: %v", s, err)
		}
		for _, m := range page.Messages {
			if m.SessionID != "" && m.SessionID != s {
				t.Errorf("message %s of session %q read back in session %q", m.ID, s, m.SessionID)
			}
			read[m.ID] = m
		}
	}
	if len(read) != len(msgs) {
		t.Errorf("%d messages read back, want %d", len(read), len(msgs))
	}
	for i, m := range msgs {
		got, ok := read[ids[i]]
		if !ok {
			t.Errorf("%s: message %s not read back", m.name, ids[i])
			continue
		}
		if got.Content != m.content {
			t.Errorf("%s: content %s", m.name, firstDiff(got.Content, m.content))
		}
		if got.Role != m.role {
			t.Errorf("%s: role %q, want %q", m.name, got.Role, m.role)
		}
		want := m.metadata
		if want == nil {
			want = map[string]any{}
		}
		sameJSON(t, m.name+": metadata", got.Metadata, want)
	}
	// The conversation's order is the order of writing.
	page, err := c.ShortTerm.GetMessages(ctx, user, session, client.Limit(100))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range page.Messages {
		order = append(order, m.ID)
	}
	if want := ids[:len(ids)-1]; !reflect.DeepEqual(order, want) {
		t.Errorf("session order %v, want %v", order, want)
	}
}

// postRaw sends body as it is to the ingestor and answers the status and the problem's field.
func postRaw(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Error string `json:"error"`
		Field string `json:"field"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&p)
	if resp.StatusCode >= 300 {
		t.Logf("%s: %d field %q: %s", url, resp.StatusCode, p.Field, p.Error)
	}
	return resp.StatusCode, p.Field
}

// fidelityRefused: what docs/events.md refuses is refused at the door, with a 400 naming
// the field, and nothing of it is stored.
func fidelityRefused(t *testing.T, c *client.Client, stack *testenv.Stack, user string) {
	ctx := t.Context()
	const session = "fidelity-refused"
	uj, _ := json.Marshal(user)
	message := func(content, extra string) []byte {
		return []byte(`{"user_identifier":` + string(uj) + `,"session_id":"` + session + `","role":"user","content":` + content + extra + `}`)
	}
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	cases := []struct {
		name  string
		body  []byte
		field string // "" when any field may be named
	}{
		{"invalid UTF-8 in content", message("\"bad \xff\xfe byte\"", ""), ""},
		{"an encoded surrogate in content", message("\"\xed\xa0\x80\"", ""), ""},
		{"an unescaped control character in content", message("\"tab\x01here\"", ""), ""},
		{"an unescaped newline in content", message("\"line\nbreak\"", ""), ""},
		{"an invalid escape in content", message(`"\x41"`, ""), ""},
		{"content of 262 145 characters", message(quote(strings.Repeat("x", 262_145)), ""), "content"},
		{"a metadata number beyond float64", message(`"x"`, `,"metadata":{"n":1e400}`), "metadata.n"},
		{"a repeated metadata member", message(`"x"`, `,"metadata":{"a":1,"a":2}`), "metadata.a"},
		{"a repeated member", message(`"x"`, `,"content":"y"`), "content"},
		{"metadata that is not an object", message(`"x"`, `,"metadata":[1,2]`), "metadata"},
		{"metadata of 257 members", message(`"x"`, `,"metadata":{`+func() string {
			var s []string
			for i := range 257 {
				s = append(s, fmt.Sprintf(`"k%d":%d`, i, i))
			}
			return strings.Join(s, ",")
		}()+`}`), "metadata"},
		{"a control character in the session id", []byte(`{"user_identifier":` + string(uj) + `,"session_id":"a\u0007b","role":"user","content":"x"}`), "session_id"},
		{"an unknown role", []byte(`{"user_identifier":` + string(uj) + `,"session_id":"` + session + `","role":"robot","content":"x"}`), "role"},
	}
	for _, tc := range cases {
		status, field := postRaw(t, stack.IngestorURL+"/v1/messages", tc.body)
		if status != http.StatusBadRequest || (tc.field != "" && field != tc.field) {
			t.Errorf("%s: %d field %q, want 400 field %q", tc.name, status, field, tc.field)
		}
	}
	// A preference longer than 65 536 characters.
	pref := []byte(`{"user_identifier":` + string(uj) + `,"category":"c","preference":` + quote(strings.Repeat("p", 65_537)) + `}`)
	if status, field := postRaw(t, stack.IngestorURL+"/v1/preferences", pref); status != http.StatusBadRequest || field != "preference" {
		t.Errorf("preference of 65 537 characters: %d field %q, want 400 preference", status, field)
	}
	// The Go client refuses the same before sending.
	if _, err := c.ShortTerm.AddMessage(ctx, session, "user", "bad \xff byte", client.ForUser(user)); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("client write of invalid UTF-8: %v, want ErrInvalid", err)
	}
	if _, err := c.ShortTerm.AddMessage(ctx, session, "user", strings.Repeat("x", 262_145), client.ForUser(user)); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("client write of 262 145 characters: %v, want ErrInvalid", err)
	}
	// Nothing refused was stored: the session holds only the message written after them,
	// and the bound itself (262 144 characters) is accepted whole.
	atBound := repeatRunes("é", 262_144)
	w, err := c.ShortTerm.AddMessage(ctx, session, "user", atBound, client.ForUser(user))
	if err != nil {
		t.Fatalf("content of 262 144 characters: %v", err)
	}
	page, err := c.ShortTerm.GetMessages(ctx, user, session)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 1 || page.Messages[0].ID != w.ID {
		t.Fatalf("session after the refusals holds %d messages, want only %s", len(page.Messages), w.ID)
	}
	if got := page.Messages[0].Content; got != atBound {
		t.Errorf("content of 262 144 characters: %s", firstDiff(got, atBound))
	}
}

// fidelityPreferences: SCN-S-045, a long preference (the kit's is about 2 500 characters)
// and its context, category and metadata read back exactly.
func fidelityPreferences(t *testing.T, c *client.Client, user string) {
	ctx := t.Context()
	type pref struct {
		name, category, text, context string
		confidence                    float64
	}
	prefs := []pref{
		{"2 500 characters", "long", repeatRunes("Prefers detailed explanations with examples. ", 2_500), "", 1},
		{"2 500 mixed characters", "long 日本", repeatRunes("prefers 🙂 naïve café\u0301 «quotes» \"\\\n\t", 2_500), repeatRunes("context שלום ", 2_500), 0.25},
		{"the bound, 65 536 characters", "bound", repeatRunes("𝔘x", 65_536), fidelityEscapes, 0.5},
		{"Unicode and escapes", string([]rune(fidelityUnicode)[:12]), fidelityUnicode + fidelityEscapes + fidelityControls(), fidelityControls(), 0},
	}
	ids := map[string]pref{}
	for _, p := range prefs {
		opts := []client.WriteOption{client.ForUser(user), client.WithConfidence(p.confidence), client.WithMetadata(fidelityMetadata())}
		if p.context != "" {
			opts = append(opts, client.WithContext(p.context))
		}
		w, err := c.LongTerm.AddPreference(ctx, p.category, p.text, opts...)
		if err != nil {
			t.Fatalf("write %s: %v", p.name, err)
		}
		ids[w.ID] = p
	}
	got, err := c.LongTerm.GetPreferencesFor(ctx, user, client.ActiveOnly(false))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(prefs) {
		t.Errorf("%d preferences read back, want %d", len(got), len(prefs))
	}
	for _, g := range got {
		p, ok := ids[g.ID]
		if !ok {
			t.Errorf("unexpected preference %s", g.ID)
			continue
		}
		delete(ids, g.ID)
		if g.Preference != p.text {
			t.Errorf("%s: preference %s", p.name, firstDiff(g.Preference, p.text))
		}
		if g.Category != p.category {
			t.Errorf("%s: category %s", p.name, firstDiff(g.Category, p.category))
		}
		switch {
		case p.context == "" && g.Context != nil:
			t.Errorf("%s: context %q, want null", p.name, *g.Context)
		case p.context != "" && g.Context == nil:
			t.Errorf("%s: context null, want %d bytes", p.name, len(p.context))
		case p.context != "" && *g.Context != p.context:
			t.Errorf("%s: context %s", p.name, firstDiff(*g.Context, p.context))
		}
		if g.Confidence != p.confidence {
			t.Errorf("%s: confidence %v, want %v", p.name, g.Confidence, p.confidence)
		}
		sameJSON(t, p.name+": metadata", g.Metadata, fidelityMetadata())
	}
	for id, p := range ids {
		t.Errorf("%s: preference %s not read back", p.name, id)
	}
}

// fidelityTrace: SCN-S-024, -026, -057, -058 (every step field, and steps with only some),
// SCN-S-061, -062 (tool calls with status cancelled and pending) and every other status,
// read back through GetTrace and counted by GetToolStats.
func fidelityTrace(t *testing.T, c *client.Client, user, tool string) {
	ctx := t.Context()
	const session = "fidelity-trace"
	task := "Find a consultant — 日本 🙂 \"quoted\" \\ \n" + fidelityControls()
	tr, err := c.Reasoning.StartTrace(ctx, session, task, client.ForUser(user), client.WithMetadata(fidelityMetadata()))
	if err != nil {
		t.Fatal(err)
	}
	ptr := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	type step struct {
		name                         string
		number                       int // 0: the next
		thought, action, observation string
		wantNumber                   int64
	}
	steps := []step{
		{"every field", 0, "Thought: " + fidelityUnicode, "search(\"consultants\", {\"industry\": \"healthcare\"}) " + fidelityEscapes, "Observation: 3 found\n" + fidelityControls(), 1},
		{"only a thought", 0, "only thinking", "", "", 2},
		{"only an action", 0, "", "only acting", "", 3},
		{"only an observation", 0, "", "", "only observing", 4},
		{"every field, numbered", 10, repeatRunes("long thought 🙂 ", 10_000), repeatRunes("long action \" ", 10_000), repeatRunes("long observation \\ ", 10_000), 10},
	}
	stepIDs := make([]string, len(steps))
	for i, s := range steps {
		var opts []client.WriteOption
		if s.thought != "" {
			opts = append(opts, client.Thought(s.thought))
		}
		if s.action != "" {
			opts = append(opts, client.Action(s.action))
		}
		if s.observation != "" {
			opts = append(opts, client.Observation(s.observation))
		}
		if s.number != 0 {
			opts = append(opts, client.StepNumber(s.number))
		}
		w, err := c.Reasoning.AddStep(ctx, tr.ID, opts...)
		if err != nil {
			t.Fatalf("step %s: %v", s.name, err)
		}
		stepIDs[i] = w.ID
	}

	type call struct {
		status, wantStatus string // status "" is the default
		arguments, result  any
		duration           time.Duration
		errText            string
	}
	calls := []call{
		{"", "success", map[string]any{"query": "healthcare 日本 🙂", "limit": json.Number("10")}, map[string]any{"hits": []any{"a", "b"}}, 12 * time.Millisecond, ""},
		{"success", "success", fidelityMetadata(), []any{json.Number("1"), "two", nil, true}, 0, ""},
		{"failure", "failure", map[string]any{"q": fidelityEscapes}, "a string result " + fidelityUnicode, 30 * time.Millisecond, "no match: \"quoted\" \\ 日本"},
		{"error", "error", map[string]any{}, json.Number("-12.625"), 7 * time.Hour, "error text\n" + fidelityControls()},
		{"timeout", "timeout", []any{"args", "as", "an", "array"}, nil, 604_800_000 * time.Millisecond, "timed out after 7 days"},
		{"cancelled", "cancelled", map[string]any{"reason": "user pressed stop"}, map[string]any{"partial": true}, 5 * time.Millisecond, "cancelled by the user"},
		{"pending", "pending", map[string]any{"job": "queued"}, nil, 0, ""},
	}
	callIDs := make([]string, len(calls))
	var wantMS int64
	for i, cl := range calls {
		opts := []client.WriteOption{client.WithArguments(cl.arguments), client.WithDuration(cl.duration)}
		if cl.status != "" {
			opts = append(opts, client.WithStatus(cl.status))
		}
		if cl.result != nil {
			opts = append(opts, client.WithResult(cl.result))
		}
		if cl.errText != "" {
			opts = append(opts, client.WithError(cl.errText))
		}
		w, err := c.Reasoning.RecordToolCall(ctx, tr.ID, stepIDs[0], tool, opts...)
		if err != nil {
			t.Fatalf("tool call %q: %v", cl.status, err)
		}
		callIDs[i] = w.ID
		wantMS += cl.duration.Milliseconds()
	}
	outcome := "Done — 3 found 🙂\n\"quoted\" \\ " + fidelityUnicode
	if _, err := c.Reasoning.CompleteTrace(ctx, tr.ID, client.WithOutcome(outcome), client.WithSuccess(false)); err != nil {
		t.Fatal(err)
	}

	got, err := c.Reasoning.GetTrace(ctx, user, tr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Task != task {
		t.Errorf("task %s", firstDiff(got.Task, task))
	}
	if got.SessionID != session {
		t.Errorf("session %q, want %q", got.SessionID, session)
	}
	if got.Outcome == nil || *got.Outcome != outcome {
		t.Errorf("outcome %v, want %q", got.Outcome, outcome)
	}
	if got.Success == nil || *got.Success {
		t.Errorf("success %v, want false", got.Success)
	}
	if got.StartedAt == nil || got.CompletedAt == nil {
		t.Errorf("started_at %v, completed_at %v", got.StartedAt, got.CompletedAt)
	}
	sameJSON(t, "trace metadata", got.Metadata, fidelityMetadata())
	if len(got.Steps) != len(steps) {
		t.Fatalf("%d steps read back, want %d", len(got.Steps), len(steps))
	}
	for i, s := range steps {
		g := got.Steps[i]
		if g.ID != stepIDs[i] {
			t.Errorf("step %d is %s, want %s (%s)", i, g.ID, stepIDs[i], s.name)
			continue
		}
		if g.StepNumber == nil || *g.StepNumber != s.wantNumber {
			t.Errorf("%s: step_number %v, want %d", s.name, g.StepNumber, s.wantNumber)
		}
		if g.Timestamp == nil {
			t.Errorf("%s: no timestamp", s.name)
		}
		for _, f := range []struct {
			field     string
			got, want *string
		}{{"thought", g.Thought, ptr(s.thought)}, {"action", g.Action, ptr(s.action)}, {"observation", g.Observation, ptr(s.observation)}} {
			switch {
			case f.want == nil && f.got != nil:
				t.Errorf("%s: %s %q, want null", s.name, f.field, *f.got)
			case f.want != nil && f.got == nil:
				t.Errorf("%s: %s null, want %d bytes", s.name, f.field, len(*f.want))
			case f.want != nil && *f.got != *f.want:
				t.Errorf("%s: %s %s", s.name, f.field, firstDiff(*f.got, *f.want))
			}
		}
		if i > 0 && len(g.ToolCalls) != 0 {
			t.Errorf("%s: %d tool calls, want none", s.name, len(g.ToolCalls))
		}
	}
	tcs := got.Steps[0].ToolCalls
	if len(tcs) != len(calls) {
		t.Fatalf("%d tool calls read back, want %d", len(tcs), len(calls))
	}
	for i, cl := range calls {
		g := tcs[i]
		name := "tool call " + cl.wantStatus
		if g.ID != callIDs[i] {
			t.Errorf("%s: call %d is %s, want %s", name, i, g.ID, callIDs[i])
			continue
		}
		if g.ToolName != tool {
			t.Errorf("%s: tool_name %q, want %q", name, g.ToolName, tool)
		}
		if g.Status != cl.wantStatus {
			t.Errorf("%s: status %q, want %q", name, g.Status, cl.wantStatus)
		}
		sameJSON(t, name+": arguments", g.Arguments, cl.arguments)
		sameJSON(t, name+": result", g.Result, cl.result)
		if g.DurationMS == nil || *g.DurationMS != cl.duration.Milliseconds() {
			t.Errorf("%s: duration_ms %v, want %d", name, g.DurationMS, cl.duration.Milliseconds())
		}
		switch {
		case cl.errText == "" && g.Error != nil:
			t.Errorf("%s: error %q, want null", name, *g.Error)
		case cl.errText != "" && (g.Error == nil || *g.Error != cl.errText):
			t.Errorf("%s: error %v, want %q", name, g.Error, cl.errText)
		}
		if g.Timestamp == nil {
			t.Errorf("%s: no timestamp", name)
		}
	}

	stats, err := c.Reasoning.GetToolStats(ctx, user, client.ForTool(tool))
	if err != nil {
		t.Fatal(err)
	}
	total, successful := int64(len(calls)), int64(2)
	if len(stats) != 1 {
		t.Fatalf("tool stats %+v, want one tool", stats)
	}
	s := stats[0]
	if s.Name != tool || s.TotalCalls != total || s.SuccessfulCalls != successful || s.FailedCalls != total-successful ||
		s.SuccessRate != float64(successful)/float64(total) || s.Description != nil || s.LastUsedAt == nil {
		t.Errorf("tool stats %+v, want %d calls, %d successful, %d failed", s, total, successful, total-successful)
	}
	if s.AvgDurationMS == nil || *s.AvgDurationMS != float64(wantMS)/float64(total) {
		t.Errorf("avg_duration_ms %v, want %v", s.AvgDurationMS, float64(wantMS)/float64(total))
	}
}
