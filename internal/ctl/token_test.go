package ctl

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/engram-memory/engram/internal/auth"
)

func runCtl(t *testing.T, env map[string]string, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(t.Context(), args, &o, &e, func(k string) string { return env[k] })
	return code, o.String(), e.String()
}

func TestTokenCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "hs256")
	if err := os.WriteFile(secret, []byte("a-test-secret-that-is-long-enough-0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AUTH_HS256_SECRET_FILE": secret, "AUTH_AUDIENCE": "engram"}
	code, out, errOut := runCtl(t, env, "token", "--sub", "agent-7", "--user", "sara@omg.com,*@acme.test", "--scope", "read", "--scope", "write", "--ttl", "10m")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	a, err := auth.New(auth.Config{Enabled: true, HS256SecretFile: secret, Audience: "engram"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Credential(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("minted token refused: %v", err)
	}
	if p.Name != "agent-7" || !p.CanActFor("bob@acme.test") || !p.Has(auth.ScopeWrite) || p.Has(auth.ScopeAdmin) {
		t.Errorf("principal %+v", p)
	}

	bad := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "no secret", env: map[string]string{}, args: []string{"token", "--sub", "x"}, want: "--secret-file"},
		{name: "no sub", env: env, args: []string{"token"}, want: "subject: required"},
		{name: "bad scope", env: env, args: []string{"token", "--sub", "x", "--scope", "root"}, want: `unknown scope "root"`},
		{name: "bad pattern", env: env, args: []string{"token", "--sub", "x", "--user", "sa*ra"}, want: "invalid user pattern"},
		{name: "bad ttl", env: env, args: []string{"token", "--sub", "x", "--ttl", "-1m"}, want: "ttl"},
	}
	for _, tt := range bad {
		code, out, errOut := runCtl(t, tt.env, tt.args...)
		if code == 0 || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: exit %d, out %q, err %q; want %q", tt.name, code, out, errOut, tt.want)
		}
		if strings.Contains(errOut, "a-test-secret") {
			t.Errorf("%s: secret in the error output", tt.name)
		}
	}
}

func TestAPIKeyCommand(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCtl(t, nil, "apikey", "--name", "tools", "--user", "*", "--scope", "read,admin")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var e auth.APIKeyEntry
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("entry %q: %v", out, err)
	}
	_, key, ok := strings.Cut(strings.TrimSpace(errOut), "): ")
	if !ok || !strings.HasPrefix(key, auth.APIKeyPrefix) || strings.Contains(out, key) {
		t.Fatalf("key %q, entry %s", key, out)
	}
	// The entry, as a keys file, authenticates the key.
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	raw, _ := json.Marshal([]auth.APIKeyEntry{e})
	if err := os.WriteFile(keys, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Enabled: true, APIKeysFile: keys})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Credential(key)
	if err != nil || p.Name != "tools" || !p.Has(auth.ScopeAdmin) || !p.CanActFor("anyone") {
		t.Fatalf("principal %+v, %v", p, err)
	}

	keyFile := filepath.Join(dir, "key")
	code, _, errOut = runCtl(t, nil, "apikey", "--name", "x", "--scope", "read", "--key-out", keyFile)
	if code != 0 || strings.Contains(errOut, auth.APIKeyPrefix) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if code, _, _ := runCtl(t, nil, "apikey", "--name", "x", "--scope", "read", "--key-out", keyFile); code == 0 {
		t.Error("overwrote an existing key file")
	}
	code, _, errOut = runCtl(t, nil, "apikey", "--user", "a*")
	for _, want := range []string{"--name is required", "--user", "--scope"} {
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("bad flags: exit %d, %q lacks %q", code, errOut, want)
		}
	}
}

func TestNATSUserCommand(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCtl(t, nil, "nats-user", "--user", "sara@omg.com")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{`"mem.sara_40omg_2Ecom.preference_added"`, `"_INBOX_sara_40omg_2Ecom.>"`, "nkey: U"} {
		if !strings.Contains(out, want) {
			t.Errorf("entry lacks %s:\n%s", want, out)
		}
	}
	// The seed goes to standard error only, and is the key pair of the entry's nkey.
	_, seed, ok := strings.Cut(errOut, "secret): ")
	seed, _, _ = strings.Cut(seed, "\n")
	kp, err := nkeys.FromSeed([]byte(seed))
	if !ok || err != nil {
		t.Fatalf("seed %q: %v", seed, err)
	}
	if pub, _ := kp.PublicKey(); !strings.Contains(out, "nkey: "+pub) || strings.Contains(out, seed) {
		t.Errorf("entry does not match the seed, or holds it:\n%s", out)
	}
	own, _ := nkeys.CreateUser()
	pub, _ := own.PublicKey()
	code, out, errOut = runCtl(t, nil, "nats-user", "--user", "liam@omg.com", "--nkey", pub)
	if code != 0 || !strings.Contains(out, "nkey: "+pub) || strings.Contains(errOut, "seed") {
		t.Errorf("own key: exit %d, %s, %s", code, out, errOut)
	}
	for _, args := range [][]string{{"nats-user"}, {"nats-user", "--user", "a\tb"}, {"nats-user", "--user", "x", "--nkey", "bad"}} {
		if code, out, _ := runCtl(t, nil, args...); code == 0 || out != "" {
			t.Errorf("%v: exit %d, out %q", args, code, out)
		}
	}
}
