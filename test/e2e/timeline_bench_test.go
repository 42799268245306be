package e2e

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/engram-memory/engram/internal/testenv"
)

// BenchmarkTimeline measures the timeline page (docs/timeline.md) for a user with many
// preferences (TIMELINE_BENCH_PREFERENCES, default 10,000; every fourth supersedes the one
// before it) in headless Chromium against the real stack:
//
//   - load: from navigation to the page drawn (conversations, traces and every preference read
//     from the API, parsed and drawn);
//   - as_of: from typing an as-of instant to the page drawing the API's answer for it;
//   - scroll: one scroll of the windowed rows to a new place, drawn.
//
// Besides ns/op it reports what the page measured itself: api-ms (its reads), page-ms (its
// own parsing and drawing once the answers were in), longest-task-ms (the longest main-thread
// task Chromium saw: how long the page froze at most) and dom-rows (rows in the DOM).
//
//	go test ./test/e2e -run '^$' -bench BenchmarkTimeline -benchtime 5x
func BenchmarkTimeline(b *testing.B) {
	n := 10_000
	if v := os.Getenv("TIMELINE_BENCH_PREFERENCES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("TIMELINE_BENCH_PREFERENCES=%q: want a positive number", v)
		}
	}
	br := newBrowser(b, 1500, 950)
	stack := testenv.StartStack(b)
	user := testenv.User(b, "bench")
	b.Cleanup(func() { testenv.Cleanup(b, testenv.Neo4j(b), user) })
	start := time.Now()
	last := writePreferences(b, stack.IngestorURL, "", user, n, 4)
	prefs := stack.QueryURL + "/v1/users/" + url.PathEscape(user) + "/preferences?active_only=false"
	for deadline := time.Now().Add(10 * time.Minute); ; {
		resp, err := http.Get(prefs + "&consistency=" + strconv.FormatUint(last, 10))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusGatewayTimeout || time.Now().After(deadline) {
			b.Fatalf("waiting for the projection of %d preferences: %d", n, resp.StatusCode)
		}
	}
	b.Logf("%d preferences written and projected in %s", n, time.Since(start).Round(time.Second))
	t0 := time.Now()
	resp, err := http.Get(prefs)
	if err != nil {
		b.Fatal(err)
	}
	size, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	b.Logf("GET …/preferences?active_only=false from Go: %d bytes in %s", size, time.Since(t0).Round(time.Millisecond))
	page := stack.QueryURL + "/ui/users/" + url.PathEscape(user)
	load := func() {
		br.run(b, 5*time.Minute, chromedp.Navigate(page))
		br.waitFor(b, 5*time.Minute, `document.body.dataset.state === 'ready'`)
	}
	load() // warms Neo4j's caches and the query plans: every measured load is alike
	figures := func(b *testing.B) {
		var f struct {
			APIMs, RenderMs, LongestTaskMs, LastRenderMs float64
			RenderedRows, Rows                           int
		}
		br.eval(b, `({apiMs: engramTiming.apiMs, renderMs: engramTiming.renderMs, longestTaskMs: engramTiming.longestTaskMs,
			lastRenderMs: engramTiming.lastRenderMs, renderedRows: engramTiming.renderedRows, rows: +document.getElementById('plot').dataset.rows})`, &f)
		if f.Rows < n {
			b.Fatalf("the page has %d rows for %d preferences", f.Rows, n)
		}
		b.ReportMetric(f.APIMs, "api-ms")
		b.ReportMetric(f.RenderMs, "page-ms")
		b.ReportMetric(f.LongestTaskMs, "longest-task-ms")
		b.ReportMetric(float64(f.RenderedRows), "dom-rows")
	}

	b.Run("load", func(b *testing.B) {
		for b.Loop() {
			load()
		}
		figures(b)
	})
	b.Run("as_of", func(b *testing.B) {
		load()
		// Half-way through the preferences' valid times: about half of them are valid then.
		mid := time.Now().UTC().Add(-365 * 24 * time.Hour).Truncate(time.Hour).Add(time.Duration(n/2) * time.Hour)
		i := 0
		for b.Loop() {
			at := mid.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
			i++
			br.run(b, time.Minute, chromedp.Evaluate(`(() => { const e = document.getElementById('asof'); e.value = `+js(at)+`;
				e.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'})); })()`, nil))
			br.waitFor(b, 5*time.Minute, `document.body.dataset.state === 'ready' && new URLSearchParams(document.body.dataset.prefsQuery).get('as_of') === `+js(at))
		}
	})
	b.Run("scroll", func(b *testing.B) {
		load()
		var max float64
		br.eval(b, `document.getElementById('scroller').scrollHeight`, &max)
		i := 0
		for b.Loop() {
			i++
			top := float64((i*7919)%1000) / 1000 * max
			br.run(b, time.Minute, chromedp.Evaluate(`(() => { window.__drawn = false; const s = document.getElementById('scroller');
				s.scrollTop = `+strconv.FormatFloat(top, 'f', 0, 64)+`; requestAnimationFrame(() => requestAnimationFrame(() => { window.__drawn = true; })); })()`, nil))
			br.waitFor(b, time.Minute, `window.__drawn === true`)
		}
		var f struct{ LastRenderMs float64 }
		br.eval(b, `({lastRenderMs: engramTiming.lastRenderMs})`, &f)
		b.ReportMetric(f.LastRenderMs, "draw-ms")
	})
}
