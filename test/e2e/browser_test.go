package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// A real headless Chromium for the page tests: Debian's chromium (CHROMIUM names another
// binary), driven over the DevTools protocol by chromedp. A missing browser fails the test
// with the fix, as a missing Neo4j does; it never skips.

// chromiumPath returns the browser binary.
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: the timeline page is tested in a real headless browser. " +
		"Install Debian's package (`apt-get install -y chromium`; .ci/run does it) or set CHROMIUM to a Chromium or Chrome binary")
	return ""
}

// browser is one headless Chromium with a profile of its own (a temporary user-data dir),
// and the page's uncaught exceptions and console errors collected.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

// newBrowser starts Chromium for the test; it is stopped when the test ends.
func newBrowser(t testing.TB, width, height int) *browser {
	t.Helper()
	path := chromiumPath(t)
	// The profile is removed once the browser has exited (t.TempDir's removal could race
	// with Chromium's last writes).
	profile, err := os.MkdirTemp("", "engram-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run its sandbox as root (CI containers run as root).
		opts = append(opts, chromedp.NoSandbox)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &browser{ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.record("exception: " + ev.ExceptionDetails.Error())
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				var args []string
				for _, a := range ev.Args {
					if len(a.Value) > 0 {
						args = append(args, strings.Trim(string(a.Value), `"`))
					} else {
						args = append(args, a.Description)
					}
				}
				b.record("console.error: " + strings.Join(args, " "))
			}
		}
	})
	// Start the browser now, so that a binary that does not run fails here, clearly.
	started := false
	stop := func() {
		if started {
			_ = chromedp.Cancel(ctx) // closes the browser and waits for it
		}
		cancel()
		cancelAlloc()
		for range 50 {
			if err := os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("chromium profile %s not removed", profile)
	}
	if err := chromedp.Run(ctx); err != nil {
		stop()
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	started = true
	t.Cleanup(stop)
	return b
}

func (b *browser) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errors = append(b.errors, s)
}

// Errors returns the page's uncaught exceptions and console errors so far (a CSP refusal is
// one).
func (b *browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// run runs actions within d.
func (b *browser) run(t testing.TB, d time.Duration, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("browser: %v (page errors: %q)", err, b.Errors())
	}
}

// eval evaluates a JavaScript expression and decodes its value into out.
func (b *browser) eval(t testing.TB, expr string, out any) {
	t.Helper()
	b.run(t, 30*time.Second, chromedp.Evaluate(expr, out))
}

// waitFor polls the expression until it is truthy, failing the test with what the page shows
// after d.
func (b *browser) waitFor(t testing.TB, d time.Duration, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	var ok bool
	if err := chromedp.Run(ctx, chromedp.Poll(expr, &ok, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		var state string
		_ = chromedp.Run(b.ctx, chromedp.Evaluate(`JSON.stringify({state: document.body.dataset.state, query: document.body.dataset.prefsQuery,
			problem: document.getElementById('problem-text').textContent, request: document.getElementById('answer-count').textContent,
			detail: document.getElementById('detail').dataset.state, detailProblem: document.getElementById('detail-problem').textContent})`, &state))
		t.Fatalf("waiting for %s: %v; the page: %s; page errors: %q", expr, err, state, b.Errors())
	}
}

// js quotes s as a JavaScript string literal.
func js(s string) string { return fmt.Sprintf("%q", s) }
