package auth

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	cfg := k.config()
	cfg.Issuer = "https://idp.test"
	cfg.Audience = "engram"
	a, err := New(cfg, WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	good := with(claims(), "iss", "https://idp.test", "aud", "engram")
	rsaPubDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	otherSecret := []byte("another-secret-of-at-least-32-bytes!!")
	noneTok, err := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	hsGood := sign(t, jwt.SigningMethodHS256, k.secret, good)
	parts := strings.Split(hsGood, ".")
	unknownAlgHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XX999","typ":"JWT"}`))

	tests := []struct {
		name       string
		header     []string // Authorization header values; nil: none
		wantErr    error
		wantReason error
		wantName   string
		wantScopes []Scope
	}{
		{name: "HS256", header: []string{"Bearer " + hsGood}, wantName: "agent-7", wantScopes: []Scope{ScopeRead, ScopeWrite}},
		{name: "scheme is case-insensitive", header: []string{"bearer " + hsGood}, wantName: "agent-7"},
		{name: "RS256", header: []string{"Bearer " + sign(t, jwt.SigningMethodRS256, k.rsa, good)}, wantName: "agent-7"},
		{name: "RS256 rotated key", header: []string{"Bearer " + sign(t, jwt.SigningMethodRS256, k.rsa2, good)}, wantName: "agent-7"},
		{name: "EdDSA", header: []string{"Bearer " + sign(t, jwt.SigningMethodEdDSA, k.ed, good)}, wantName: "agent-7"},
		{name: "API key", header: []string{"Bearer " + k.apiKey}, wantName: "projector-tools", wantScopes: []Scope{ScopeRead, ScopeAdmin}},
		{name: "expired within leeway", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "exp", testNow.Add(-10*time.Second).Unix()))}, wantName: "agent-7"},
		{name: "unknown scopes ignored", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "scope", "openid admin email"))}, wantName: "agent-7", wantScopes: []Scope{ScopeAdmin}},
		{name: "engram_users as one string", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "engram_users", "sara@omg.com"))}, wantName: "agent-7"},
		{name: "aud as list", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "aud", []string{"other", "engram"}))}, wantName: "agent-7"},

		{name: "missing header", wantErr: ErrUnauthenticated, wantReason: ErrNoCredentials},
		{name: "empty header", header: []string{""}, wantErr: ErrUnauthenticated, wantReason: ErrNoCredentials},
		{name: "two headers", header: []string{"Bearer " + hsGood, "Bearer " + hsGood}, wantErr: ErrUnauthenticated, wantReason: ErrMalformed},
		{name: "basic scheme", header: []string{"Basic dXNlcjpwYXNz"}, wantErr: ErrUnauthenticated, wantReason: ErrMalformed},
		{name: "bearer without token", header: []string{"Bearer "}, wantErr: ErrUnauthenticated, wantReason: ErrMalformed},
		{name: "bad characters", header: []string{"Bearer a\"b"}, wantErr: ErrUnauthenticated, wantReason: ErrMalformed},
		{name: "malformed JWT", header: []string{"Bearer abc.def.ghi"}, wantErr: ErrUnauthenticated, wantReason: ErrMalformed},
		{name: "two segments", header: []string{"Bearer " + parts[0] + "." + parts[1]}, wantErr: ErrUnauthenticated, wantReason: ErrMalformed},
		{name: "expired", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "exp", testNow.Add(-time.Hour).Unix()))}, wantErr: ErrUnauthenticated, wantReason: ErrExpired},
		{name: "nbf in future", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "nbf", testNow.Add(time.Hour).Unix()))}, wantErr: ErrUnauthenticated, wantReason: ErrNotYetValid},
		{name: "iat in future", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "iat", testNow.Add(time.Hour).Unix()))}, wantErr: ErrUnauthenticated, wantReason: ErrIssuedLater},
		{name: "no exp", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "exp", nil))}, wantErr: ErrUnauthenticated, wantReason: ErrClaims},
		{name: "no sub", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "sub", nil))}, wantErr: ErrUnauthenticated, wantReason: ErrClaims},
		{name: "bad user pattern", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "engram_users", []string{"sara*"}))}, wantErr: ErrUnauthenticated, wantReason: ErrClaims},
		{name: "HS256 wrong secret", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, otherSecret, good)}, wantErr: ErrUnauthenticated, wantReason: ErrSignature},
		{name: "RS256 unknown key", header: []string{"Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey(t, 2), good)}, wantErr: ErrUnauthenticated, wantReason: ErrSignature},
		{name: "tampered payload", header: []string{"Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"root","engram_users":["*"],"scope":"admin","exp":9999999999}`)) + "." + parts[2]}, wantErr: ErrUnauthenticated, wantReason: ErrSignature},
		{name: "alg none", header: []string{"Bearer " + noneTok}, wantErr: ErrUnauthenticated, wantReason: ErrAlgorithm},
		{name: "alg unknown", header: []string{"Bearer " + unknownAlgHeader + "." + parts[1] + "." + parts[2]}, wantErr: ErrUnauthenticated, wantReason: ErrAlgorithm},
		{name: "alg not configured (RS384)", header: []string{"Bearer " + sign(t, jwt.SigningMethodRS384, k.rsa, good)}, wantErr: ErrUnauthenticated, wantReason: ErrAlgorithm},
		// Classic confusion: HS256 "signed" with the RS256 public key as the secret.
		{name: "alg confusion HS256 with RSA public key", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, rsaPubDER, good)}, wantErr: ErrUnauthenticated, wantReason: ErrSignature},
		{name: "wrong audience", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "aud", "someone-else"))}, wantErr: ErrUnauthenticated, wantReason: ErrAudience},
		{name: "missing audience", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "aud", nil))}, wantErr: ErrUnauthenticated, wantReason: ErrAudience},
		{name: "wrong issuer", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "iss", "https://evil.test"))}, wantErr: ErrUnauthenticated, wantReason: ErrIssuer},
		{name: "missing issuer", header: []string{"Bearer " + sign(t, jwt.SigningMethodHS256, k.secret, with(good, "iss", nil))}, wantErr: ErrUnauthenticated, wantReason: ErrIssuer},
		{name: "unknown API key", header: []string{"Bearer engram_notakey"}, wantErr: ErrUnauthenticated, wantReason: ErrUnknownAPIKey},
		{name: "API key prefix of a real one", header: []string{"Bearer " + k.apiKey[:len(k.apiKey)-1]}, wantErr: ErrUnauthenticated, wantReason: ErrUnknownAPIKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/v1/x", nil)
			for _, h := range tt.header {
				r.Header.Add("Authorization", h)
			}
			p, err := a.Authenticate(r)
			if !errors.Is(err, tt.wantErr) || (tt.wantReason != nil && !errors.Is(err, tt.wantReason)) {
				t.Fatalf("err = %v, want %v and %v", err, tt.wantErr, tt.wantReason)
			}
			if err != nil {
				var ae *Error
				if !errors.As(err, &ae) {
					t.Fatalf("err %T is not *Error", err)
				}
				for _, h := range tt.header {
					if cred, _, _ := strings.Cut(strings.TrimPrefix(h, "Bearer "), "."); len(cred) > 8 && strings.Contains(err.Error(), cred) {
						t.Errorf("error %q contains the credential", err)
					}
				}
				return
			}
			if p.Name != tt.wantName {
				t.Errorf("name %q, want %q", p.Name, tt.wantName)
			}
			if tt.wantScopes != nil && !slices.Equal(p.Scopes, tt.wantScopes) {
				t.Errorf("scopes %v, want %v", p.Scopes, tt.wantScopes)
			}
		})
	}
}

func TestAuthenticatePrincipal(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	a, err := New(k.config(), WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Credential(sign(t, jwt.SigningMethodEdDSA, k.ed, claims()))
	if err != nil {
		t.Fatal(err)
	}
	if p.Method != "jwt" {
		t.Errorf("method %q", p.Method)
	}
	for id, want := range map[string]bool{
		"sara@omg.com": true, "liam@omg.com": false, "bob@acme.test": true, "bob@evil.acme.test": false, "": false,
	} {
		if got := p.CanActFor(id); got != want {
			t.Errorf("CanActFor(%q) = %v, want %v", id, got, want)
		}
	}
	ap, err := a.Credential(k.apiKey)
	if err != nil {
		t.Fatal(err)
	}
	if ap.Method != "api-key" || !ap.CanActFor("anyone@anywhere") || !ap.CanActFor("") {
		t.Errorf("API key principal %+v", ap)
	}
}

// An authenticator with only asymmetric keys must refuse HS256 outright, whatever secret
// signed it (in particular its own public key).
func TestAlgorithmPinnedWithoutHS256(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	cfg := Config{Enabled: true, RS256PublicKeyFile: k.rsaFile, EdDSAPublicKeyFile: k.edFile}
	a, err := New(cfg, WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pemPublic(t, &k.rsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	for name, secret := range map[string][]byte{"pem": pemBytes, "der": der} {
		_, err := a.Credential(sign(t, jwt.SigningMethodHS256, secret, claims()))
		if !errors.Is(err, ErrAlgorithm) {
			t.Errorf("HS256 with RSA public key (%s): err %v, want ErrAlgorithm", name, err)
		}
	}
	// EdDSA token verified against the RSA keys: refused by signature, never accepted.
	_, err = a.Credential(sign(t, jwt.SigningMethodEdDSA, k.ed, claims()))
	if err != nil {
		t.Errorf("EdDSA refused: %v", err)
	}
	if _, err := a.Credential(k.apiKey); !errors.Is(err, ErrUnknownAPIKey) {
		t.Errorf("API key without a keys file: %v", err)
	}
	onlyKeys, err := New(Config{Enabled: true, APIKeysFile: k.apiFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onlyKeys.Credential(sign(t, jwt.SigningMethodHS256, k.secret, claims())); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("JWT against API keys only: %v", err)
	}
}

func TestDisabledIsAnonymous(t *testing.T) {
	t.Parallel()
	a, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer garbage.garbage.garbage")
	p, err := a.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != AnonymousName || !p.CanActFor("anyone") || !p.CanActFor("") || !slices.Equal(p.Scopes, AllScopes) {
		t.Errorf("anonymous principal %+v", p)
	}
	if a.Enabled() {
		t.Error("Enabled() true")
	}
}

func TestSignHS256RoundTrip(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	cfg := k.config()
	cfg.Issuer, cfg.Audience = "memctl", "engram"
	a, err := New(cfg, WithClock(fixedClock))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := SignHS256(k.secret, TokenSpec{
		Subject: "ops", Users: []string{"*@omg.com"}, Scopes: []Scope{ScopeAdmin, ScopeRead, ScopeAdmin},
		TTL: time.Hour, Issuer: "memctl", Audience: "engram", Now: testNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Credential(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "ops" || !slices.Equal(p.Scopes, []Scope{ScopeRead, ScopeAdmin}) || !p.CanActFor("sara@omg.com") {
		t.Errorf("principal %+v", p)
	}

	bad := []struct {
		name    string
		secret  []byte
		spec    TokenSpec
		wantErr error
	}{
		{name: "short secret", secret: []byte("short"), spec: TokenSpec{Subject: "x", TTL: time.Hour}},
		{name: "no subject", secret: k.secret, spec: TokenSpec{TTL: time.Hour}},
		{name: "bad pattern", secret: k.secret, spec: TokenSpec{Subject: "x", Users: []string{"a*b"}, TTL: time.Hour}, wantErr: ErrInvalidPattern},
		{name: "bad scope", secret: k.secret, spec: TokenSpec{Subject: "x", Scopes: []Scope{"root"}, TTL: time.Hour}, wantErr: ErrUnknownScope},
		{name: "no ttl", secret: k.secret, spec: TokenSpec{Subject: "x"}},
	}
	for _, tt := range bad {
		_, err := SignHS256(tt.secret, tt.spec)
		if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}
