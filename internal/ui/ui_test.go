package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// answer is what a GET answered.
type answer struct {
	code   int
	header http.Header
	body   string
}

func get(t *testing.T, url string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{code: resp.StatusCode, header: resp.Header, body: string(body)}
}

// TestShell: the page is the same static shell whoever asks and whatever the identifier, with
// headers that keep it to its own origin; its assets are revalidated by ETag.
func TestShell(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	var shell string
	for i, path := range []string{"/ui/", "/ui/users/sara@omg.com", "/ui/users/liam%40omg.com", "/ui/users/a%2Fb", "/ui/users/nobody"} {
		a := get(t, srv.URL+path, nil)
		body := a.body
		if a.code != http.StatusOK || a.header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s: %d %s", path, a.code, a.header.Get("Content-Type"))
		}
		for h, want := range map[string]string{"Content-Security-Policy": ContentSecurityPolicy, "X-Content-Type-Options": "nosniff",
			"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"} {
			if got := a.header.Get(h); got != want {
				t.Errorf("%s: %s %q, want %q", path, h, got, want)
			}
		}
		if i == 0 {
			shell = body
		} else if body != shell {
			t.Errorf("%s: another shell than /ui/'s", path)
		}
		if strings.Contains(body, "sara") || strings.Contains(body, "liam") {
			t.Errorf("%s: the shell names a user", path)
		}
	}
	// What the CSP allows: scripts and styles from files only, no inline script or handler.
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(shell) || regexp.MustCompile(`\son[a-z]+=`).MatchString(shell) ||
		strings.Contains(shell, "style=") {
		t.Error("the shell has inline script, handlers or styles, which its Content-Security-Policy refuses")
	}

	for name, typ := range map[string]string{"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"} {
		a := get(t, srv.URL+"/ui/assets/"+name, nil)
		if a.code != http.StatusOK || a.header.Get("Content-Type") != typ || len(a.body) < 1000 || a.header.Get("ETag") == "" {
			t.Fatalf("%s: %d %s (%d bytes, ETag %q)", name, a.code, a.header.Get("Content-Type"), len(a.body), a.header.Get("ETag"))
		}
		if again := get(t, srv.URL+"/ui/assets/"+name, http.Header{"If-None-Match": {a.header.Get("ETag")}}); again.code != http.StatusNotModified {
			t.Errorf("%s revalidated: %d, want 304", name, again.code)
		}
	}
	for _, path := range []string{"/ui/assets/nope.js", "/ui/assets/", "/ui/users/", "/ui/users/a/b", "/ui/other"} {
		if a := get(t, srv.URL+path, nil); a.code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, a.code)
		}
	}
	if a := get(t, srv.URL+"/ui", nil); a.code != http.StatusMovedPermanently || a.header.Get("Location") != "/ui/" {
		t.Errorf("/ui: %d %s", a.code, a.header.Get("Location"))
	}
}

// TestScriptReadsOnlyTheAPI: everything the script fetches is under /v1 of its own origin,
// without cookies, with the credential as a Bearer header; nothing is written to the page as
// HTML.
func TestScriptReadsOnlyTheAPI(t *testing.T) {
	t.Parallel()
	js := string(files["app.js"].body)
	for _, want := range []string{`credentials: 'omit'`, `'Bearer ' + c`, `'/v1/users/' + encodeURIComponent(`, `sessionStorage`} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "document.cookie", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(js, "http://www.w3.org/2000/svg", ""), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	if n := strings.Count(js, "fetch("); n != 1 {
		t.Errorf("app.js calls fetch %d times, want once (in api)", n)
	}
}
