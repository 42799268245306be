package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/engram-memory/engram/internal/events"
)

// Scope is what a principal may do: read (query GETs), write (ingestor POST/PUT) or admin
// (replay, erasure, dead letters). Scopes do not imply one another.
type Scope string

// The scopes Engram knows.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
	ScopeAdmin Scope = "admin"
)

// AllScopes lists every scope, in a fixed order.
var AllScopes = []Scope{ScopeRead, ScopeWrite, ScopeAdmin}

// ParseScope returns the scope named s, or ErrUnknownScope.
func ParseScope(s string) (Scope, error) {
	for _, sc := range AllScopes {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", fmt.Errorf("%w %q: want read, write or admin", ErrUnknownScope, s)
}

// Principal is who a request acts as: a name for logs and the events' actor, the user
// identifiers it may act for, and its scopes.
type Principal struct {
	Name   string    // JWT "sub", the API key's name, or "anonymous"
	Method string    // "jwt", "api-key" or "anonymous"
	Users  []Pattern // the users it may act for
	Scopes []Scope   // sorted as in AllScopes, without duplicates
}

// AnonymousName is the Principal.Name of every request while authentication is disabled.
const AnonymousName = "anonymous"

// Anonymous is the principal of every request while authentication is disabled: every scope
// for every user.
func Anonymous() *Principal {
	return &Principal{Name: AnonymousName, Method: "anonymous", Users: []Pattern{AnyUser}, Scopes: slices.Clone(AllScopes)}
}

// Has reports whether p holds scope s.
func (p *Principal) Has(s Scope) bool { return p != nil && slices.Contains(p.Scopes, s) }

// CanActFor reports whether one of p's patterns matches the user identifier. The shared
// tenant (identifier "") is reachable only through the "*" pattern.
func (p *Principal) CanActFor(identifier string) bool {
	if p == nil {
		return false
	}
	for _, pat := range p.Users {
		if pat.Match(identifier) {
			return true
		}
	}
	return false
}

// normalizeScopes sorts scopes as in AllScopes and drops duplicates.
func normalizeScopes(in []Scope) []Scope {
	out := make([]Scope, 0, len(AllScopes))
	for _, s := range AllScopes {
		if slices.Contains(in, s) {
			out = append(out, s)
		}
	}
	return out
}

type patternKind uint8

const (
	patternNone patternKind = iota
	patternExact
	patternDomain
	patternAny
)

// Pattern is a set of user identifiers a principal may act for. Its three forms:
//
//	sara@omg.com   exactly this identifier (byte for byte; identifiers are case-sensitive)
//	*@omg.com      every identifier of the form L@omg.com where L is non-empty and has no '@'
//	*              every identifier, and the shared tenant
//
// The zero Pattern matches nothing. Build one with ParsePattern.
type Pattern struct {
	kind  patternKind
	value string // the identifier, or the domain without '@'
}

// AnyUser is the "*" pattern.
var AnyUser = Pattern{kind: patternAny}

// ParsePattern parses one of the three forms. A '*' anywhere else, an empty domain, or a
// domain or identifier that is not a valid identifier is an error wrapping ErrInvalidPattern.
func ParsePattern(s string) (Pattern, error) {
	switch {
	case s == "*":
		return AnyUser, nil
	case strings.HasPrefix(s, "*@"):
		d := s[2:]
		if d == "" || strings.ContainsAny(d, "@*") {
			return Pattern{}, fmt.Errorf("%w %q: the domain after \"*@\" must be non-empty without '@' or '*'", ErrInvalidPattern, s)
		}
		if err := events.ValidateIdentifier(s[1:]); err != nil {
			return Pattern{}, fmt.Errorf("%w %q: %w", ErrInvalidPattern, s, err)
		}
		return Pattern{kind: patternDomain, value: d}, nil
	case strings.Contains(s, "*"):
		return Pattern{}, fmt.Errorf("%w %q: '*' is allowed only as \"*\" or \"*@domain\"", ErrInvalidPattern, s)
	}
	if err := events.ValidateIdentifier(s); err != nil {
		return Pattern{}, fmt.Errorf("%w %q: %w", ErrInvalidPattern, s, err)
	}
	return Pattern{kind: patternExact, value: s}, nil
}

// ParsePatterns parses each pattern; the error names the first bad one.
func ParsePatterns(ss []string) ([]Pattern, error) {
	out := make([]Pattern, 0, len(ss))
	for _, s := range ss {
		p, err := ParsePattern(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Match reports whether the identifier is in the pattern's set.
func (p Pattern) Match(identifier string) bool {
	switch p.kind {
	case patternAny:
		return true
	case patternExact:
		return identifier == p.value
	case patternDomain:
		local, ok := strings.CutSuffix(identifier, "@"+p.value)
		return ok && local != "" && !strings.Contains(local, "@")
	}
	return false
}

// String returns the pattern as ParsePattern reads it.
func (p Pattern) String() string {
	switch p.kind {
	case patternAny:
		return "*"
	case patternDomain:
		return "*@" + p.value
	case patternExact:
		return p.value
	}
	return ""
}
