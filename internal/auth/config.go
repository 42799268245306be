package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/engram-memory/engram/internal/app"
)

// MaxLeeway bounds Config.Leeway: clock skew, not a grace period.
const MaxLeeway = 5 * time.Minute

// Config says how requests are authenticated. With Enabled false every request acts as the
// Anonymous principal. Each file is optional, but an enabled configuration needs at least one.
type Config struct {
	Enabled            bool
	HS256SecretFile    string        // shared secret (at least 32 bytes) for HS256 JWTs
	RS256PublicKeyFile string        // PEM public key(s) for RS256 JWTs
	EdDSAPublicKeyFile string        // PEM Ed25519 public key(s) for EdDSA JWTs
	APIKeysFile        string        // JSON array of APIKeyEntry
	Issuer             string        // required "iss" of JWTs when set
	Audience           string        // required in "aud" of JWTs when set
	Leeway             time.Duration // allowed clock skew for exp, nbf and iat
}

// Validate reports every problem at once; it reads and parses each configured file, and each
// error names the setting and the file.
func (c Config) Validate() error {
	var errs []error
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		errs = append(errs, fmt.Errorf("AUTH_LEEWAY %s: want between 0 and %s", c.Leeway, MaxLeeway))
	}
	if !c.Enabled {
		return errors.Join(errs...)
	}
	if c.HS256SecretFile == "" && c.RS256PublicKeyFile == "" && c.EdDSAPublicKeyFile == "" && c.APIKeysFile == "" {
		errs = append(errs, errors.New("AUTH_ENABLED is true but no key source is set: set AUTH_HS256_SECRET_FILE, AUTH_RS256_PUBLIC_KEY_FILE, AUTH_EDDSA_PUBLIC_KEY_FILE or AUTH_API_KEYS_FILE"))
	}
	if _, err := c.load(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// keyMaterial is what the configured files hold.
type keyMaterial struct {
	hs256   []byte
	rs256   []any // *rsa.PublicKey
	eddsa   []any // ed25519.PublicKey
	apiKeys []apiKey
}

func (c Config) load() (keyMaterial, error) {
	var m keyMaterial
	var errs []error
	if c.HS256SecretFile != "" {
		s, err := LoadHS256Secret(c.HS256SecretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("AUTH_HS256_SECRET_FILE: %w", err))
		}
		m.hs256 = s
	}
	if c.RS256PublicKeyFile != "" {
		ks, err := LoadRSAPublicKeys(c.RS256PublicKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("AUTH_RS256_PUBLIC_KEY_FILE: %w", err))
		}
		for _, k := range ks {
			m.rs256 = append(m.rs256, k)
		}
	}
	if c.EdDSAPublicKeyFile != "" {
		ks, err := LoadEd25519PublicKeys(c.EdDSAPublicKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("AUTH_EDDSA_PUBLIC_KEY_FILE: %w", err))
		}
		for _, k := range ks {
			m.eddsa = append(m.eddsa, k)
		}
	}
	if c.APIKeysFile != "" {
		ks, err := loadAPIKeys(c.APIKeysFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("AUTH_API_KEYS_FILE: %w", err))
		}
		m.apiKeys = ks
	}
	return m, errors.Join(errs...)
}

// DefaultLeeway is the clock skew Bind allows by default.
const DefaultLeeway = 30 * time.Second

// Bind binds the settings to flags and environment: off by default (the dev stack), on in
// the production deploy configuration.
func Bind(f *app.Flags, c *Config) {
	f.Bool(&c.Enabled, "auth-enabled", "AUTH_ENABLED", false, "authenticate HTTP requests (off: every request is the anonymous principal with every scope)")
	f.String(&c.HS256SecretFile, "auth-hs256-secret-file", "AUTH_HS256_SECRET_FILE", "", "file holding the HS256 JWT secret (at least 32 bytes)")
	f.String(&c.RS256PublicKeyFile, "auth-rs256-public-key-file", "AUTH_RS256_PUBLIC_KEY_FILE", "", "PEM file of the RS256 JWT public key(s)")
	f.String(&c.EdDSAPublicKeyFile, "auth-eddsa-public-key-file", "AUTH_EDDSA_PUBLIC_KEY_FILE", "", "PEM file of the EdDSA (Ed25519) JWT public key(s)")
	f.String(&c.APIKeysFile, "auth-api-keys-file", "AUTH_API_KEYS_FILE", "", "JSON file of API key entries (memctl apikey)")
	f.String(&c.Issuer, "auth-issuer", "AUTH_ISSUER", "", "required JWT issuer (iss); empty: not checked")
	f.String(&c.Audience, "auth-audience", "AUTH_AUDIENCE", "", "required JWT audience (aud); empty: not checked")
	f.Duration(&c.Leeway, "auth-leeway", "AUTH_LEEWAY", DefaultLeeway, "allowed clock skew for exp, nbf and iat")
}
