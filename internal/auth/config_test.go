package auth

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/app"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	k := newTestKeys(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	short := writeFile(t, dir, "short.secret", []byte("too short\n"))
	notPEM := writeFile(t, dir, "not.pem", []byte("hello"))
	edAsRSA := k.edFile
	smallRSA := func() string {
		der := x509.MarshalPKCS1PublicKey(&rsaKey(t, 0).PublicKey)
		return writeFile(t, dir, "pkcs1.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: der}))
	}()
	badKeys := func(v any) string {
		raw, _ := json.Marshal(v)
		return writeFile(t, t.TempDir(), "keys.json", raw)
	}
	tests := []struct {
		name     string
		cfg      Config
		wantErr  bool
		mentions []string
	}{
		{name: "disabled, nothing set", cfg: Config{}},
		{name: "disabled ignores files", cfg: Config{HS256SecretFile: missing}},
		{name: "full", cfg: k.config()},
		{name: "PKCS1 RSA key", cfg: Config{Enabled: true, RS256PublicKeyFile: smallRSA}},
		{name: "enabled without source", cfg: Config{Enabled: true}, wantErr: true, mentions: []string{"no key source"}},
		{name: "leeway", cfg: Config{Leeway: time.Hour}, wantErr: true, mentions: []string{"AUTH_LEEWAY"}},
		{name: "unreadable files", cfg: Config{Enabled: true, HS256SecretFile: missing, APIKeysFile: missing + ".json"}, wantErr: true,
			mentions: []string{"AUTH_HS256_SECRET_FILE", missing, "AUTH_API_KEYS_FILE", missing + ".json"}},
		{name: "short secret", cfg: Config{Enabled: true, HS256SecretFile: short}, wantErr: true, mentions: []string{short, "at least 32"}},
		{name: "not PEM", cfg: Config{Enabled: true, RS256PublicKeyFile: notPEM}, wantErr: true, mentions: []string{"AUTH_RS256_PUBLIC_KEY_FILE", notPEM}},
		{name: "Ed25519 key as RSA", cfg: Config{Enabled: true, RS256PublicKeyFile: edAsRSA}, wantErr: true, mentions: []string{"not an RSA key"}},
		{name: "RSA key as Ed25519", cfg: Config{Enabled: true, EdDSAPublicKeyFile: k.rsaFile}, wantErr: true, mentions: []string{"AUTH_EDDSA_PUBLIC_KEY_FILE", "not an Ed25519 key"}},
		{name: "keys file not an array", cfg: Config{Enabled: true, APIKeysFile: badKeys(map[string]string{"a": "b"})}, wantErr: true, mentions: []string{"JSON array"}},
		{name: "keys file bad entries", cfg: Config{Enabled: true, APIKeysFile: badKeys([]map[string]any{
			{"key_sha256": "abc", "name": "", "users": []string{"x*"}, "scopes": []string{"root"}},
			{"key_sha256": HashAPIKey("a"), "name": "a", "users": []string{"*"}, "scopes": []string{"read"}},
			{"key_sha256": HashAPIKey("a"), "name": "dup", "users": []string{"*"}, "scopes": []string{"read"}},
			{"key_sha256": HashAPIKey("b"), "name": "noscope", "users": []string{"*"}},
		})}, wantErr: true, mentions: []string{"entry 0", "key_sha256", "name: required", "users:", "scopes:", "entry 2", "repeats entry 1", "entry 3"}},
		{name: "keys file unknown field", cfg: Config{Enabled: true, APIKeysFile: badKeys([]map[string]any{
			{"key": "plaintext", "name": "a", "users": []string{"*"}, "scopes": []string{"read"}},
		})}, wantErr: true, mentions: []string{"unknown field"}},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: Validate() = %v, wantErr %v", tt.name, err, tt.wantErr)
			continue
		}
		for _, m := range tt.mentions {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%s: error %q does not mention %q", tt.name, err, m)
			}
		}
		if _, nerr := New(tt.cfg); (nerr != nil) != tt.wantErr {
			t.Errorf("%s: New() = %v, wantErr %v", tt.name, nerr, tt.wantErr)
		}
	}
}

// The secret never appears in an error, even when the file is refused.
func TestConfigErrorsHideSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := "s3cr3t-value-never-shown"
	f := writeFile(t, dir, "short", []byte(secret))
	err := Config{Enabled: true, HS256SecretFile: f}.Validate()
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("err %v", err)
	}
}

func TestBind(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"AUTH_ENABLED":               "true",
		"AUTH_HS256_SECRET_FILE":     "/run/secrets/hs",
		"AUTH_RS256_PUBLIC_KEY_FILE": "/etc/engram/rs.pem",
		"AUTH_EDDSA_PUBLIC_KEY_FILE": "/etc/engram/ed.pem",
		"AUTH_API_KEYS_FILE":         "/etc/engram/keys.json",
		"AUTH_ISSUER":                "https://idp",
		"AUTH_AUDIENCE":              "engram",
	}
	var c Config
	f := app.NewFlags(flag.NewFlagSet("t", flag.ContinueOnError), func(k string) string { return env[k] })
	Bind(f, &c)
	if err := f.Parse([]string{"-auth-leeway", "10s"}); err != nil {
		t.Fatal(err)
	}
	want := Config{Enabled: true, HS256SecretFile: "/run/secrets/hs", RS256PublicKeyFile: "/etc/engram/rs.pem",
		EdDSAPublicKeyFile: "/etc/engram/ed.pem", APIKeysFile: "/etc/engram/keys.json", Issuer: "https://idp", Audience: "engram", Leeway: 10 * time.Second}
	if c != want {
		t.Errorf("got %+v\nwant %+v", c, want)
	}

	var d Config
	f = app.NewFlags(flag.NewFlagSet("t", flag.ContinueOnError), func(k string) string { return map[string]string{"AUTH_ENABLED": "maybe"}[k] })
	Bind(f, &d)
	if err := f.Parse(nil); err == nil || !strings.Contains(err.Error(), "AUTH_ENABLED") {
		t.Errorf("bad AUTH_ENABLED: %v", err)
	}
	if d.Leeway != DefaultLeeway || d.Enabled {
		t.Errorf("defaults %+v", d)
	}
}

func TestLoadKeysFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	trailing := writeFile(t, dir, "trail.pem", append(pemPublic(t, &rsaKey(t, 0).PublicKey), []byte("junk")...))
	if _, err := LoadRSAPublicKeys(trailing); err == nil {
		t.Error("data after PEM accepted")
	}
	if _, err := LoadHS256Secret(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing secret: %v", err)
	}
}
