package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/engram-memory/engram/internal/app"
)

// logSink collects log output; slog handlers serialize their writes.
type logSink struct{ bytes.Buffer }

func newLogger() (*slog.Logger, *logSink) {
	var s logSink
	return slog.New(slog.NewTextHandler(&s, &slog.HandlerOptions{Level: slog.LevelDebug})), &s
}

// echo writes the principal and the user it was authorized for, after Authorize.
func echo(scope Scope) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.PathValue("user")
		if err := Authorize(r.Context(), user, scope); err != nil {
			WriteError(w, err)
			return
		}
		p, _ := FromContext(r.Context())
		app.WriteJSON(w, http.StatusOK, map[string]string{"principal": p.Name, "user": user})
	})
}

func TestMiddlewareHTTP(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	a, err := New(k.config(), WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := newLogger()
	mux := http.NewServeMux()
	mux.Handle("POST /v1/users/{user}/preferences", Handler(a, logger, ScopeWrite, echo(ScopeWrite)))
	mux.Handle("GET /v1/users/{user}/preferences", Handler(a, logger, ScopeRead, echo(ScopeRead)))
	mux.Handle("POST /v1/admin/erase/{user}", Handler(a, logger, ScopeAdmin, echo(ScopeAdmin)))
	// Require without Middleware in front: no principal, 401.
	mux.Handle("GET /v1/unguarded", Require(ScopeRead)(echo(ScopeRead)))

	rw := sign(t, jwt.SigningMethodHS256, k.secret, claims()) // sara@omg.com, *@acme.test; read write
	expired := sign(t, jwt.SigningMethodHS256, k.secret, with(claims(), "exp", testNow.Add(-time.Hour).Unix()))
	wrongSig := sign(t, jwt.SigningMethodHS256, []byte("yet-another-secret-with-32-bytes-or-more"), claims())

	tests := []struct {
		name        string
		method      string
		path        string
		auth        string
		wantStatus  int
		wantBody    []string
		wantWWWAuth string
	}{
		{name: "write own user", method: "POST", path: "/v1/users/sara@omg.com/preferences", auth: "Bearer " + rw, wantStatus: 200, wantBody: []string{`"principal":"agent-7"`}},
		{name: "read domain user", method: "GET", path: "/v1/users/joe@acme.test/preferences", auth: "Bearer " + rw, wantStatus: 200},
		{name: "foreign user", method: "POST", path: "/v1/users/liam@omg.com/preferences", auth: "Bearer " + rw, wantStatus: 403,
			wantBody: []string{`forbidden`, `agent-7`, `liam@omg.com`, `write`}},
		{name: "missing scope", method: "POST", path: "/v1/admin/erase/sara@omg.com", auth: "Bearer " + rw, wantStatus: 403,
			wantBody: []string{`lacks scope`, `admin`}, wantWWWAuth: `error="insufficient_scope", scope="admin"`},
		{name: "api key admin", method: "POST", path: "/v1/admin/erase/anyone@x.y", auth: "Bearer " + k.apiKey, wantStatus: 200},
		{name: "api key lacks write", method: "POST", path: "/v1/users/anyone@x.y/preferences", auth: "Bearer " + k.apiKey, wantStatus: 403},
		{name: "no header", method: "GET", path: "/v1/users/sara@omg.com/preferences", wantStatus: 401,
			wantBody: []string{"missing Authorization header"}, wantWWWAuth: `Bearer realm="engram"`},
		{name: "expired", method: "GET", path: "/v1/users/sara@omg.com/preferences", auth: "Bearer " + expired, wantStatus: 401,
			wantBody: []string{"token expired"}, wantWWWAuth: `error="invalid_token", error_description="token expired"`},
		{name: "wrong signature", method: "GET", path: "/v1/users/sara@omg.com/preferences", auth: "Bearer " + wrongSig, wantStatus: 401,
			wantBody: []string{"signature invalid"}},
		{name: "malformed", method: "GET", path: "/v1/users/sara@omg.com/preferences", auth: "Token abc", wantStatus: 401,
			wantBody: []string{"malformed"}},
		{name: "unknown key", method: "GET", path: "/v1/users/sara@omg.com/preferences", auth: "Bearer engram_nope", wantStatus: 401,
			wantBody: []string{"unknown API key"}},
		{name: "require without middleware", method: "GET", path: "/v1/unguarded", auth: "Bearer " + rw, wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			var prob app.Problem
			if w.Code != 200 {
				if err := json.Unmarshal(w.Body.Bytes(), &prob); err != nil || prob.Error == "" {
					t.Errorf("body %q is not a Problem", w.Body)
				}
			}
			for _, s := range tt.wantBody {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("body %q lacks %q", w.Body, s)
				}
			}
			if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, tt.wantWWWAuth) || (w.Code == 401 && got == "") {
				t.Errorf("WWW-Authenticate %q, want it to contain %q", got, tt.wantWWWAuth)
			}
		})
	}
	t.Cleanup(func() {
		out := logs.String()
		for _, secret := range []string{rw, expired, wrongSig, k.apiKey, string(k.secret)} {
			if strings.Contains(out, secret) || strings.Contains(out, strings.Split(secret, ".")[0]) {
				t.Errorf("a credential reached the log: %s", out)
			}
		}
	})
}

func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	users, _ := ParsePatterns([]string{"sara@omg.com"})
	p := &Principal{Name: "agent", Users: users, Scopes: []Scope{ScopeRead}}
	ctx := ContextWithPrincipal(context.Background(), p)
	tests := []struct {
		name    string
		ctx     context.Context
		user    string
		scope   Scope
		wantErr error
		wantMsg string
	}{
		{name: "ok", ctx: ctx, user: "sara@omg.com", scope: ScopeRead},
		{name: "no principal", ctx: context.Background(), user: "sara@omg.com", scope: ScopeRead, wantErr: ErrUnauthenticated},
		{name: "foreign user", ctx: ctx, user: "liam@omg.com", scope: ScopeRead, wantErr: ErrForbidden, wantMsg: `principal "agent" may not act for user "liam@omg.com" (scope "read")`},
		{name: "shared tenant", ctx: ctx, user: "", scope: ScopeRead, wantErr: ErrForbidden, wantMsg: "shared tenant"},
		{name: "scope", ctx: ctx, user: "sara@omg.com", scope: ScopeWrite, wantErr: ErrForbidden, wantMsg: `lacks scope "write"`},
	}
	for _, tt := range tests {
		err := Authorize(tt.ctx, tt.user, tt.scope)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.wantErr)
			continue
		}
		if err != nil {
			if !IsAuthError(err) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("%s: %q lacks %q", tt.name, err, tt.wantMsg)
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Errorf("%s: not *Error", tt.name)
			}
		}
	}
	w := httptest.NewRecorder()
	WriteError(w, errors.New("boom"))
	if w.Code != 500 {
		t.Errorf("other error: %d", w.Code)
	}
}

func TestDisabledMiddleware(t *testing.T) {
	t.Parallel()
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	logger, _ := newLogger()
	h := Handler(a, logger, ScopeAdmin, echo(ScopeAdmin))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"principal":"anonymous"`) {
		t.Errorf("status %d body %s", w.Code, w.Body)
	}
}

func TestModule(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "disabled", cfg: Config{}, want: "level=WARN msg=\"authentication disabled"},
		{name: "enabled", cfg: k.config(), want: "methods=\"[EdDSA HS256 RS256 api-key]\""},
	} {
		logger, logs := newLogger()
		var got *Authenticator
		a := fxtest.New(t, fx.Supply(logger), Module(tc.cfg), fx.Populate(&got), fx.NopLogger)
		a.RequireStart().RequireStop()
		if got == nil || got.Enabled() != tc.cfg.Enabled {
			t.Errorf("%s: authenticator %+v", tc.name, got)
		}
		if !strings.Contains(logs.String(), tc.want) {
			t.Errorf("%s: log %q lacks %q", tc.name, logs, tc.want)
		}
	}
	if err := fx.ValidateApp(fx.Supply(slog.Default()), Module(Config{Enabled: true})); err != nil {
		t.Errorf("ValidateApp: %v", err)
	}
	bad := fx.New(fx.Supply(slog.Default()), Module(Config{Enabled: true}), fx.Invoke(func(*Authenticator) {}), fx.NopLogger)
	if bad.Err() == nil || !strings.Contains(bad.Err().Error(), "no key source") {
		t.Errorf("bad config: %v", bad.Err())
	}
}
