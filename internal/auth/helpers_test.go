package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testKeys is the key material of one test: files on disk plus the private halves.
type testKeys struct {
	dir        string
	secret     []byte
	secretFile string
	rsa        *rsa.PrivateKey
	rsa2       *rsa.PrivateKey // a second, rotated-in key in the same file
	rsaFile    string
	ed         ed25519.PrivateKey
	edFile     string
	apiKey     string
	apiFile    string
}

var (
	rsaOnce sync.Once
	rsaKeys [3]*rsa.PrivateKey // generating 2048-bit keys is slow: share them between tests
)

func rsaKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		for j := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[j] = k
		}
	})
	return rsaKeys[i]
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemPublic(t testing.TB, pubs ...any) []byte {
	t.Helper()
	var out []byte
	for _, pub := range pubs {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return out
}

func newTestKeys(t testing.TB) *testKeys {
	t.Helper()
	k := &testKeys{dir: t.TempDir(), rsa: rsaKey(t, 0), rsa2: rsaKey(t, 1)}
	k.secret = []byte("0123456789abcdef0123456789abcdef-test-secret")
	k.secretFile = writeFile(t, k.dir, "hs256.secret", append(append([]byte{}, k.secret...), '\n'))
	k.rsaFile = writeFile(t, k.dir, "rs256.pem", pemPublic(t, &k.rsa.PublicKey, &k.rsa2.PublicKey))
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.ed = edPriv
	k.edFile = writeFile(t, k.dir, "eddsa.pem", pemPublic(t, edPriv.Public()))
	key, hash, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	k.apiKey = key
	entries := []APIKeyEntry{
		{KeySHA256: hash, Name: "projector-tools", Users: []string{"*"}, Scopes: []string{"read", "admin"}},
		{KeySHA256: HashAPIKey("engram_other"), Name: "other", Users: []string{"x@y.z"}, Scopes: []string{"read"}},
	}
	raw, _ := json.Marshal(entries)
	k.apiFile = writeFile(t, k.dir, "apikeys.json", raw)
	return k
}

func (k *testKeys) config() Config {
	return Config{
		Enabled:            true,
		HS256SecretFile:    k.secretFile,
		RS256PublicKeyFile: k.rsaFile,
		EdDSAPublicKeyFile: k.edFile,
		APIKeysFile:        k.apiFile,
		Leeway:             30 * time.Second,
	}
}

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return testNow }

// claims returns valid claims at testNow for sara@omg.com with read and write.
func claims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":          "agent-7",
		"engram_users": []string{"sara@omg.com", "*@acme.test"},
		"scope":        "read write",
		"iat":          testNow.Add(-time.Minute).Unix(),
		"nbf":          testNow.Add(-time.Minute).Unix(),
		"exp":          testNow.Add(time.Hour).Unix(),
	}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
