package events

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxIdentifierBytes bounds a user identifier (and any other identifier that reaches a
// subject or the graph) in bytes of UTF-8.
const MaxIdentifierBytes = 256

// SharedTenantToken is the token of the shared tenant: writes without a user, allowed only
// when multi-tenant mode is off. Encode never produces it, because an escape is always '_'
// followed by two upper-case hex digits and "sh" is not hex.
const SharedTenantToken = "_shared"

// ErrInvalidIdentifier is returned for identifiers that are empty, too long, not UTF-8 or
// contain control characters.
var ErrInvalidIdentifier = errors.New("invalid identifier")

// ErrInvalidToken is returned by DecodeToken for strings Encode cannot have produced.
var ErrInvalidToken = errors.New("invalid tenant token")

// ValidateIdentifier checks an identifier before it reaches a subject, a header or the graph:
// non-empty, at most MaxIdentifierBytes of valid UTF-8, no control characters, no leading or
// trailing white space or format character (Unicode's included).
func ValidateIdentifier(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidIdentifier)
	case len(id) > MaxIdentifierBytes:
		return fmt.Errorf("%w: %d bytes, at most %d allowed", ErrInvalidIdentifier, len(id), MaxIdentifierBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidIdentifier)
	}
	// Headers (ce-subject) lose leading and trailing white space on the way through NATS and
	// the CloudEvents binding (Unicode's too: U+00A0, U+2003, U+3000, U+2028), so such an
	// identifier would not survive the trip through the stream; invisible format characters
	// (U+200B, U+FEFF, U+2060) at either end make look-alikes of other users' identifiers.
	first, _ := utf8.DecodeRuneInString(id)
	last, _ := utf8.DecodeLastRuneInString(id)
	if invisibleEdge(first) || invisibleEdge(last) {
		return fmt.Errorf("%w: leading or trailing space or invisible character", ErrInvalidIdentifier)
	}
	for i, r := range id {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: control character U+%04X at byte %d", ErrInvalidIdentifier, r, i)
		}
	}
	return nil
}

// invisibleEdge reports a rune an identifier may not start or end with: Unicode white space
// (unicode.IsSpace) or a format character (category Cf, e.g. U+200B, U+FEFF, U+2060, U+180E).
func invisibleEdge(r rune) bool {
	return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) || r == '\u180e'
}

// EncodeToken turns a valid identifier into a subject-safe tenant token. ASCII letters,
// digits and '-' stay as they are; every other byte, '_' included, becomes '_' and two
// upper-case hex digits. The mapping is injective and DecodeToken reverses it:
//
//	sara@omg.com -> sara_40omg_2Ecom
//	Liam_O'Brien -> Liam_5FO_27Brien
func EncodeToken(id string) (string, error) {
	if err := ValidateIdentifier(id); err != nil {
		return "", err
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(id) + 8)
	for i := 0; i < len(id); i++ {
		c := id[i]
		if isPlain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0x0f])
	}
	return b.String(), nil
}

// DecodeToken reverses EncodeToken. It rejects any string that EncodeToken cannot produce,
// so a token names at most one identifier.
func DecodeToken(token string) (string, error) {
	if token == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidToken)
	}
	out := make([]byte, 0, len(token))
	for i := 0; i < len(token); i++ {
		c := token[i]
		if isPlain(c) {
			out = append(out, c)
			continue
		}
		if c != '_' || i+2 >= len(token) {
			return "", fmt.Errorf("%w: unexpected byte %q at %d", ErrInvalidToken, c, i)
		}
		hi, ok1 := unhex(token[i+1])
		lo, ok2 := unhex(token[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: bad escape at %d", ErrInvalidToken, i)
		}
		v := hi<<4 | lo
		if isPlain(v) {
			return "", fmt.Errorf("%w: needless escape of %q at %d", ErrInvalidToken, v, i)
		}
		out = append(out, v)
		i += 2
	}
	id := string(out)
	if err := ValidateIdentifier(id); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return id, nil
}

func isPlain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

// unhex accepts only upper-case hex digits, so each byte has exactly one escape.
func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Partition is the projection partition of a tenant token: the same FNV-1a hash modulo n that
// the memory stream's subject transform partition(n,1) applies, so the query side knows which
// partition's checkpoint covers a user's writes. A test checks it against the server.
func Partition(token string, n int) int {
	if n <= 0 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(token))
	return int(h.Sum32() % uint32(n))
}
