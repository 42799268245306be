package auth

import (
	"fmt"
	"strings"
)

// MaxCredentialBytes bounds the credential in an Authorization header; anything longer is
// refused before it is parsed.
const MaxCredentialBytes = 8 << 10

// ParseAuthorization extracts the credential of an Authorization header value of the form
// "Bearer <credential>" (scheme case-insensitive, RFC 6750). The credential must be a
// b64token: ASCII letters, digits and -._~+/ followed by optional '='. Every error wraps
// ErrMalformed, or ErrNoCredentials for an empty header.
func ParseAuthorization(h string) (string, error) {
	if strings.TrimSpace(h) == "" {
		return "", ErrNoCredentials
	}
	scheme, cred, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: want \"Bearer <token>\"", ErrMalformed)
	}
	cred = strings.TrimLeft(cred, " ")
	switch {
	case cred == "":
		return "", fmt.Errorf("%w: empty bearer token", ErrMalformed)
	case len(cred) > MaxCredentialBytes:
		return "", fmt.Errorf("%w: token longer than %d bytes", ErrMalformed, MaxCredentialBytes)
	}
	pad := false
	for i := 0; i < len(cred); i++ {
		c := cred[i]
		switch {
		case c == '=':
			pad = true
		case pad:
			return "", fmt.Errorf("%w: character after '=' padding at byte %d", ErrMalformed, i)
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return "", fmt.Errorf("%w: character not allowed in a bearer token at byte %d", ErrMalformed, i)
		}
	}
	return cred, nil
}

// isJWT tells a JWT (compact JWS: dot-separated parts) from an API key, which has no dots.
func isJWT(cred string) bool { return strings.Contains(cred, ".") }
