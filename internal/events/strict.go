package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// JSONError is a JSON document that encoding/json would accept by bending it: invalid UTF-8
// (replaced by U+FFFD), a member repeated in one object (the last wins) or a number no float64
// holds (a projector decoding into float64 refuses it). Path names the value, e.g.
// "metadata.a[1]", or is empty for the document as a whole. It wraps ErrInvalidData.
type JSONError struct {
	Path   string
	Reason string
}

func (e *JSONError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", ErrInvalidData, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", ErrInvalidData, e.Path, e.Reason)
}

// Unwrap makes every JSONError match ErrInvalidData.
func (e *JSONError) Unwrap() error { return ErrInvalidData }

// CheckJSON refuses what encoding/json accepts leniently, so that the ingestor, the Go client
// and the projector read a document the same way: it must be valid UTF-8, no object may
// repeat a member, and every number must fit a float64. Syntax errors are left to the
// decoder that follows, which words them better.
//
// A document the one-pass scanner accepts (the common case) is acceptable; only one it
// refuses is walked again token by token, to name what is wrong and where (a syntax error
// found there is nil, as above). FuzzCheckJSONFast holds the scanner to the walk.
func CheckJSON(data []byte) error {
	if checkJSONFast(data) {
		return nil
	}
	return checkJSONWalk(data)
}

// checkJSONFast reports whether data is valid UTF-8 and the scanner accepts it.
func checkJSONFast(data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	s := scanner{data: data}
	return s.skip(0) && s.end()
}

// checkJSONWalk is CheckJSON by encoding/json's tokens: the definition the scanner is held to.
func checkJSONWalk(data []byte) error {
	if !utf8.Valid(data) {
		return &JSONError{Reason: fmt.Sprintf("not valid UTF-8 (at byte %d)", invalidAt(data))}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var path []pathSeg
	err := walk(dec, &path)
	if errors.Is(err, errSyntax) {
		return nil
	}
	return err
}

var errSyntax = errors.New("syntax")

func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// pathSeg is one step of the path to a value: a member name, or an array index. The path is
// written out only for an error: building it at every value costs the square of the depth.
type pathSeg struct {
	name  string
	index int // -1 for a member
}

// pathString writes a path as JSONError.Path: "metadata.a[1]".
func pathString(path []pathSeg) string {
	s := ""
	for _, seg := range path {
		switch {
		case seg.index >= 0:
			s = fmt.Sprintf("%s[%d]", s, seg.index)
		case s == "":
			s = seg.name
		default:
			s = s + "." + seg.name
		}
	}
	return s
}

// walk reads one value from dec; *path leads to it.
func walk(dec *json.Decoder, path *[]pathSeg) error {
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return errSyntax
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return errSyntax
				}
				k, _ := kt.(string)
				*path = append(*path, pathSeg{name: k, index: -1})
				if seen[k] {
					return &JSONError{Path: pathString(*path), Reason: "member repeated in the same object"}
				}
				seen[k] = true
				if err := walk(dec, path); err != nil {
					return err
				}
				*path = (*path)[:len(*path)-1]
			}
		case '[':
			for i := 0; dec.More(); i++ {
				*path = append(*path, pathSeg{index: i})
				if err := walk(dec, path); err != nil {
					return err
				}
				*path = (*path)[:len(*path)-1]
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return errSyntax
		}
	case json.Number:
		if f, err := strconv.ParseFloat(v.String(), 64); err != nil || math.IsInf(f, 0) {
			return &JSONError{Path: pathString(*path), Reason: fmt.Sprintf("number %s is beyond the range of a 64-bit float", clipNumber(v.String()))}
		}
	}
	return nil
}

func clipNumber(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// MaxOffset bounds a time's UTC offset: RFC 3339's time-numoffset has hours 00-23.
const MaxOffset = 24 * time.Hour

// CheckTime refuses a time RFC 3339 cannot carry: an offset of 24 hours or more (Go parses
// "+24:00"), or a year outside 0000-9999 once in UTC (Go parses "9999-12-31T23:30:00-23:00",
// which is in year 10000 in UTC, and then cannot encode it: every JSON answer with it fails).
func CheckTime(t time.Time) error {
	if _, off := t.Zone(); time.Duration(off)*time.Second >= MaxOffset || time.Duration(off)*time.Second <= -MaxOffset {
		return fmt.Errorf("offset %s: RFC 3339 offsets are below 24 hours", time.Duration(off)*time.Second)
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("year %d (in UTC) is outside RFC 3339's 0000-9999", y)
	}
	return nil
}

// ParseTime parses an RFC 3339 time strictly: CheckTime's rules on top of time.RFC3339Nano.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	if err := CheckTime(t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}
