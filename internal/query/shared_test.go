package query

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// sharedServer serves the reads with the shared tenant's routes on or off, behind an
// HS256 authenticator; it returns the URL and a token minting function.
func sharedServer(t *testing.T, on bool) (string, func(users ...string) http.Header) {
	t.Helper()
	secret := bytes.Repeat([]byte("shared-secret-"), 3)
	file := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Enabled: true, HS256SecretFile: file})
	if err != nil {
		t.Fatal(err)
	}
	d := neo4jDriver(t)
	_, _, js := testenv.NATS(t)
	r, err := NewReader(d, "", WithCheckpointGroup(testGroup(t, d)), WithEventLog(NewStreamLog(js)))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	NewHandler(r, time.Second, 50, nil, nil, WithAuthenticator(a), WithSharedTenant(on)).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, func(users ...string) http.Header {
		tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: "t", Users: users, Scopes: []auth.Scope{auth.ScopeRead}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return http.Header{"Authorization": {"Bearer " + tok}}
	}
}

var sharedPaths = []string{
	"/preferences", "/preferences/history", "/conversations", "/conversations/s/messages",
	"/traces", "/traces/t", "/events/" + "01a2320c-7ca5-7447-8bb8-8c4e68040d11", "/tools",
	"/search/messages?q=x", "/search/preferences?q=x", "/search/entities?q=x", "/search/steps?q=x",
	"/entities", "/entities/by-name?name=n&type=t", "/entities/e", "/entities/e/related", "/facts",
	"/entities/e/mentions", "/messages/m/entities", "/traces/t/entities",
}

// TestSharedRoutesNeedMultiTenantOff: with multi-tenant mode on, every shared route is a 404
// saying why, to an authorized caller; an unauthenticated one learns nothing more than 401.
func TestSharedRoutesNeedMultiTenantOff(t *testing.T) {
	t.Parallel()
	base, token := sharedServer(t, false)
	for _, p := range sharedPaths {
		code, body := get(t, base+SharedPrefix+p, token("*"), nil)
		if code != http.StatusNotFound || !strings.Contains(string(body), "multi-tenant mode is on") {
			t.Errorf("%s: %d %s", p, code, body)
		}
		if code, body := get(t, base+SharedPrefix+p, nil, nil); code != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d %s", p, code, body)
		}
	}
}

// TestSharedRoutesAuthorization: the shared tenant is read with the read scope for every user
// ("*"); a principal for some users only is refused, as it would be to write there.
func TestSharedRoutesAuthorization(t *testing.T) {
	t.Parallel()
	base, token := sharedServer(t, true)
	for _, p := range sharedPaths {
		code, body := get(t, base+SharedPrefix+p, token("sara@omg.com", "*@omg.com"), nil)
		if code != http.StatusForbidden || !strings.Contains(string(body), "shared tenant") {
			t.Errorf("%s for a principal of some users: %d %s", p, code, body)
		}
		code, body = get(t, base+SharedPrefix+p, token("*"), nil)
		want := http.StatusOK
		if strings.HasPrefix(p, "/traces/") || strings.HasPrefix(p, "/events/") || strings.HasPrefix(p, "/entities/") ||
			strings.HasPrefix(p, "/messages/") {
			want = http.StatusNotFound
		}
		if code != want || (want == http.StatusNotFound && !strings.Contains(string(body), "the shared tenant")) {
			t.Errorf("%s for a principal of every user: %d %s", p, code, body)
		}
	}
	// Parameters are checked as on the user routes.
	for query, field := range map[string]string{
		"/preferences?as_of=yesterday": "as_of", "/conversations?limit=0": "limit",
		"/traces?user=x": "user", "/conversations/s/messages?order=up": "order",
		"/search/messages?q=*": "q", "/search/steps?q=x&success_only=maybe": "success_only",
	} {
		code, body := get(t, base+SharedPrefix+query, token("*"), nil)
		if code != http.StatusBadRequest || !strings.Contains(string(body), `"field":"`+field+`"`) {
			t.Errorf("%s: %d %s", query, code, body)
		}
	}
	// A user called _shared is a user: its token is _5Fshared, not the shared tenant's.
	if tok, _ := events.TenantToken("_shared"); tok == events.SharedTenantToken {
		t.Fatal("the identifier _shared encodes to the shared tenant")
	}
}
