package query

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzQueryParams feeds arbitrary query strings and consistency headers to every parser that
// faces the network: none may panic, every error must be an *ArgumentError naming a
// parameter, and whatever is accepted must be within range.
func FuzzQueryParams(f *testing.F) {
	for _, seed := range []string{
		"", "applies_to_name=Healthcare&applies_to_type=Industry", "applies_to_id=abc", "active_only=false",
		"as_of=2026-05-01T10:00:00Z&known_at=2026-05-01T10:00:00.123456789%2B02:00", "as_of=2026-05-01T10:00:00+02:00",
		"order=desc&limit=1000&since=2026-05-01T10:00:00Z&before=2026-05-02T10:00:00Z", "limit=0", "limit=-1",
		"cursor=" + (cursor{id: "x"}).encode(), "cursor=%00", "session_id=s-1&limit=5", "consistency=42",
		"applies_to_type=x", "a=1&a=2", "as_of=%ff", "applies_to_name=%e2%80",
		"tool_name=search&limit=5", "tool_name=", "cursor=" + (cursor{ts: time.Unix(0, 0).In(offsetZ), id: "u"}).encodeUser(),
		"cursor=" + (cursor{ts: time.Unix(0, 0).UTC(), id: "u"}).encodeUser(),
	} {
		f.Add(seed, "")
		f.Add(seed, "17")
	}
	const max = 1000
	f.Fuzz(func(t *testing.T, raw, header string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		check := func(name string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			var arg *ArgumentError
			if !errors.As(err, &arg) || !errors.Is(err, ErrInvalidArgument) || arg.Field == "" || arg.Reason == "" {
				t.Fatalf("%s(%q): error %v is not an ArgumentError naming a field", name, raw, err)
			}
		}
		opts, err := parsePreferenceQuery(v)
		check("preferences", err)
		if err == nil {
			q := preferenceQuery{activeOnly: true}
			for _, o := range opts {
				if err := o(&q); err != nil {
					t.Fatalf("accepted preference parameters %q fail as options: %v", raw, err)
				}
			}
			if q.appliesTo != nil && checkEntityRef(*q.appliesTo) != nil {
				t.Fatalf("accepted an invalid applies_to from %q", raw)
			}
		}
		_, err = parseHistoryQuery(v)
		check("history", err)
		n, err := parseListQuery(v, max)
		check("list", err)
		if err == nil && (n < 1 || n > max) {
			t.Fatalf("list limit %d from %q", n, raw)
		}
		mq, err := parseMessageQuery(v, max)
		check("messages", err)
		if err == nil {
			if mq.Limit < 1 || mq.Limit > max || (mq.Order != OldestFirst && mq.Order != NewestFirst && mq.Order != "") {
				t.Fatalf("message query %+v from %q", mq, raw)
			}
			if mq.Cursor != "" {
				if _, err := decodeCursor(mq.Cursor); err != nil {
					t.Fatalf("accepted cursor does not decode: %v", err)
				}
			}
		}
		tq, err := parseTraceQuery(v, max)
		check("traces", err)
		if err == nil && (tq.Limit < 1 || tq.Limit > max) {
			t.Fatalf("trace limit %d from %q", tq.Limit, raw)
		}
		toq, err := parseToolQuery(v, max)
		check("tools", err)
		if err == nil && (toq.Limit < 1 || toq.Limit > max || (toq.ToolName != "" && checkText("tool_name", toq.ToolName, maxTextRunes) != nil)) {
			t.Fatalf("tool query %+v from %q", toq, raw)
		}
		uq, err := parseUserListQuery(v, max)
		check("users", err)
		if err == nil && (uq.Limit < 1 || uq.Limit > max) {
			t.Fatalf("user list limit %d from %q", uq.Limit, raw)
		}
		if c, err := decodeUserCursor(raw); err == nil {
			back, err := decodeUserCursor(c.encodeUser())
			if err != nil || !back.ts.Equal(c.ts) || back.ts.Location().String() != c.ts.Location().String() || back.id != c.id {
				t.Fatalf("user cursor %q does not round-trip", raw)
			}
		}
		tok, err := parseConsistency(v, header)
		check("consistency", err)
		if err == nil && (v.Has("consistency") || strings.TrimSpace(header) != "") && tok == 0 {
			t.Fatalf("consistency %q / %q accepted as 0", raw, header)
		}
		if c, err := decodeCursor(raw); err == nil {
			if back, err := decodeCursor(c.encode()); err != nil || !back.ts.Equal(c.ts) || back.id != c.id {
				t.Fatalf("cursor %q does not round-trip", raw)
			}
		}
	})
}

func TestParseTimeAcceptsRFC3339(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"2026-05-01T10:00:00Z":                "2026-05-01T10:00:00Z",
		"2026-05-01T12:00:00+02:00":           "2026-05-01T10:00:00Z",
		"2026-05-01T12:00:00 02:00":           "2026-05-01T10:00:00Z",
		"2026-05-01T10:00:00.123456789-00:00": "2026-05-01T10:00:00.123456789Z",
	} {
		got, err := parseTime("as_of", in)
		if err != nil || got.Format("2006-01-02T15:04:05.999999999Z07:00") != want {
			t.Errorf("%q: %v %v, want %s", in, got, err, want)
		}
	}
}
