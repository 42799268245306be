package query

import (
	"unicode/utf8"
)

// maxTextRunes bounds the free-text parameters (session ids, entity names and types, trace
// ids): the event schemas allow at most 256 characters for each.
const maxTextRunes = 256

// checkText accepts a non-empty, valid UTF-8 value of at most maxRunes characters without control
// characters.
func checkText(field, v string, maxRunes int) error {
	switch {
	case v == "":
		return badArg(field, "must not be empty")
	case !utf8.ValidString(v):
		return badArg(field, "not valid UTF-8")
	case utf8.RuneCountInString(v) > maxRunes:
		return badArg(field, "longer than %d characters", maxRunes)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return badArg(field, "control character U+%04X", r)
		}
	}
	return nil
}
