package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenSpec describes a token to mint.
type TokenSpec struct {
	Subject  string        // sub: the principal's name
	Users    []string      // engram_users: patterns
	Scopes   []Scope       // scope
	TTL      time.Duration // exp = now + TTL
	Issuer   string        // iss, optional
	Audience string        // aud, optional
	Now      time.Time     // iat and nbf; zero: time.Now()
}

// MaxTokenTTL bounds the lifetime of a minted token.
const MaxTokenTTL = 366 * 24 * time.Hour

// SignHS256 mints an HS256 JWT for operators and tests. The spec is validated first: a
// subject, valid patterns, known scopes, 0 < TTL <= MaxTokenTTL.
func SignHS256(secret []byte, s TokenSpec) (string, error) {
	if len(secret) < MinHS256SecretBytes {
		return "", fmt.Errorf("HS256 secret: %d bytes, at least %d required", len(secret), MinHS256SecretBytes)
	}
	c, err := s.Claims()
	if err != nil {
		return "", err
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// Claims validates the spec and returns its claims, for signing with any method.
func (s TokenSpec) Claims() (Claims, error) {
	var errs []error
	if strings.TrimSpace(s.Subject) == "" {
		errs = append(errs, errors.New("subject: required"))
	}
	if _, err := ParsePatterns(s.Users); err != nil {
		errs = append(errs, fmt.Errorf("users: %w", err))
	}
	for _, sc := range s.Scopes {
		if _, err := ParseScope(string(sc)); err != nil {
			errs = append(errs, fmt.Errorf("scopes: %w", err))
		}
	}
	if s.TTL <= 0 || s.TTL > MaxTokenTTL {
		errs = append(errs, fmt.Errorf("ttl %s: want more than 0 and at most %s", s.TTL, MaxTokenTTL))
	}
	if err := errors.Join(errs...); err != nil {
		return Claims{}, err
	}
	now := s.Now
	if now.IsZero() {
		now = time.Now()
	}
	scopes := make([]string, 0, len(s.Scopes))
	for _, sc := range normalizeScopes(s.Scopes) {
		scopes = append(scopes, string(sc))
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   s.Subject,
			Issuer:    s.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.TTL)),
		},
		Users: s.Users,
		Scope: strings.Join(scopes, " "),
	}
	if s.Audience != "" {
		c.Audience = jwt.ClaimStrings{s.Audience}
	}
	return c, nil
}

// APIKeyPrefix starts every generated API key, so a leaked key is recognisable (e.g. by
// secret scanners). Keys never contain '.', which tells them from JWTs.
const APIKeyPrefix = "engram_"

// NewAPIKey returns a random API key (256 bits) and its hash for the keys file.
func NewAPIKey() (key, sha256hex string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("random API key: %w", err)
	}
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashAPIKey(key), nil
}
