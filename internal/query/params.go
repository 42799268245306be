package query

import (
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/engram-memory/engram/internal/events"
)

// Parsing of the HTTP API's query parameters: pure functions of url.Values, so they are
// fuzzed on their own. Every error is an *ArgumentError naming the parameter.

// Query parameters of each endpoint, besides "consistency" which every endpoint takes.
var (
	preferenceParams = []string{"applies_to_id", "applies_to_name", "applies_to_type", "active_only", "as_of", "known_at"}
	historyParams    = []string{"known_at"}
	listParams       = []string{"limit"}
	messageParams    = []string{"order", "limit", "since", "before", "cursor"}
	traceListParams  = []string{"session_id", "limit"}
	fateParams       = []string{"sequence"}
)

const consistencyParam = "consistency"

// ConsistencyHeader carries a consistency token as an alternative to the query parameter.
const ConsistencyHeader = "Engram-Consistency"

// checkParams rejects parameters the endpoint does not know and repeated ones, so a typo
// (applies_to=Healthcare) is an error instead of a silently unfiltered read.
func checkParams(v url.Values, allowed []string) error {
	for k, vals := range v {
		if k != consistencyParam && !contains(allowed, k) {
			if len(allowed) == 0 {
				return badArg(quoteField(k), "unknown query parameter: this endpoint takes only consistency")
			}
			return badArg(quoteField(k), "unknown query parameter: this endpoint takes %s and consistency", strings.Join(allowed, ", "))
		}
		if len(vals) > 1 {
			return badArg(k, "given %d times, at most once allowed", len(vals))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// quoteField makes an unknown parameter name safe to echo back.
func quoteField(k string) string {
	if k == "" || !utf8.ValidString(k) || len(k) > 64 {
		return strconv.Quote(clip(k))
	}
	for _, r := range k {
		if r < 0x20 || r == 0x7f {
			return strconv.Quote(k)
		}
	}
	return k
}

// clip shortens a value echoed in an error message.
func clip(s string) string {
	const most = 64
	if len(s) <= most {
		return s
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// parseTime reads an RFC 3339 date-time. A '+' of an offset that arrived as a space (an
// unencoded '+' in a query string) is put back: a space is never valid in RFC 3339 here.
func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && strings.Count(s, " ") == 1 {
		t, err = time.Parse(time.RFC3339Nano, strings.Replace(s, " ", "+", 1))
	}
	if err != nil {
		return time.Time{}, badArg(field, "%q is not an RFC 3339 date-time such as 2026-05-01T12:00:00Z (encode '+' as %%2B)", clip(s))
	}
	return t.UTC(), nil
}

func optTime(v url.Values, field string) (*time.Time, error) {
	if !v.Has(field) {
		return nil, nil
	}
	t, err := parseTime(field, v.Get(field))
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func parseBool(field, s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, badArg(field, "%q is not a boolean: want true or false", clip(s))
}

// parseLimit reads a page size: absent means DefaultLimit (or maxLimit when smaller).
func parseLimit(v url.Values, maxLimit int) (int, error) {
	if !v.Has("limit") {
		return min(DefaultLimit, maxLimit), nil
	}
	s := v.Get("limit")
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, badArg("limit", "%q is not an integer: want 1 to %d", clip(s), maxLimit)
	}
	if n < 1 || n > maxLimit {
		return 0, badArg("limit", "%d is out of range: want 1 to %d", n, maxLimit)
	}
	return n, nil
}

// parseConsistency reads the consistency token from the query parameter or the header; 0
// means none was given.
func parseConsistency(v url.Values, header string) (uint64, error) {
	param, hasParam := v.Get(consistencyParam), v.Has(consistencyParam)
	switch {
	case hasParam && header != "" && strings.TrimSpace(header) != param:
		return 0, badArg(consistencyParam, "the consistency parameter and the %s header differ", ConsistencyHeader)
	case !hasParam && header == "":
		return 0, nil
	case !hasParam:
		param = strings.TrimSpace(header)
	}
	n, err := strconv.ParseUint(param, 10, 64)
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, badArg(consistencyParam, "%q is not a consistency token: want the stream sequence (1 to %d) a write returned", clip(param), int64(math.MaxInt64))
	}
	return n, nil
}

// parsePreferenceQuery reads the parameters of GET .../preferences into options.
func parsePreferenceQuery(v url.Values) ([]PreferenceOption, error) {
	if err := checkParams(v, preferenceParams); err != nil {
		return nil, err
	}
	var opts []PreferenceOption
	var ref events.EntityRef
	for _, p := range []struct {
		name string
		dst  *string
	}{{"applies_to_id", &ref.ID}, {"applies_to_name", &ref.Name}, {"applies_to_type", &ref.Type}} {
		if v.Has(p.name) {
			s := v.Get(p.name)
			if err := checkText(p.name, s, maxTextRunes); err != nil {
				return nil, err
			}
			*p.dst = s
		}
	}
	if ref != (events.EntityRef{}) {
		if err := checkEntityRef(ref); err != nil {
			return nil, err
		}
		opts = append(opts, AppliesTo(ref))
	}
	if v.Has("active_only") {
		b, err := parseBool("active_only", v.Get("active_only"))
		if err != nil {
			return nil, err
		}
		opts = append(opts, ActiveOnly(b))
	}
	for _, p := range []struct {
		name string
		opt  func(time.Time) PreferenceOption
	}{{"as_of", AsOf}, {"known_at", KnownAt}} {
		t, err := optTime(v, p.name)
		if err != nil {
			return nil, err
		}
		if t != nil {
			opts = append(opts, p.opt(*t))
		}
	}
	return opts, nil
}

// parseHistoryQuery reads the parameters of GET .../preferences/history.
func parseHistoryQuery(v url.Values) ([]PreferenceOption, error) {
	if err := checkParams(v, historyParams); err != nil {
		return nil, err
	}
	t, err := optTime(v, "known_at")
	if err != nil || t == nil {
		return nil, err
	}
	return []PreferenceOption{KnownAt(*t)}, nil
}

// parseListQuery reads the parameters of GET .../conversations.
func parseListQuery(v url.Values, maxLimit int) (int, error) {
	if err := checkParams(v, listParams); err != nil {
		return 0, err
	}
	return parseLimit(v, maxLimit)
}

// parseMessageQuery reads the parameters of GET .../messages.
func parseMessageQuery(v url.Values, maxLimit int) (MessageQuery, error) {
	var q MessageQuery
	if err := checkParams(v, messageParams); err != nil {
		return q, err
	}
	if v.Has("order") {
		switch o := Order(v.Get("order")); o {
		case OldestFirst, NewestFirst:
			q.Order = o
		default:
			return q, badArg("order", "%q: want asc (oldest first) or desc (newest first)", clip(string(o)))
		}
	}
	var err error
	if q.Limit, err = parseLimit(v, maxLimit); err != nil {
		return q, err
	}
	if q.Since, err = optTime(v, "since"); err != nil {
		return q, err
	}
	if q.Before, err = optTime(v, "before"); err != nil {
		return q, err
	}
	if v.Has("cursor") {
		q.Cursor = v.Get("cursor")
		if _, err := decodeCursor(q.Cursor); err != nil {
			return q, err
		}
	}
	return q, nil
}

// parseTraceQuery reads the parameters of GET .../traces.
func parseTraceQuery(v url.Values, maxLimit int) (TraceQuery, error) {
	var q TraceQuery
	if err := checkParams(v, traceListParams); err != nil {
		return q, err
	}
	if v.Has("session_id") {
		q.SessionID = v.Get("session_id")
		if err := checkText("session_id", q.SessionID, maxTextRunes); err != nil {
			return q, err
		}
	}
	var err error
	q.Limit, err = parseLimit(v, maxLimit)
	return q, err
}

// parseFateQuery reads a fate read's sequence; 0 means none was given (search by the id).
func parseFateQuery(v url.Values) (uint64, error) {
	if err := checkParams(v, fateParams); err != nil {
		return 0, err
	}
	if !v.Has("sequence") {
		return 0, nil
	}
	s := v.Get("sequence")
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > math.MaxInt64 {
		return 0, badArg("sequence", "%q is not a stream sequence: want an integer from 1 to %d (the receipt's sequence)", clip(s), int64(math.MaxInt64))
	}
	return n, nil
}
