package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/engram-memory/engram/schemas"
)

// A rule is a JSON Schema compiled for the fast validator: the keywords the catalogue's
// schemas use, read from the same files the reference validator compiles (compileRule), with
// the same meaning (draft 2020-12, formats asserted). A schema using any other keyword, or a
// keyword in a form not listed here, does not compile, and its kind is validated by the
// reference path alone (TestFastRulesCoverEveryKind fails, so nobody is surprised).
type rule struct {
	any   bool    // {}: every value
	types typeSet // 0: any type

	enum []string // strings only

	minLen, maxLen int // in code points; -1 when absent
	pattern        func([]byte) bool
	dateTime       bool // format: date-time

	min, max *bound

	props      []prop
	additional bool // additionalProperties: absent or true
	required   uint64
	anyOf      []uint64 // anyOf of {"required": [...]}: one of the sets present
	maxProps   int      // -1 when absent

	items    *rule
	minItems int // 0 when absent
	maxItems int // -1 when absent
}

type prop struct {
	name []byte
	rule *rule
}

type typeSet uint8

const (
	tNull typeSet = 1 << iota
	tBoolean
	tNumber
	tInteger // integers only; tNumber includes them
	tString
	tArray
	tObject
)

var typeNames = map[string]typeSet{
	"null": tNull, "boolean": tBoolean, "number": tNumber, "integer": tInteger,
	"string": tString, "array": tArray, "object": tObject,
}

// bound is minimum or maximum: exactly as a big.Rat, and as an int64 when it is one.
type bound struct {
	rat   *big.Rat
	int   int64
	isInt bool
}

// uuidPattern is the catalogue's id pattern; rules match it without a regular expression.
const uuidPattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

// rules holds each kind's compiled rule; a kind whose schema does not compile is absent.
var rules = sync.OnceValue(func() map[Kind]*rule {
	out := make(map[Kind]*rule, len(Kinds))
	for _, k := range Kinds {
		if r, err := kindRule(k); err == nil {
			out[k] = r
		}
	}
	return out
})

func kindRule(k Kind) (*rule, error) {
	raw, err := schemas.Events.ReadFile("events/" + string(k) + "." + SchemaVersion + ".json")
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", k, err)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		return nil, fmt.Errorf("schema %s: $schema %v", k, doc["$schema"])
	}
	r, err := compileRule(doc, true)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %w", k, err)
	}
	return r, nil
}

// compileRule compiles one schema object; root allows $schema and $id.
func compileRule(doc map[string]any, root bool) (*rule, error) {
	r := &rule{minLen: -1, maxLen: -1, maxProps: -1, maxItems: -1, additional: true, any: len(doc) == 0}
	var required []string
	for kw, v := range doc {
		var err error
		switch kw {
		case "$schema", "$id":
			if !root {
				err = fmt.Errorf("%s below the root", kw)
			}
		case "title", "description":
		case "type":
			r.types, err = compileTypes(v)
		case "enum":
			r.enum, err = stringList(v)
		case "minLength":
			r.minLen, err = count(v)
		case "maxLength":
			r.maxLen, err = count(v)
		case "maxProperties":
			r.maxProps, err = count(v)
		case "minItems":
			r.minItems, err = count(v)
		case "maxItems":
			r.maxItems, err = count(v)
		case "pattern":
			r.pattern, err = compilePattern(v)
		case "format":
			if v != "date-time" {
				err = fmt.Errorf("format %v", v)
			}
			r.dateTime = true
		case "minimum":
			r.min, err = compileBound(v)
		case "maximum":
			r.max, err = compileBound(v)
		case "additionalProperties":
			b, ok := v.(bool)
			if !ok {
				err = fmt.Errorf("additionalProperties is not a boolean")
			}
			r.additional = b
		case "required":
			required, err = stringList(v)
		case "properties":
			r.props, err = compileProps(v)
		case "items":
			sub, ok := v.(map[string]any)
			if !ok {
				err = fmt.Errorf("items is not a schema object")
				break
			}
			r.items, err = compileRule(sub, false)
		case "anyOf":
			continue // after properties, below
		default:
			err = fmt.Errorf("keyword %q", kw)
		}
		if err != nil {
			return nil, err
		}
	}
	var err error
	if r.required, err = propSet(r.props, required); err != nil {
		return nil, err
	}
	if v, ok := doc["anyOf"]; ok {
		list, _ := v.([]any)
		if len(list) == 0 {
			return nil, fmt.Errorf("anyOf is not a list of schemas")
		}
		for _, sub := range list {
			m, _ := sub.(map[string]any)
			names, err := stringList(m["required"])
			if err != nil || len(m) != 1 {
				return nil, fmt.Errorf("anyOf holds other than {\"required\": [...]}")
			}
			set, err := propSet(r.props, names)
			if err != nil {
				return nil, err
			}
			r.anyOf = append(r.anyOf, set)
		}
	}
	return r, nil
}

func compileTypes(v any) (typeSet, error) {
	names := []any{v}
	if list, ok := v.([]any); ok {
		names = list
	}
	var t typeSet
	for _, n := range names {
		s, _ := n.(string)
		bit, ok := typeNames[s]
		if !ok {
			return 0, fmt.Errorf("type %v", n)
		}
		t |= bit
	}
	if t == 0 {
		return 0, fmt.Errorf("type %v", v)
	}
	return t, nil
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%v is not a list", v)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%v is not a string", e)
		}
		out = append(out, s)
	}
	return out, nil
}

func count(v any) (int, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v is not a number", v)
	}
	i, err := strconv.ParseInt(n.String(), 10, 32)
	if err != nil || i < 0 {
		return 0, fmt.Errorf("%v is not a count", v)
	}
	return int(i), nil
}

func compileBound(v any) (*bound, error) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, fmt.Errorf("%v is not a number", v)
	}
	rat, ok := new(big.Rat).SetString(n.String())
	if !ok {
		return nil, fmt.Errorf("bound %v", v)
	}
	b := &bound{rat: rat}
	if rat.IsInt() && rat.Num().IsInt64() {
		b.int, b.isInt = rat.Num().Int64(), true
	}
	return b, nil
}

func compilePattern(v any) (func([]byte) bool, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("pattern %v", v)
	}
	if s == uuidPattern {
		return isLowerUUID, nil
	}
	re, err := regexp.Compile(s) // the reference validator's default engine
	if err != nil {
		return nil, err
	}
	return re.Match, nil
}

func compileProps(v any) ([]prop, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) > 64 {
		return nil, fmt.Errorf("properties is not an object of at most 64 schemas")
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]prop, 0, len(m))
	for _, n := range names {
		sub, ok := m[n].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("property %s is not a schema object", n)
		}
		r, err := compileRule(sub, false)
		if err != nil {
			return nil, fmt.Errorf("property %s: %w", n, err)
		}
		out = append(out, prop{name: []byte(n), rule: r})
	}
	return out, nil
}

// propSet is the set of the named properties' indexes.
func propSet(props []prop, names []string) (uint64, error) {
	var set uint64
	for _, n := range names {
		i := slices.IndexFunc(props, func(p prop) bool { return string(p.name) == n })
		if i < 0 {
			return 0, fmt.Errorf("required %q is not among the properties", n)
		}
		set |= 1 << i
	}
	return set, nil
}

func isLowerUUID(b []byte) bool {
	if len(b) != 36 {
		return false
	}
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// prop returns the index of the property named name (decoded), or -1.
func (r *rule) prop(name []byte) int {
	for i := range r.props {
		if bytes.Equal(r.props[i].name, name) {
			return i
		}
	}
	return -1
}

// value reads the value at s.i and reports whether r accepts it (and json.Valid and
// CheckJSON do).
func (s *scanner) value(r *rule, depth int) bool {
	if r == nil || r.any {
		return s.skip(depth)
	}
	switch c := s.next(); c {
	case '"':
		raw, esc, ok := s.str()
		return ok && r.has(tString) && r.stringOK(s.text(raw, esc))
	case '{':
		if !r.has(tObject) || r.enum != nil || depth >= maxDepth {
			return false
		}
		return s.members(r, depth, func(i int) bool {
			if i < 0 {
				return s.skip(depth + 1)
			}
			return s.value(r.props[i].rule, depth+1)
		})
	case '[':
		if !r.has(tArray) || r.enum != nil || depth >= maxDepth {
			return false
		}
		return s.elements(r, func() bool { return s.value(r.items, depth+1) })
	case 't', 'f':
		ok := s.word("true") || s.word("false")
		return ok && r.has(tBoolean) && r.enum == nil
	case 'n':
		return s.word("null") && r.has(tNull) && r.enum == nil
	default:
		lit, ok := s.num()
		return ok && r.numberOK(lit)
	}
}

func (r *rule) has(t typeSet) bool { return r.types == 0 || r.types&t != 0 }

// stringOK applies r's enum and string keywords to a decoded string.
func (r *rule) stringOK(b []byte) bool {
	if r.enum != nil && !slices.Contains(r.enum, string(b)) {
		return false
	}
	if r.minLen >= 0 || r.maxLen >= 0 {
		// A code point is one to four bytes: count only when the bytes do not decide.
		n := len(b)
		if (r.maxLen >= 0 && n > r.maxLen) || (r.minLen >= 0 && n < 4*r.minLen) {
			n = utf8.RuneCount(b)
		}
		if r.maxLen >= 0 && n > r.maxLen || r.minLen >= 0 && n < r.minLen {
			return false
		}
	}
	if r.pattern != nil && !r.pattern(b) {
		return false
	}
	return !r.dateTime || isDateTime(string(b))
}

// numberOK applies r's type, enum and number keywords to a number's literal, comparing as
// the reference does: exactly, as big.Rat (which it cannot form beyond an exponent of a
// million; then it panics on minimum and maximum, which validateReference reports as a
// refusal).
func (r *rule) numberOK(lit []byte) bool {
	if r.enum != nil || !r.has(tNumber|tInteger) {
		return false
	}
	needInt := r.types != 0 && r.types&tNumber == 0
	if !needInt && r.min == nil && r.max == nil {
		return true
	}
	d, ok := parseDecimal(lit)
	if !ok {
		return false // big.Rat refuses it: not an integer, and beyond comparison
	}
	if needInt && d.frac {
		return false
	}
	if r.min != nil {
		c, decided := d.cmp(r.min)
		if !decided {
			return r.numberOKRat(lit)
		}
		if c < 0 {
			return false
		}
	}
	if r.max != nil {
		c, decided := d.cmp(r.max)
		if !decided {
			return r.numberOKRat(lit)
		}
		if c > 0 {
			return false
		}
	}
	return true
}

func (r *rule) numberOKRat(lit []byte) bool {
	v, ok := new(big.Rat).SetString(string(lit))
	if !ok {
		return false
	}
	if r.types != 0 && r.types&tNumber == 0 && !v.IsInt() {
		return false
	}
	return (r.min == nil || v.Cmp(r.min.rat) >= 0) && (r.max == nil || v.Cmp(r.max.rat) <= 0)
}

// decimal is a number as much as comparing it exactly with an int64 needs: its sign, its
// integer part when below 1e18 (else huge), and whether it has a non-zero fraction.
type decimal struct {
	neg, huge, frac bool
	ip              int64
}

// parseDecimal reads a JSON number literal as big.Rat.SetString reads it, without big.Rat's
// cost (a 10-byte exponent of 1e-999999 takes it a tenth of a second): ok is false exactly
// where SetString fails, an exponent beyond int64 or, for a number other than zero and net
// of the fraction's digits, beyond a million.
func parseDecimal(lit []byte) (d decimal, ok bool) {
	i := 0
	if lit[0] == '-' {
		d.neg, i = true, 1
	}
	intStart := i
	for i < len(lit) && '0' <= lit[i] && lit[i] <= '9' {
		i++
	}
	intEnd, fracStart, fracEnd := i, i, i
	if i < len(lit) && lit[i] == '.' {
		i++
		fracStart = i
		for i < len(lit) && '0' <= lit[i] && lit[i] <= '9' {
			i++
		}
		fracEnd = i
	}
	var exp int64
	if i < len(lit) { // 'e' or 'E'
		i++
		neg := false
		if lit[i] == '+' || lit[i] == '-' {
			neg, i = lit[i] == '-', i+1
		}
		var u uint64
		for ; i < len(lit); i++ {
			if u > (1<<63)/10 {
				return decimal{}, false
			}
			u = u*10 + uint64(lit[i]-'0')
			if u > 1<<63 {
				return decimal{}, false
			}
		}
		switch {
		case neg:
			exp = int64(-u) // -(1<<63) is MinInt64
		case u == 1<<63:
			return decimal{}, false
		default:
			exp = int64(u)
		}
	}
	// The value is the digits, integer part then fraction, times 10^exp5.
	fcount := int64(fracEnd - fracStart)
	digit := func(k int64) byte { // the k-th digit of the integer part and fraction together
		if n := int64(intEnd - intStart); k < n {
			return lit[int64(intStart)+k]
		}
		return lit[int64(fracStart)+k-int64(intEnd-intStart)]
	}
	n := int64(intEnd-intStart) + fcount
	lead := int64(0)
	for lead < n && digit(lead) == '0' {
		lead++
	}
	if lead == n {
		return d, true // zero, whatever the exponent
	}
	if exp < -(1<<62) || exp-fcount < -1e6 || exp-fcount > 1e6 {
		return decimal{}, false
	}
	exp5 := exp - fcount
	intDigits := n - lead + exp5 // digits of the integer part of the value
	switch {
	case intDigits > 18:
		d.huge = true
	case intDigits > 0:
		for k := lead; k < lead+intDigits; k++ {
			c := byte('0')
			if k < n {
				c = digit(k)
			}
			d.ip = d.ip*10 + int64(c-'0')
		}
	}
	for k := max(lead, lead+intDigits); k < n; k++ {
		if digit(k) != '0' {
			d.frac = true
			break
		}
	}
	return d, true
}

// cmp compares d with the bound: -1, 0 or +1; decided is false for a bound of 1e18 or more
// (in magnitude) or not an integer, which big.Rat compares.
func (d decimal) cmp(b *bound) (c int, decided bool) {
	if !b.isInt || b.int <= -1e18 || b.int >= 1e18 {
		return 0, false
	}
	if d.huge {
		if d.neg {
			return -1, true
		}
		return 1, true
	}
	n := d.ip // d is n + f (or -n - f), 0 <= f < 1
	if d.neg {
		n = -n
	}
	switch {
	case !d.frac:
		return cmpInt(n, b.int), true
	case d.neg && b.int >= n, !d.neg && b.int > n: // d lies strictly between n-1 and n, or n and n+1
		return -1, true
	}
	return 1, true
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// isDateTime is the reference validator's date-time format (RFC 3339 section 5.6, leap
// seconds allowed where UTC has them, 't' and 'z' as well as 'T' and 'Z').
func isDateTime(s string) bool {
	if len(s) < 20 || (s[10] != 't' && s[10] != 'T') {
		return false
	}
	if _, err := time.Parse(time.DateOnly, s[:10]); err != nil {
		return false
	}
	t := s[11:]
	if t[2] != ':' || t[5] != ':' {
		return false
	}
	h, ok1 := atoi2(t[0:2])
	m, ok2 := atoi2(t[3:5])
	sec, ok3 := atoi2(t[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return false
	}
	t = t[8:]
	if rem, ok := cutByte(t, '.'); ok {
		n := 0
		for n < len(rem) && '0' <= rem[n] && rem[n] <= '9' {
			n++
		}
		if n == 0 {
			return false
		}
		t = rem[n:]
	}
	if t != "z" && t != "Z" {
		if len(t) != 6 {
			return false
		}
		var sign int
		switch t[0] {
		case '+':
			sign = -1
		case '-':
			sign = +1
		default:
			return false
		}
		if t[3] != ':' {
			return false
		}
		zh, ok1 := atoi2(t[1:3])
		zm, ok2 := atoi2(t[4:6])
		if !ok1 || !ok2 || zh > 23 || zm > 59 {
			return false
		}
		hm := h*60 + m + sign*(zh*60+zm)
		if hm < 0 {
			hm += 24 * 60
		}
		h, m = hm/60, hm%60
	}
	return sec < 60 || (h == 23 && m == 59)
}

// atoi2 is strconv.Atoi of a two-byte string, refusing what is negative.
func atoi2(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

func cutByte(s string, c byte) (string, bool) {
	if s != "" && s[0] == c {
		return s[1:], true
	}
	return s, false
}

// members reads an object under r: member gets the index of each member's property (-1 for
// an additional member) and reads its value. It checks repeated names, additional members,
// required ones, anyOf and maxProperties.
func (s *scanner) members(r *rule, depth int, member func(i int) bool) bool {
	var seen uint64
	var keys keySet
	n := 0
	ok := s.object(func(raw []byte, esc bool) bool {
		n++
		if r.additional && keys.add(s, raw, esc) {
			return false
		}
		i := r.prop(s.text(raw, esc))
		if i < 0 {
			return r.additional && member(-1)
		}
		if seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
		return member(i)
	})
	if !ok || seen&r.required != r.required || (r.maxProps >= 0 && n > r.maxProps) {
		return false
	}
	if r.anyOf == nil {
		return true
	}
	for _, set := range r.anyOf {
		if seen&set == set {
			return true
		}
	}
	return false
}

// elements reads an array under r: elem reads each element.
func (s *scanner) elements(r *rule, elem func() bool) bool {
	n := 0
	return s.array(func(int) bool {
		n++
		return (r.maxItems < 0 || n <= r.maxItems) && elem()
	}) && n >= r.minItems
}

// validFast reports whether data is valid data of r: exactly when json.Valid, CheckJSON and
// the kind's JSON Schema accept it (FuzzValidateMatchesSchema).
func validFast(r *rule, data []byte) bool {
	if !utf8.Valid(data) {
		return false
	}
	s := scanner{data: data}
	return s.value(r, 0) && s.end()
}
