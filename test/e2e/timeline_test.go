package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/demo"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/query"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
	"github.com/engram-memory/engram/internal/ui"
)

// TimelineScreenshotEnv names the file TestTimelineInBrowser writes its screenshot of the seed
// scenario to (docs/timeline.png is made with TIMELINE_SCREENSHOT=$PWD/docs/timeline.png);
// without it the screenshot goes to the test's temporary directory.
const TimelineScreenshotEnv = "TIMELINE_SCREENSHOT"

// TestTimelineInBrowser loads the timeline page (internal/ui, docs/timeline.md) in a real
// headless Chromium against the real stack with authentication on, after the seed scenario:
// without a credential, and with credentials the API does not authorize for the user, the
// page shows no data; with the user's read credential it draws exactly what the API answers
// (the superseded preference's bar ending at its valid_until), and moving the as-of and
// known-at controls changes the visible set to the API's answer for the same parameters;
// clicking an item shows the event that recorded it, as the log holds it. Then a user with
// many preferences: the page keeps a bounded number of rows in the DOM and scrolls to the last.
func TestTimelineInBrowser(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, 1500, 950) // before the stack: a missing browser fails first, fast
	secret := bytes.Repeat([]byte("timeline-"), 5)
	secretFile := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	stack := testenv.StartStack(t, "AUTH_ENABLED=true", "AUTH_HS256_SECRET_FILE="+secretFile)
	users := demo.Users{Sara: testenv.User(t, "sara"), Liam: testenv.User(t, "liam")}
	many := testenv.User(t, "many")
	t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), users.Sara, users.Liam, many) })
	mint := func(name string, users []string, scopes ...auth.Scope) string {
		tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: name, Users: users, Scopes: scopes, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	writer := mint("seed-agent", []string{users.Sara, users.Liam, many}, auth.ScopeRead, auth.ScopeWrite)
	saraReader := mint("sara-auditor", []string{users.Sara}, auth.ScopeRead)
	liamReader := mint("liam-auditor", []string{users.Liam}, auth.ScopeRead)
	saraWriteOnly := mint("sara-writer", []string{users.Sara}, auth.ScopeWrite)

	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true), client.WithBearerToken(writer))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := demo.Run(t.Context(), c, users, &out)
	if err != nil {
		t.Fatalf("seed scenario: %v\n%s", err, out.String())
	}
	saraBase := stack.QueryURL + "/v1/users/" + url.PathEscape(users.Sara)
	// apiPrefs is the API's answer, asked by the test itself.
	apiPrefs := func(params url.Values) []query.Preference {
		t.Helper()
		code, body := get(t, saraBase+"/preferences?"+params.Encode(), saraReader)
		if code != http.StatusOK {
			t.Fatalf("API preferences?%s: %d %s", params.Encode(), code, body)
		}
		var ans struct{ Preferences []query.Preference }
		if err := json.Unmarshal([]byte(body), &ans); err != nil {
			t.Fatal(err)
		}
		return ans.Preferences
	}
	ids := func(ps []query.Preference) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	all := apiPrefs(url.Values{"active_only": {"false"}})
	byID := map[string]query.Preference{}
	for _, p := range all {
		byID[p.ID] = p
	}
	junior, senior := byID[res.Junior.ID], byID[res.Senior.ID]
	healthcare := res.AllPrefs[0]
	if len(all) != 3 || junior.ValidUntil == nil || junior.SupersededSeq == nil || senior.RecordedAt == nil ||
		junior.SupersededRecordedAt == nil || junior.RecordedSeq == nil {
		t.Fatalf("the seed scenario's preferences: %+v", all)
	}

	// The shell holds no data: the same bytes for every user, without a credential.
	shell := func(u string) string {
		resp, err := http.Get(stack.QueryURL + "/ui/users/" + url.PathEscape(u))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != ui.ContentSecurityPolicy {
			t.Fatalf("shell of %s: %d, headers %v", u, resp.StatusCode, resp.Header)
		}
		return string(body)
	}
	if s, l := shell(users.Sara), shell(users.Liam); s != l || strings.Contains(s, users.Sara) || strings.Contains(s, "Senior") {
		t.Fatal("the shell differs between users or holds their data")
	}

	page := stack.QueryURL + "/ui/users/" + url.PathEscape(users.Sara)
	prefRows := `Array.from(document.querySelectorAll('#plot g.row.preference')).map(g => g.dataset.id)`
	noData := func(state string) {
		t.Helper()
		b.waitFor(t, time.Minute, `document.body.dataset.state === `+js(state))
		var rows []string
		var hidden bool
		b.eval(t, prefRows, &rows)
		b.eval(t, `document.getElementById('timeline').hidden`, &hidden)
		if len(rows) != 0 || !hidden {
			t.Fatalf("%s: the page shows %d preferences (timeline hidden %v)", state, len(rows), hidden)
		}
	}
	useCredential := func(tok string) {
		t.Helper()
		b.run(t, 30*time.Second, chromedp.WaitVisible(`#credential`, chromedp.ByID), chromedp.SendKeys(`#credential`, tok, chromedp.ByID),
			chromedp.Click(`#auth button[type=submit]`, chromedp.ByQuery))
	}
	problem := func() string {
		var s string
		b.eval(t, `document.getElementById('problem-text').textContent`, &s)
		return s
	}

	// 1. No credential: the API answers 401, the page asks for one and shows nothing.
	b.run(t, time.Minute, chromedp.Navigate(page))
	noData("unauthenticated")
	// 2. Liam's read credential on Sara's page, and Sara's without the read scope: 403.
	useCredential(liamReader)
	noData("forbidden")
	if p := problem(); !strings.Contains(p, "403") || !strings.Contains(p, `may not act for user "`+users.Sara+`"`) {
		t.Errorf("liam's credential on sara's page: %q", p)
	}
	b.run(t, 10*time.Second, chromedp.Click(`#problem-retry`, chromedp.ByID))
	noData("unauthenticated")
	useCredential(saraWriteOnly)
	noData("forbidden")
	if p := problem(); !strings.Contains(p, `lacks scope "read"`) {
		t.Errorf("sara's write-only credential: %q", p)
	}
	b.run(t, 10*time.Second, chromedp.Click(`#problem-retry`, chromedp.ByID))

	// 3. Sara's read credential: the page draws the API's answer.
	useCredential(saraReader)
	// shows waits until the page shows the answer for the query string want (the controls'
	// parameters, as the page sent them) and returns the preference rows drawn.
	shows := func(want url.Values) []string {
		t.Helper()
		wantJSON, _ := json.Marshal(want)
		b.waitFor(t, time.Minute, `(() => { if (document.body.dataset.state !== 'ready') return false;
			const got = new URLSearchParams(document.body.dataset.prefsQuery || ''); const want = `+string(wantJSON)+`;
			return [...got.keys()].length === Object.keys(want).length && Object.entries(want).every(([k, v]) => got.get(k) === v[0]); })()`)
		var qs string
		b.eval(t, `document.body.dataset.prefsQuery`, &qs)
		got, err := url.ParseQuery(qs)
		if err != nil || !equalValues(got, want) {
			t.Fatalf("the page asked preferences?%s, want %s", qs, want.Encode())
		}
		var rows []string
		b.eval(t, prefRows, &rows)
		return rows
	}
	agree := func(name string, params url.Values) []query.Preference {
		t.Helper()
		rows := shows(params)
		want := apiPrefs(params)
		if !slices.Equal(rows, ids(want)) {
			t.Errorf("%s: the page shows %q, the API answers %q", name, rows, ids(want))
		}
		return want
	}
	agree("everything", url.Values{"active_only": {"false"}})

	// The superseded preference's bar ends at its valid_until; the replacement's is open.
	type barGeometry struct {
		X, Width, V0, V1, X0, PlotWidth float64
		From, Until, Class              string
	}
	barOf := func(id string) barGeometry {
		t.Helper()
		var g barGeometry
		b.eval(t, `(() => { const r = document.querySelector('#plot g.row.preference[data-id=`+js(id)+`] rect.bar');
			const p = document.getElementById('plot').dataset;
			return r && {x: +r.getAttribute('x'), width: +r.getAttribute('width'), v0: +p.v0, v1: +p.v1, x0: +p.x0, plotWidth: +p.plotWidth,
				from: r.dataset.validFrom, until: r.dataset.validUntil, class: r.getAttribute('class')}; })()`, &g)
		if g.PlotWidth == 0 {
			t.Fatalf("no bar drawn for preference %s", id)
		}
		return g
	}
	xOf := func(g barGeometry, at time.Time) float64 {
		return g.X0 + (float64(at.UnixNano())/1e6-g.V0)/(g.V1-g.V0)*g.PlotWidth
	}
	jb := barOf(junior.ID)
	if until, _ := time.Parse(time.RFC3339Nano, jb.Until); !until.Equal(*junior.ValidUntil) {
		t.Errorf("junior's bar until %q, the API's valid_until %s", jb.Until, junior.ValidUntil)
	}
	if end := xOf(jb, *junior.ValidUntil); jb.Width <= 2 || math.Abs(jb.X+jb.Width-end) > 1 || math.Abs(jb.X-xOf(jb, *junior.ValidFrom)) > 1 {
		t.Errorf("junior's bar spans x %.1f to %.1f; its valid interval is %.1f to %.1f", jb.X, jb.X+jb.Width, xOf(jb, *junior.ValidFrom), end)
	}
	if sb := barOf(senior.ID); sb.Until != "" || !strings.Contains(sb.Class, "open") {
		t.Errorf("senior's bar: %+v, want open", sb)
	}
	var links int
	b.eval(t, `document.querySelectorAll('#plot g.link[data-old=`+js(junior.ID)+`][data-new=`+js(senior.ID)+`]').length`, &links)
	if links != 1 {
		t.Errorf("%d supersede links junior → senior, want 1", links)
	}

	// 4. The as-of control, typed: before the supersede (all three), at junior's valid_until
	// (junior no longer valid), and by the slider at both ends of the axis.
	setText := func(id, value string) {
		t.Helper()
		b.run(t, 10*time.Second, chromedp.SetValue(id, value, chromedp.ByID), chromedp.SendKeys(id, kb.Enter, chromedp.ByID))
	}
	asOf := func(v string) url.Values { return url.Values{"active_only": {"false"}, "as_of": {v}} }
	snapshot := res.SnapshotAt.Format(time.RFC3339Nano)
	setText("asof", snapshot)
	if got := agree("as of the snapshot", asOf(snapshot)); len(got) != 3 {
		t.Errorf("as of the snapshot (before the supersede): %d preferences, want 3", len(got))
	}
	until := junior.ValidUntil.Format(time.RFC3339Nano)
	setText("asof", until)
	if got := agree("as of junior's valid_until", asOf(until)); slices.Contains(ids(got), junior.ID) || len(got) != 2 {
		t.Errorf("as of junior's valid_until: %q", ids(got))
	}
	// slide clicks the range input at fraction f of its width and returns the text field's
	// value the page took from it.
	slide := func(rangeID, textID string, f float64) string {
		t.Helper()
		var box struct{ X, Y, W, H float64 }
		var before string
		b.eval(t, `document.getElementById(`+js(textID)+`).value`, &before)
		b.eval(t, `(() => { const r = document.getElementById(`+js(rangeID)+`).getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; })()`, &box)
		b.run(t, 10*time.Second, chromedp.MouseClickXY(box.X+f*box.W, box.Y+box.H/2))
		b.waitFor(t, 30*time.Second, `document.getElementById(`+js(textID)+`).value !== `+js(before))
		var v string
		b.eval(t, `document.getElementById(`+js(textID)+`).value`, &v)
		return v
	}
	early := slide("asof-range", "asof", 0.01)
	atStart := agree("as of the slider's start", asOf(early))
	late := slide("asof-range", "asof", 0.99)
	atEnd := agree("as of the slider's end", asOf(late))
	if early == late || slices.Equal(ids(atStart), ids(atEnd)) {
		t.Errorf("the slider at both ends: as of %s shows %q, as of %s %q: want different sets", early, ids(atStart), late, ids(atEnd))
	}
	b.run(t, 10*time.Second, chromedp.Click(`#asof-clear`, chromedp.ByID))
	agree("as-of cleared", url.Values{"active_only": {"false"}})
	// active only, as the API's default: junior is superseded.
	b.run(t, 10*time.Second, chromedp.Click(`#active-only`, chromedp.ByID))
	if got := agree("active only", url.Values{"active_only": {"true"}}); slices.Contains(ids(got), junior.ID) || len(got) != 2 {
		t.Errorf("active only: %q", ids(got))
	}
	b.run(t, 10*time.Second, chromedp.Click(`#active-only`, chromedp.ByID))
	agree("active only off", url.Values{"active_only": {"false"}})
	// The controls live in the address, so a link opens the same view.
	b.run(t, time.Minute, chromedp.Navigate(page+"?as_of="+url.QueryEscape(until)))
	agree("as of from the address", asOf(until))
	b.run(t, 10*time.Second, chromedp.Click(`#asof-clear`, chromedp.ByID))
	agree("as-of cleared again", url.Values{"active_only": {"false"}})

	// 5. The known-at control: when senior was recorded the supersede was not, so junior is
	// valid without end and nothing superseded it; when only the first preference was
	// recorded, only it; and by the slider.
	knownAt := func(v string) url.Values { return url.Values{"active_only": {"false"}, "known_at": {v}} }
	beforeSupersede := senior.RecordedAt.Format(time.RFC3339Nano)
	setText("knownat", beforeSupersede)
	if got := agree("known at senior's recording", knownAt(beforeSupersede)); len(got) != 3 {
		t.Errorf("known at senior's recording: %q, want all three", ids(got))
	}
	if jb := barOf(junior.ID); jb.Until != "" || !strings.Contains(jb.Class, "open") {
		t.Errorf("known before the supersede, junior's bar is %+v, want open", jb)
	}
	b.eval(t, `document.querySelectorAll('#plot g.link').length`, &links)
	if links != 0 {
		t.Errorf("known before the supersede: %d supersede links, want 0", links)
	}
	first := byID[healthcare.ID].RecordedAt.Format(time.RFC3339Nano)
	setText("knownat", first)
	if got := agree("known at the first preference's recording", knownAt(first)); !slices.Equal(ids(got), []string{healthcare.ID}) {
		t.Errorf("known at the first recording: %q", ids(got))
	}
	// Conversations and traces have no known_at in the API: the page dims those recorded
	// after it (the trace was recorded after the first preference, the conversation before).
	var later map[string]bool
	b.eval(t, `Object.fromEntries(Array.from(document.querySelectorAll('#plot g.row.conversation, #plot g.row.trace')).map(g => [g.dataset.kind, g.classList.contains('later')]))`, &later)
	if !later["trace"] || later["conversation"] {
		t.Errorf("recorded after known-at (trace, conversation): %v, want trace only", later)
	}
	agree("known at the slider's start", knownAt(slide("knownat-range", "knownat", 0.02)))
	agree("known at the slider's end", knownAt(slide("knownat-range", "knownat", 0.98)))
	// Both together, typed: what was believed before the supersede about after it.
	setText("knownat", beforeSupersede)
	shows(knownAt(beforeSupersede))
	setText("asof", until)
	if got := agree("as of after the supersede, known before it", url.Values{"active_only": {"false"}, "as_of": {until}, "known_at": {beforeSupersede}}); len(got) != 3 {
		t.Errorf("as of %s known at %s: %q, want all three (junior still open then)", until, beforeSupersede, ids(got))
	}
	b.run(t, 10*time.Second, chromedp.Click(`#asof-clear`, chromedp.ByID))
	shows(knownAt(beforeSupersede))
	b.run(t, 10*time.Second, chromedp.Click(`#knownat-clear`, chromedp.ByID))
	agree("both cleared", url.Values{"active_only": {"false"}})

	// 6. Clicking shows the event that recorded the item, from the log; the test reads the log
	// itself (JetStream, as memctl audit does) to know what it holds.
	nc, err := nats.Connect(stack.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	jsm, _ := jetstream.New(nc)
	mem, err := jsm.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	// As of the snapshot (before the supersede): all three, the as-of line drawn.
	setText("asof", snapshot)
	shows(asOf(snapshot))
	type shown struct{ ID, Kind, Seq, Actor, Source, Correlation, Fate, Data string }
	click := func(sel string) shown {
		t.Helper()
		b.run(t, 10*time.Second, chromedp.Click(sel, chromedp.ByQuery))
		b.waitFor(t, 30*time.Second, `document.getElementById('detail').dataset.state === 'ready'`)
		var s shown
		b.eval(t, `(() => { const v = (id) => document.getElementById(id).textContent;
			return {id: v('ev-id'), kind: v('ev-kind'), seq: v('ev-seq'), actor: v('ev-actor'), source: v('ev-source'),
				correlation: v('ev-correlation'), fate: v('ev-fate'), data: v('ev-data')}; })()`, &s)
		return s
	}
	// inLog checks what the page shows against the stored message at its sequence.
	inLog := func(name string, s shown, kind events.Kind, dataID string) *jetstream.RawStreamMsg {
		t.Helper()
		seq, err := strconv.ParseUint(s.Seq, 10, 64)
		if err != nil {
			t.Fatalf("%s: sequence %q", name, s.Seq)
		}
		msg, err := mem.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("%s: the log at %d: %v", name, seq, err)
		}
		corr := msg.Header.Get("ce-correlationid")
		if corr == "" {
			corr = "—"
		}
		_, k, _ := events.ParseSubject(msg.Subject)
		if k != kind || s.ID != msg.Header.Get("ce-id") || !strings.HasPrefix(s.Kind, string(kind)) ||
			s.Actor != msg.Header.Get("ce-actor") || s.Actor != "seed-agent" || s.Source != msg.Header.Get("ce-source") ||
			s.Correlation != corr || !strings.HasPrefix(s.Fate, "applied") || !strings.Contains(s.Data, dataID) {
			t.Errorf("%s: the page shows %+v; the log at %d holds %s %v", name, s, seq, msg.Subject, msg.Header)
		}
		return msg
	}
	s := click(`#plot g.row.preference[data-id=` + js(junior.ID) + `] rect.bar`)
	inLog("junior's bar", s, events.KindPreferenceAdded, junior.ID)
	if s.ID != res.Junior.Receipt.EventID || s.Seq != strconv.FormatUint(res.Junior.Receipt.Sequence, 10) {
		t.Errorf("junior's bar shows event %s at %s; the write's receipt says %s at %d", s.ID, s.Seq, res.Junior.Receipt.EventID, res.Junior.Receipt.Sequence)
	}
	// The screenshot: the seed scenario with junior's event open.
	var shot []byte
	b.run(t, 30*time.Second, chromedp.CaptureScreenshot(&shot))
	if img, err := png.Decode(bytes.NewReader(shot)); err != nil || img.Bounds().Dx() < 1000 {
		t.Errorf("screenshot: %v", err)
	}
	shotFile := os.Getenv(TimelineScreenshotEnv)
	if shotFile == "" {
		shotFile = filepath.Join(t.TempDir(), "timeline.png")
	}
	if err := os.WriteFile(shotFile, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the seed scenario: %s", shotFile)

	s = click(`#plot g.link[data-old=` + js(junior.ID) + `] path.hit`)
	inLog("the supersede link", s, events.KindPreferenceSuperseded, junior.ID)
	if s.Seq != strconv.FormatInt(*junior.SupersededSeq, 10) {
		t.Errorf("the supersede link shows sequence %s, the API's superseded_seq is %d", s.Seq, *junior.SupersededSeq)
	}
	s = click(`#plot g.row.trace rect.bar`)
	inLog("the trace", s, events.KindTraceStarted, res.SaraTrace.ID)
	s = click(`#plot g.row.conversation rect.bar`)
	inLog("the conversation", s, events.KindMessageAdded, res.SaraMessages.Messages[0].ID)

	// 7. Liam's page with Sara's credential: refused, nothing shown.
	b.run(t, time.Minute, chromedp.Navigate(stack.QueryURL+"/ui/users/"+url.PathEscape(users.Liam)))
	noData("forbidden")
	if p := problem(); !strings.Contains(p, `may not act for user "`+users.Liam+`"`) {
		t.Errorf("sara's credential on liam's page: %q", p)
	}

	// 8. Many preferences: rows are windowed, and scrolling reaches the last one.
	const n = 1500
	last := writePreferences(t, stack.IngestorURL, writer, many, n, 5)
	manyReader := mint("many-auditor", []string{many}, auth.ScopeRead)
	if code, body := get(t, stack.QueryURL+"/v1/users/"+url.PathEscape(many)+"/preferences?active_only=false&consistency="+strconv.FormatUint(last, 10), manyReader); code != http.StatusOK {
		t.Fatalf("many's preferences: %d %s", code, body)
	}
	b.run(t, time.Minute, chromedp.Navigate(stack.QueryURL+"/ui/users/"+url.PathEscape(many)))
	noData("forbidden") // the tab still holds Sara's credential
	b.run(t, 10*time.Second, chromedp.Click(`#problem-retry`, chromedp.ByID))
	useCredential(manyReader)
	b.waitFor(t, 2*time.Minute, `document.body.dataset.state === 'ready'`)
	var drawn struct{ Rows, Total int }
	b.eval(t, `({rows: document.querySelectorAll('#plot g.row').length, total: +document.getElementById('plot').dataset.rows})`, &drawn)
	if drawn.Total != n+1 || drawn.Rows == 0 || drawn.Rows > 80 {
		t.Errorf("%d preferences: %d rows in the DOM of %d, want a window of at most 80", n, drawn.Rows, drawn.Total)
	}
	b.run(t, 10*time.Second, chromedp.Evaluate(`document.getElementById('scroller').scrollTop = 1e9`, nil))
	lastPref := apiPrefsOf(t, stack.QueryURL, manyReader, many)
	b.waitFor(t, 30*time.Second, `!!document.querySelector('#plot g.row.preference[data-id=`+js(lastPref[len(lastPref)-1].ID)+`]')`)

	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("the page reported errors: %q", errs)
	}
}

// equalValues compares two query strings' values, ignoring order.
func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// apiPrefsOf returns the API's answer for every preference of user (active_only=false).
func apiPrefsOf(tb testing.TB, queryURL, token, user string) []query.Preference {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, queryURL+"/v1/users/"+url.PathEscape(user)+"/preferences?active_only=false", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct{ Preferences []query.Preference }
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("preferences of %s: %d %v", user, resp.StatusCode, err)
	}
	return ans.Preferences
}

// writePreferences writes n preferences of user through the ingestor's batch route, valid one
// after the other an hour apart from a year ago, every supersedeEvery-th superseding the one
// before it (0: none). It returns the last batch's sequence, a consistency token.
func writePreferences(tb testing.TB, ingestorURL, token, user string, n, supersedeEvery int) uint64 {
	tb.Helper()
	start := time.Now().UTC().Add(-365 * 24 * time.Hour).Truncate(time.Hour)
	var cmds []map[string]any
	var last uint64
	flush := func() {
		if len(cmds) == 0 {
			return
		}
		body, _ := json.Marshal(map[string]any{"commands": cmds})
		req, _ := http.NewRequest(http.MethodPost, ingestorURL+"/v1/batch", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		defer resp.Body.Close()
		var ans struct {
			Results []struct{ Sequence uint64 }
		}
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &ans) != nil || len(ans.Results) != len(cmds) {
			tb.Fatalf("batch of %d: %d %s", len(cmds), resp.StatusCode, raw)
		}
		last = ans.Results[len(ans.Results)-1].Sequence
		cmds = cmds[:0]
	}
	prev := ""
	for i := range n {
		id := events.NewID()
		from := start.Add(time.Duration(i) * time.Hour)
		cmds = append(cmds, map[string]any{"op": "add_preference", "user_identifier": user, "preference_id": id,
			"category": fmt.Sprintf("topic-%d", i%17), "preference": fmt.Sprintf("preference %d of %d", i+1, n),
			"valid_from": from.Format(time.RFC3339)})
		if supersedeEvery > 0 && i%supersedeEvery == supersedeEvery-1 && prev != "" {
			cmds = append(cmds, map[string]any{"op": "supersede_preference", "user_identifier": user, "old_id": prev, "new_id": id,
				"valid_until": from.Format(time.RFC3339)})
		}
		prev = id
		if len(cmds) >= 900 {
			flush()
		}
	}
	flush()
	return last
}
