package auth_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/auth"
)

// A service mounts each route behind auth.Handler with the route's scope, and checks every
// user the request names with auth.Authorize before it publishes or reads anything.
func ExampleHandler() {
	dir, _ := os.MkdirTemp("", "auth-example")
	defer os.RemoveAll(dir)
	secretFile := filepath.Join(dir, "hs256")
	secret := []byte("example-secret-of-at-least-32-bytes")
	_ = os.WriteFile(secretFile, secret, 0o600)

	a, err := auth.New(auth.Config{Enabled: true, HS256SecretFile: secretFile, Leeway: 30 * time.Second})
	if err != nil {
		panic(err)
	}
	logger := slog.New(slog.DiscardHandler)
	preferences := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.PathValue("identifier")
		if err := auth.Authorize(r.Context(), user, auth.ScopeRead); err != nil {
			auth.WriteError(w, err) // 403 naming the principal, the user and the scope
			return
		}
		p, _ := auth.FromContext(r.Context())
		app.WriteJSON(w, http.StatusOK, map[string]string{"user": user, "actor": p.Name})
	})
	mux := http.NewServeMux()
	mux.Handle("GET /v1/users/{identifier}/preferences", auth.Handler(a, logger, auth.ScopeRead, preferences))

	token, _ := auth.SignHS256(secret, auth.TokenSpec{
		Subject: "agent-7", Users: []string{"*@omg.com"}, Scopes: []auth.Scope{auth.ScopeRead}, TTL: time.Hour,
	})
	for _, path := range []string{"/v1/users/sara@omg.com/preferences", "/v1/users/bob@acme.com/preferences"} {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	r := httptest.NewRequest("GET", "/v1/users/sara@omg.com/preferences", nil)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Header().Get("WWW-Authenticate"), " ", w.Body.String())
	// Output:
	// 200 {"actor":"agent-7","user":"sara@omg.com"}
	// 403 {"error":"forbidden: principal \"agent-7\" may not act for user \"bob@acme.com\" (scope \"read\")"}
	// 401 Bearer realm="engram" {"error":"unauthenticated: missing Authorization header"}
}
