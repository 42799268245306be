package events

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads a JSON document once and refuses what json.Valid or CheckJSON refuses: a
// syntax error, nesting deeper than encoding/json's 10 000 levels, invalid UTF-8 (checked by
// the caller over the whole document), a member repeated in one object (names compared as
// encoding/json decodes them) or a number beyond float64. Every method reports only
// whether the input is acceptable; the reference path (validateReference) words the error.
type scanner struct {
	data []byte
	i    int
	buf  []byte // unescaped string, valid until the next unescape into it
	tmp  []byte // a second buffer, for comparing two escaped member names
}

// maxDepth is encoding/json's maxNestingDepth: json.Valid refuses a document nested deeper.
const maxDepth = 10000

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next returns the first byte of the next value (after white space), or 0 at the end.
func (s *scanner) next() byte {
	s.ws()
	if s.i < len(s.data) {
		return s.data[s.i]
	}
	return 0
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.data)
}

// str reads a string at s.i: raw is its content between the quotes as written, and esc says
// whether raw holds escapes (else raw is the decoded string).
func (s *scanner) str() (raw []byte, esc, ok bool) {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return nil, false, false
	}
	start := s.i + 1
	for i := start; i < len(s.data); i++ {
		switch c := s.data[i]; {
		case c == '"':
			s.i = i + 1
			return s.data[start:i], esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(s.data) {
				return nil, false, false
			}
			i++
			switch s.data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s.data) || hex4(s.data[i+1:i+5]) < 0 {
					return nil, false, false
				}
				i += 4
			default:
				return nil, false, false
			}
		case c < ' ':
			return nil, false, false
		}
	}
	return nil, false, false
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unescape appends the decoding of raw (a string's content that str accepted) to dst, as
// encoding/json decodes it: a surrogate escape that is not half of a valid pair becomes
// U+FFFD.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := bytes.IndexByte(raw[i:], '\\')
			if j < 0 {
				return append(dst, raw[i:]...)
			}
			dst = append(dst, raw[i:i+j]...)
			i += j
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = hex4(raw[i+2:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					i += 6
					r = d
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// text returns the decoded string of raw, in s.buf when it has escapes.
func (s *scanner) text(raw []byte, esc bool) []byte {
	if !esc {
		return raw
	}
	s.buf = unescape(s.buf[:0], raw)
	return s.buf
}

// num reads a number at s.i and returns its literal; it refuses one CheckJSON refuses (a
// float64 cannot hold it).
func (s *scanner) num() ([]byte, bool) {
	d, start := s.data, s.i
	i := start
	if i < len(d) && d[i] == '-' {
		i++
	}
	intStart := i
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	intDigits := i - intStart
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		if i == j {
			return nil, false
		}
	}
	exp := false
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		exp = true
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
		if i == j {
			return nil, false
		}
	}
	s.i = i
	lit := d[start:i]
	// Without an exponent, at most 308 digits before the point are below 1e308, which a
	// float64 holds; anything else is what CheckJSON asks strconv.
	if exp || intDigits > 308 {
		if _, err := strconv.ParseFloat(string(lit), 64); err != nil {
			return nil, false
		}
	}
	return lit, true
}

func (s *scanner) word(w string) bool {
	if !bytes.HasPrefix(s.data[s.i:], []byte(w)) {
		return false
	}
	s.i += len(w)
	return true
}

// keySet finds a member name repeated in one object, comparing names as decoded.
type keySet struct {
	n     int
	small [16]keySpan
	big   map[string]struct{}
}

type keySpan struct {
	raw []byte
	esc bool
}

// add records a name and reports whether the object already had it.
func (k *keySet) add(s *scanner, raw []byte, esc bool) (dup bool) {
	if k.big != nil {
		name := string(s.text(raw, esc))
		if _, ok := k.big[name]; ok {
			return true
		}
		k.big[name] = struct{}{}
		return false
	}
	name := s.text(raw, esc)
	for _, o := range k.small[:k.n] {
		if !o.esc {
			if bytes.Equal(o.raw, name) {
				return true
			}
			continue
		}
		s.tmp = unescape(s.tmp[:0], o.raw)
		if bytes.Equal(s.tmp, name) {
			return true
		}
	}
	if k.n < len(k.small) {
		k.small[k.n] = keySpan{raw, esc}
		k.n++
		return false
	}
	k.big = make(map[string]struct{}, 2*len(k.small))
	for _, o := range k.small {
		k.big[string(unescape(nil, o.raw))] = struct{}{}
	}
	k.big[string(name)] = struct{}{}
	return false
}

// skip reads any value at depth (the number of arrays and objects around it).
func (s *scanner) skip(depth int) bool {
	switch s.next() {
	case '{':
		if depth >= maxDepth {
			return false
		}
		var keys keySet
		return s.object(func(raw []byte, esc bool) bool {
			return !keys.add(s, raw, esc) && s.skip(depth+1)
		})
	case '[':
		if depth >= maxDepth {
			return false
		}
		return s.array(func(int) bool { return s.skip(depth + 1) })
	case '"':
		_, _, ok := s.str()
		return ok
	case 't':
		return s.word("true")
	case 'f':
		return s.word("false")
	case 'n':
		return s.word("null")
	default:
		_, ok := s.num()
		return ok
	}
}

// object reads an object at s.i, calling member for each name with s.i at its value; member
// reads the value.
func (s *scanner) object(member func(raw []byte, esc bool) bool) bool {
	s.i++ // '{'
	if s.next() == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		raw, esc, ok := s.str()
		if !ok || s.next() != ':' {
			return false
		}
		s.i++
		if !member(raw, esc) {
			return false
		}
		switch s.next() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// array reads an array at s.i, calling elem for each element with s.i at it.
func (s *scanner) array(elem func(i int) bool) bool {
	s.i++ // '['
	if s.next() == ']' {
		s.i++
		return true
	}
	for n := 0; ; n++ {
		if !elem(n) {
			return false
		}
		switch s.next() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// build reads a value that skip has accepted and returns it as encoding/json decodes it
// into an interface value: map[string]any, []any, string, float64, bool or nil.
func (s *scanner) build() any {
	switch s.next() {
	case '{':
		m := map[string]any{}
		s.object(func(raw []byte, esc bool) bool {
			k := string(s.text(raw, esc))
			m[k] = s.build()
			return true
		})
		return m
	case '[':
		a := []any{}
		s.array(func(int) bool {
			a = append(a, s.build())
			return true
		})
		return a
	case '"':
		raw, esc, _ := s.str()
		return string(s.text(raw, esc))
	case 't':
		s.i += len("true")
		return true
	case 'f':
		s.i += len("false")
		return false
	case 'n':
		s.i += len("null")
		return nil
	default:
		lit, _ := s.num()
		f, _ := strconv.ParseFloat(string(lit), 64)
		return f
	}
}

// EachMember calls fn with the decoded name and the raw value of each member of the JSON
// object data, in document order, and stops at fn's first error. It returns false, calling
// fn for none or some members, when data is not a single well-formed object (the caller's
// decoder has the words for that). name is valid only during the call.
func EachMember(data []byte, fn func(name, value []byte) error) (bool, error) {
	s := scanner{data: data}
	if s.next() != '{' {
		return false, nil
	}
	var err error
	ok := s.object(func(raw []byte, esc bool) bool {
		name := s.text(raw, esc)
		s.ws()
		start := s.i
		if !s.skip(1) {
			return false
		}
		err = fn(name, s.data[start:s.i])
		return err == nil
	})
	if err != nil {
		return true, err
	}
	return ok && s.end(), nil
}

// EachElement calls fn with the index and the raw value of each element of the JSON array
// data, and stops at fn's first error; false when data is not a single well-formed array.
func EachElement(data []byte, fn func(i int, value []byte) error) (bool, error) {
	s := scanner{data: data}
	if s.next() != '[' {
		return false, nil
	}
	var err error
	ok := s.array(func(i int) bool {
		s.ws()
		start := s.i
		if !s.skip(1) {
			return false
		}
		err = fn(i, s.data[start:s.i])
		return err == nil
	})
	if err != nil {
		return true, err
	}
	return ok && s.end(), nil
}
