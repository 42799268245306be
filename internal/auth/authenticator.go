package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claim names Engram reads from a JWT besides the registered ones (sub, exp, nbf, iat, iss, aud).
const (
	ClaimUsers = "engram_users" // array of user patterns (or one string)
	ClaimScope = "scope"        // space-separated scopes, as in OAuth 2.0 (RFC 8693 §4.2)
)

// Claims is the payload of an Engram JWT.
type Claims struct {
	jwt.RegisteredClaims
	Users jwt.ClaimStrings `json:"engram_users,omitempty"`
	Scope string           `json:"scope,omitempty"`
}

// Authenticator turns a request's credentials into a Principal. Build it with New; with
// authentication disabled it returns Anonymous for every request.
type Authenticator struct {
	enabled bool
	keys    map[string]any // JWT alg -> key or jwt.VerificationKeySet; the alg is pinned per key
	apiKeys []apiKey
	parser  *jwt.Parser
	// issuer and audience are required when set; kept to name a missing claim.
	issuer, audience string
}

// Option configures an Authenticator.
type Option func(*options) error

type options struct{ now func() time.Time }

// WithClock sets the clock tokens are checked against (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("auth.WithClock: nil clock")
		}
		o.now = now
		return nil
	}
}

// New builds an Authenticator from a configuration, reading its key files.
func New(c Config, opts ...Option) (*Authenticator, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	if !c.Enabled {
		return &Authenticator{}, nil
	}
	m, err := c.load()
	if err != nil {
		return nil, fmt.Errorf("auth config: %w", err)
	}
	a := &Authenticator{enabled: true, keys: map[string]any{}, apiKeys: m.apiKeys, issuer: c.Issuer, audience: c.Audience}
	if m.hs256 != nil {
		a.keys[jwt.SigningMethodHS256.Alg()] = m.hs256
	}
	if len(m.rs256) > 0 {
		a.keys[jwt.SigningMethodRS256.Alg()] = keySet(m.rs256)
	}
	if len(m.eddsa) > 0 {
		a.keys[jwt.SigningMethodEdDSA.Alg()] = keySet(m.eddsa)
	}
	popts := []jwt.ParserOption{
		// RFC 7515 §2: base64url without padding, canonical: else one signature has four
		// spellings (the unused low bits of the last character), so one token many strings.
		jwt.WithStrictDecoding(),
		jwt.WithLeeway(c.Leeway),
		jwt.WithTimeFunc(o.now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if c.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		popts = append(popts, jwt.WithAudience(c.Audience))
	}
	a.parser = jwt.NewParser(popts...)
	return a, nil
}

func keySet(keys []any) any {
	if len(keys) == 1 {
		return keys[0]
	}
	s := jwt.VerificationKeySet{}
	for _, k := range keys {
		s.Keys = append(s.Keys, k)
	}
	return s
}

// Enabled reports whether requests are authenticated (false: everyone is Anonymous).
func (a *Authenticator) Enabled() bool { return a.enabled }

// Methods names the accepted credentials: JWT algorithms and "api-key".
func (a *Authenticator) Methods() []string {
	var out []string
	for alg := range a.keys {
		out = append(out, alg)
	}
	sort.Strings(out)
	if len(a.apiKeys) > 0 {
		out = append(out, "api-key")
	}
	return out
}

// Authenticate returns the principal of a request's Authorization header. Every error is an
// *Error wrapping ErrUnauthenticated and a reason (ErrNoCredentials, ErrExpired, ...).
func (a *Authenticator) Authenticate(r *http.Request) (*Principal, error) {
	if !a.enabled {
		return Anonymous(), nil
	}
	hs := r.Header.Values("Authorization")
	switch len(hs) {
	case 0:
		return nil, unauthenticated(ErrNoCredentials, "")
	case 1:
	default:
		return nil, unauthenticated(ErrMalformed, "more than one Authorization header")
	}
	cred, err := ParseAuthorization(hs[0])
	if err != nil {
		if errors.Is(err, ErrNoCredentials) {
			return nil, unauthenticated(ErrNoCredentials, "")
		}
		return nil, unauthenticated(ErrMalformed, strings.TrimPrefix(err.Error(), ErrMalformed.Error()+": "))
	}
	return a.Credential(cred)
}

// Credential authenticates a bearer credential: a JWT when it contains a '.', else an API key.
func (a *Authenticator) Credential(cred string) (*Principal, error) {
	if !a.enabled {
		return Anonymous(), nil
	}
	if isJWT(cred) {
		return a.verifyJWT(cred)
	}
	if p, ok := lookupAPIKey(a.apiKeys, cred); ok {
		return p, nil
	}
	return nil, unauthenticated(ErrUnknownAPIKey, "")
}

func (a *Authenticator) verifyJWT(tok string) (*Principal, error) {
	if len(a.keys) == 0 {
		return nil, unauthenticated(ErrAlgorithm, "this server accepts no JWTs, only API keys")
	}
	var claims Claims
	parsed, err := a.parser.ParseWithClaims(tok, &claims, func(t *jwt.Token) (any, error) {
		k, ok := a.keys[t.Method.Alg()]
		if !ok {
			return nil, ErrAlgorithm
		}
		return k, nil
	})
	if err != nil {
		e := classifyJWT(err)
		if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
			// The parser filled claims before validating them: name what is missing.
			switch {
			case claims.ExpiresAt == nil:
				e = unauthenticated(ErrClaims, "exp is required")
			case a.audience != "" && len(claims.Audience) == 0:
				e = unauthenticated(ErrAudience, "aud is required")
			case a.issuer != "" && claims.Issuer == "":
				e = unauthenticated(ErrIssuer, "iss is required")
			}
		}
		if errors.Is(e.Reason, ErrAlgorithm) {
			e.Detail = "accepted: " + strings.Join(a.jwtAlgs(), ", ")
		}
		return nil, e
	}
	if err := strictToken(a.parser, parsed); err != nil {
		return nil, err
	}
	return claimsPrincipal(claims)
}

// strictToken applies what the jwt library lets pass. RFC 7515 §4.1.11: a "crit" header
// lists extensions the recipient must understand, and this server understands none, so a
// token carrying one is refused. RFC 7519 §2: exp, nbf and iat are NumericDates, JSON
// numbers; the library also accepts numeric strings ("exp": "1772370000"). The library reads
// the claims with encoding/json, which matches member names regardless of case ("EXP" is read
// as exp): a member named like a claim Engram reads but for case is refused, since it would
// be read as that claim without being checked as one.
func strictToken(p *jwt.Parser, t *jwt.Token) error {
	if _, ok := t.Header["crit"]; ok {
		return unauthenticated(ErrMalformed, "crit header names extensions this server does not understand")
	}
	parts := strings.Split(t.Raw, ".")
	if len(parts) != 3 {
		return unauthenticated(ErrMalformed, "not a JWT")
	}
	payload, err := p.DecodeSegment(parts[1])
	if err != nil {
		return unauthenticated(ErrMalformed, "not a JWT")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(payload, &members); err != nil {
		return unauthenticated(ErrMalformed, "not a JWT")
	}
	for member := range members {
		for _, name := range readClaims {
			if member != name && strings.EqualFold(member, name) {
				return unauthenticated(ErrClaims, "a member is named "+name+" but for case; claim names are case-sensitive")
			}
		}
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		v, ok := members[name]
		if !ok {
			continue
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil || v[0] == '"' {
			return unauthenticated(ErrClaims, name+" must be a NumericDate (a JSON number)")
		}
		if f, err := n.Float64(); err != nil || f < 0 || f > maxNumericDate {
			return unauthenticated(ErrClaims, name+" must be a NumericDate from 1970 to 9999")
		}
	}
	return nil
}

// maxNumericDate is 9999-12-31T23:59:59Z. The library converts a NumericDate's float to
// int64 seconds, which for values beyond int64 (an nbf of 1e40) gives the least int64, a
// time long past: such an nbf or iat passed as met (found by FuzzJWT). Dates past year
// 9999 are refused instead, as events.CheckTime refuses them.
const maxNumericDate = 253402300799

// readClaims are the claims the authenticator reads (Claims' JSON names).
var readClaims = []string{"sub", "exp", "nbf", "iat", "iss", "aud", "jti", ClaimUsers, ClaimScope}

func (a *Authenticator) jwtAlgs() []string {
	out := make([]string, 0, len(a.keys))
	for alg := range a.keys {
		out = append(out, alg)
	}
	sort.Strings(out)
	return out
}

// classifyJWT maps the jwt library's errors to reasons. An "alg" without a configured key
// ("none" included: no key is ever configured for it) or without an implementation is an
// algorithm error. The key lookup pins each key to its algorithm, so an RS256 public key is
// never tried as an HS256 secret.
func classifyJWT(err error) *Error {
	switch {
	case errors.Is(err, ErrAlgorithm):
		return unauthenticated(ErrAlgorithm, "")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return unauthenticated(ErrMalformed, "not a JWT")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// ParseUnverified reports an alg it has no implementation for as unverifiable.
		return unauthenticated(ErrAlgorithm, "")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return unauthenticated(ErrSignature, "")
	case errors.Is(err, jwt.ErrTokenExpired):
		return unauthenticated(ErrExpired, "")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return unauthenticated(ErrNotYetValid, "")
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return unauthenticated(ErrIssuedLater, "")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return unauthenticated(ErrAudience, "")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return unauthenticated(ErrIssuer, "")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return unauthenticated(ErrClaims, "a required claim is missing")
	}
	return unauthenticated(ErrClaims, "")
}

func claimsPrincipal(c Claims) (*Principal, error) {
	if strings.TrimSpace(c.Subject) == "" {
		return nil, unauthenticated(ErrClaims, "sub is required")
	}
	users, err := ParsePatterns(c.Users)
	if err != nil {
		return nil, unauthenticated(ErrClaims, ClaimUsers+": "+err.Error())
	}
	var scopes []Scope
	for _, s := range strings.Fields(c.Scope) {
		if sc, err := ParseScope(s); err == nil {
			scopes = append(scopes, sc)
		}
	}
	return &Principal{Name: c.Subject, Method: "jwt", Users: users, Scopes: normalizeScopes(scopes)}, nil
}
