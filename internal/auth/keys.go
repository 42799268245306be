package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MinHS256SecretBytes is the shortest HS256 secret accepted (RFC 7518 §3.2: at least the
// hash size).
const MinHS256SecretBytes = 32

// MinRSABits is the smallest RSA modulus accepted for RS256.
const MinRSABits = 2048

// LoadHS256Secret reads an HS256 secret file. Trailing whitespace (a final newline) is not
// part of the secret. Errors name the file, never its content.
func LoadHS256Secret(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("HS256 secret file: %w", err)
	}
	secret := bytes.TrimRight(raw, " \t\r\n")
	if len(secret) < MinHS256SecretBytes {
		return nil, fmt.Errorf("HS256 secret file %s: %d bytes, at least %d required", path, len(secret), MinHS256SecretBytes)
	}
	return secret, nil
}

// LoadRSAPublicKeys reads one or more PEM public keys ("PUBLIC KEY" or "RSA PUBLIC KEY");
// several keys allow rotation: a token verifies if any of them verifies it.
func LoadRSAPublicKeys(path string) ([]*rsa.PublicKey, error) {
	blocks, err := readPEM(path, "RS256 public key")
	if err != nil {
		return nil, err
	}
	var keys []*rsa.PublicKey
	for i, b := range blocks {
		var pub any
		switch b.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		default:
			err = fmt.Errorf("PEM type %q, want PUBLIC KEY or RSA PUBLIC KEY", b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("RS256 public key file %s, block %d: %w", path, i+1, err)
		}
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("RS256 public key file %s, block %d: a %T, not an RSA key", path, i+1, pub)
		}
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RS256 public key file %s, block %d: %d bits, at least %d required", path, i+1, k.N.BitLen(), MinRSABits)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// LoadEd25519PublicKeys reads one or more PEM "PUBLIC KEY" blocks holding Ed25519 keys.
func LoadEd25519PublicKeys(path string) ([]ed25519.PublicKey, error) {
	blocks, err := readPEM(path, "EdDSA public key")
	if err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for i, b := range blocks {
		if b.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("EdDSA public key file %s, block %d: PEM type %q, want PUBLIC KEY", path, i+1, b.Type)
		}
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("EdDSA public key file %s, block %d: %w", path, i+1, err)
		}
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("EdDSA public key file %s, block %d: a %T, not an Ed25519 key", path, i+1, pub)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func readPEM(path, what string) ([]*pem.Block, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s file: %w", what, err)
	}
	var blocks []*pem.Block
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%s file %s: no PEM block", what, path)
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		return nil, fmt.Errorf("%s file %s: data after the last PEM block", what, path)
	}
	return blocks, nil
}

// APIKeyEntry is one entry of the API keys file: the SHA-256 of the key (hex), never the
// key itself.
type APIKeyEntry struct {
	KeySHA256 string   `json:"key_sha256"`
	Name      string   `json:"name"`
	Users     []string `json:"users"`
	Scopes    []string `json:"scopes"`
}

type apiKey struct {
	hash      [sha256.Size]byte
	principal Principal
}

// HashAPIKey returns the hex SHA-256 of an API key, as the keys file stores it.
func HashAPIKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// loadAPIKeys reads the API keys file: a JSON array of APIKeyEntry. Every problem is
// reported, naming the file, the entry and the field.
func loadAPIKeys(path string) ([]apiKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("API keys file: %w", err)
	}
	var entries []APIKeyEntry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("API keys file %s: want a JSON array of {key_sha256, name, users, scopes}: %w", path, err)
	}
	var errs []error
	keys := make([]apiKey, 0, len(entries))
	seen := map[string]int{}
	for i, e := range entries {
		k, err := e.parse()
		if err != nil {
			errs = append(errs, fmt.Errorf("API keys file %s, entry %d (%q): %w", path, i, e.Name, err))
			continue
		}
		if j, dup := seen[e.KeySHA256]; dup {
			errs = append(errs, fmt.Errorf("API keys file %s, entry %d (%q): key_sha256 repeats entry %d", path, i, e.Name, j))
			continue
		}
		seen[e.KeySHA256] = i
		keys = append(keys, k)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return keys, nil
}

func (e APIKeyEntry) parse() (apiKey, error) {
	var k apiKey
	var errs []error
	if b, err := hex.DecodeString(e.KeySHA256); err != nil || len(b) != sha256.Size || strings.ToLower(e.KeySHA256) != e.KeySHA256 {
		errs = append(errs, errors.New("key_sha256: want 64 lower-case hex digits"))
	} else {
		copy(k.hash[:], b)
	}
	if strings.TrimSpace(e.Name) == "" {
		errs = append(errs, errors.New("name: required"))
	}
	users, err := ParsePatterns(e.Users)
	if err != nil {
		errs = append(errs, fmt.Errorf("users: %w", err))
	}
	var scopes []Scope
	for _, s := range e.Scopes {
		sc, err := ParseScope(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("scopes: %w", err))
			continue
		}
		scopes = append(scopes, sc)
	}
	if len(e.Scopes) == 0 {
		errs = append(errs, errors.New("scopes: at least one of read, write, admin"))
	}
	if err := errors.Join(errs...); err != nil {
		return k, err
	}
	k.principal = Principal{Name: e.Name, Method: "api-key", Users: users, Scopes: normalizeScopes(scopes)}
	return k, nil
}

// lookupAPIKey compares the key's hash with every entry in constant time; it looks at all
// entries whatever matches.
func lookupAPIKey(keys []apiKey, key string) (*Principal, bool) {
	h := sha256.Sum256([]byte(key))
	found := -1
	for i := range keys {
		if subtle.ConstantTimeCompare(h[:], keys[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return nil, false
	}
	p := keys[found].principal
	return &p, true
}
