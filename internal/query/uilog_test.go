package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/audit"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// logEnv is a Reader over the memory stream of a fresh JetStream, served over HTTP with
// authentication on, and a publisher that plays the ingestor.
type logEnv struct {
	t     *testing.T
	r     *Reader
	js    jetstream.JetStream
	pub   *stream.Publisher
	url   string
	token func(users []string, scopes ...auth.Scope) http.Header
}

func newLogEnv(t *testing.T) *logEnv {
	t.Helper()
	d := testenv.Neo4j(t)
	_, _, js := testenv.NATS(t)
	log := NewStreamLog(js)
	r, err := NewReader(d, "", WithCheckpointGroup(testGroup(t, d)), WithEventLog(log), WithPartitionLog(log), WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("log-secret-"), 4)
	file := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{Enabled: true, HS256SecretFile: file})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	NewHandler(r, time.Second, 50, nil, nil, WithAuthenticator(a)).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &logEnv{t: t, r: r, js: js, pub: stream.NewPublisher(js, 5*time.Second), url: srv.URL,
		token: func(users []string, scopes ...auth.Scope) http.Header {
			tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: "auditor", Users: users, Scopes: scopes, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			return http.Header{"Authorization": {"Bearer " + tok}}
		}}
}

// publish stores an event of user with the given data and envelope, and returns its sequence.
func (e *logEnv) publish(user string, data any, actor, correlation string) (*events.Event, uint64) {
	e.t.Helper()
	ev := &events.Event{ID: events.NewID(), Source: "/test/log", User: user, Time: time.Now().UTC().Truncate(time.Millisecond),
		Actor: actor, CorrelationID: correlation, CausationID: "cause-" + correlation, Data: data}
	st, err := e.pub.Publish(e.t.Context(), ev)
	if err != nil {
		e.t.Fatal(err)
	}
	return ev, st.Sequence
}

func (e *logEnv) preference(user, text string) (*events.Event, uint64) {
	e.t.Helper()
	return e.publish(user, events.PreferenceAdded{PreferenceID: events.NewID(), Category: "c", Preference: text}, "agent-7", "corr-"+text)
}

// TestLogEvent: the stored event at a sequence with its envelope and data, only for its own
// tenant; an undecodable message shows what its headers say and why.
func TestLogEvent(t *testing.T) {
	t.Parallel()
	e := newLogEnv(t)
	ctx := t.Context()
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	ev, seq := e.preference(sara, "Senior")
	_, liamSeq := e.preference(liam, "Junior")

	got, err := e.r.LogEvent(ctx, sara, seq)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sequence != seq || got.EventID != ev.ID || got.Kind != "preference_added" || got.Type != events.KindPreferenceAdded.Type() ||
		got.Source != "/test/log" || got.Actor == nil || *got.Actor != "agent-7" || got.CorrelationID == nil || *got.CorrelationID != "corr-Senior" ||
		got.CausationID == nil || *got.CausationID != "cause-corr-Senior" || got.Time == nil || !got.Time.Equal(ev.Time) ||
		got.StoredAt.IsZero() || got.Vouch != audit.VouchClaimed || got.Error != nil {
		t.Errorf("sara's event: %+v", got)
	}
	var data events.PreferenceAdded
	want := ev.Data.(events.PreferenceAdded)
	if err := json.Unmarshal(got.Data, &data); err != nil || data.PreferenceID != want.PreferenceID || data.Preference != want.Preference {
		t.Errorf("data %s: %v", got.Data, err)
	}
	// Another tenant's sequence, and a sequence that holds nothing, are the same 404.
	for _, s := range []uint64{liamSeq, liamSeq + 1000} {
		if _, err := e.r.LogEvent(ctx, sara, s); !errors.Is(err, ErrNotFound) {
			t.Errorf("sara at sequence %d: %v, want ErrNotFound", s, err)
		}
	}
	if _, err := e.r.LogEvent(ctx, sara, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("sequence 0: %v", err)
	}

	// A message an agent published that does not decode (data against the schema), carrying
	// a vouch header that this service cannot check.
	tok, _ := events.TenantToken(sara)
	id := events.NewID()
	msg := &nats.Msg{Subject: "mem." + tok + ".preference_added", Data: []byte(`{"bogus":true}`), Header: nats.Header{
		"ce-specversion": {"1.0"}, "ce-id": {id}, "ce-source": {"/agent"}, "ce-type": {events.KindPreferenceAdded.Type()},
		"ce-subject": {sara}, "ce-time": {"2026-05-01T10:00:00Z"}, "ce-actor": {"ops"}, stream.VouchHeader: {"v1.k.forged"}}}
	ack, err := e.js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := e.r.LogEvent(ctx, sara, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if bad.Error == nil || bad.EventID != id || bad.Source != "/agent" || bad.Actor == nil || *bad.Actor != "ops" ||
		bad.Time == nil || bad.Time.Format(time.RFC3339) != "2026-05-01T10:00:00Z" || string(bad.Data) != `{"bogus":true}` || bad.Vouch != audit.VouchUnchecked {
		t.Errorf("undecodable event: %+v (error %v)", bad, deref(bad.Error))
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestLogPages: a tenant's events in stream order, page by page, by kind and by stored time,
// never another tenant's.
func TestLogPages(t *testing.T) {
	t.Parallel()
	e := newLogEnv(t)
	ctx := t.Context()
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	var all, prefs []uint64
	for i := range 7 {
		if i%2 == 0 {
			_, s := e.preference(sara, "p"+strconv.Itoa(i))
			all, prefs = append(all, s), append(prefs, s)
		} else {
			_, s := e.publish(sara, events.UserUpserted{UserID: events.UserID(sara), Identifier: sara}, "", "")
			all = append(all, s)
		}
		e.preference(liam, "l"+strconv.Itoa(i))
	}
	seqs := func(q LogQuery) []uint64 {
		t.Helper()
		var out []uint64
		for pages := 0; ; pages++ {
			p, err := e.r.Log(ctx, sara, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Events) > q.Limit && q.Limit > 0 || pages > 20 {
				t.Fatalf("page of %d events for limit %d", len(p.Events), q.Limit)
			}
			for _, ev := range p.Events {
				out = append(out, ev.Sequence)
			}
			if p.NextAfter == nil {
				return out
			}
			q.After = *p.NextAfter
		}
	}
	for _, limit := range []int{0, 1, 3, 7, 50} {
		if got := seqs(LogQuery{Limit: limit}); !slices.Equal(got, all) {
			t.Errorf("limit %d: %v, want %v", limit, got, all)
		}
	}
	if got := seqs(LogQuery{Kind: events.KindPreferenceAdded, Limit: 2}); !slices.Equal(got, prefs) {
		t.Errorf("preference_added: %v, want %v", got, prefs)
	}
	// By stored time: from and until one event's stored time is that event (of its kind).
	third, err := e.r.LogEvent(ctx, sara, all[2])
	if err != nil {
		t.Fatal(err)
	}
	at := third.StoredAt
	if got := seqs(LogQuery{StoredFrom: &at, StoredUntil: &at}); !slices.Equal(got, []uint64{all[2]}) {
		t.Errorf("stored at %s: %v, want [%d]", at.Format(time.RFC3339Nano), got, all[2])
	}
	if got := seqs(LogQuery{StoredFrom: &at, Kind: events.KindPreferenceAdded}); !slices.Equal(got, prefs[1:]) {
		t.Errorf("preferences stored from %s: %v, want %v", at.Format(time.RFC3339Nano), got, prefs[1:])
	}
	before := at.Add(-time.Hour)
	if got := seqs(LogQuery{StoredUntil: &before}); len(got) != 0 {
		t.Errorf("stored until an hour before: %v", got)
	}
	for _, q := range []LogQuery{{Limit: 51}, {Limit: -1}, {Kind: "nope"}} {
		if _, err := e.r.Log(ctx, sara, q); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: %v, want ErrInvalidArgument", q, err)
		}
	}
	if p, err := e.r.Log(ctx, testenv.User(t, "nobody"), LogQuery{}); err != nil || len(p.Events) != 0 || p.NextAfter != nil {
		t.Errorf("a user without events: %+v, %v", p, err)
	}

	// Large events: a page ends at logPageBytes of data, and the next pages bring the rest.
	big := testenv.User(t, "big")
	tok, _ := events.TenantToken(big)
	data := []byte(`{"x":"` + strings.Repeat("a", 900<<10) + `"}`)
	for range 12 {
		if _, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: "mem." + tok + ".message_added", Data: data,
			Header: nats.Header{"ce-id": {events.NewID()}}}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := e.r.Log(ctx, big, LogQuery{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(first.Events); n == 0 || n*len(data) > logPageBytes || first.NextAfter == nil {
		t.Errorf("a page of large events: %d events of %d bytes, next_after %v", n, len(data), first.NextAfter)
	}
	var total int
	for q := (LogQuery{Limit: 50}); ; {
		p, err := e.r.Log(ctx, big, q)
		if err != nil {
			t.Fatal(err)
		}
		total += len(p.Events)
		if p.NextAfter == nil {
			break
		}
		q.After = *p.NextAfter
	}
	if total != 12 {
		t.Errorf("large events over all pages: %d, want 12", total)
	}
}

// TestLogHTTP: the log routes are authorized like every read of the user, and answer 400
// naming the parameter and 404 naming the sequence.
func TestLogHTTP(t *testing.T) {
	t.Parallel()
	e := newLogEnv(t)
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	ev, seq := e.preference(sara, "Senior")
	_, liamSeq := e.preference(liam, "Junior")
	saraReader := e.token([]string{sara}, auth.ScopeRead)
	base := userURL(e.url, sara)

	var one LoggedEvent
	if code, raw := get(t, base+"/log/"+strconv.FormatUint(seq, 10), saraReader, &one); code != http.StatusOK || one.EventID != ev.ID {
		t.Errorf("sara's event: %d %s", code, raw)
	}
	var page LogPage
	if code, raw := get(t, base+"/log?kind=preference_added&limit=10", saraReader, &page); code != http.StatusOK ||
		len(page.Events) != 1 || page.Events[0].Sequence != seq || page.NextAfter != nil {
		t.Errorf("sara's log: %d %s", code, raw)
	}
	if !strings.Contains(string(mustJSON(t, page)), `"next_after":null`) {
		t.Errorf("next_after is always present: %s", mustJSON(t, page))
	}
	cases := []struct {
		name, path string
		header     http.Header
		code       int
		want       string
	}{
		{"no credential", "/log", nil, http.StatusUnauthorized, "missing Authorization"},
		{"another user's credential", "/log", e.token([]string{liam}, auth.ScopeRead), http.StatusForbidden, "may not act for user"},
		{"without the read scope", "/log/1", e.token([]string{sara}, auth.ScopeWrite), http.StatusForbidden, `lacks scope \"read\"`},
		{"another tenant's sequence", "/log/" + strconv.FormatUint(liamSeq, 10), saraReader, http.StatusNotFound,
			"no event at sequence " + strconv.FormatUint(liamSeq, 10) + " in the log of user"},
		{"no sequence", "/log/x", saraReader, http.StatusBadRequest, `"field":"sequence"`},
		{"sequence 0", "/log/0", saraReader, http.StatusBadRequest, `"field":"sequence"`},
		{"unknown kind", "/log?kind=nope", saraReader, http.StatusBadRequest, `"field":"kind"`},
		{"bad time", "/log?stored_from=yesterday", saraReader, http.StatusBadRequest, `"field":"stored_from"`},
		{"bad cursor", "/log?after=-1", saraReader, http.StatusBadRequest, `"field":"after"`},
		{"limit too large", "/log?limit=51", saraReader, http.StatusBadRequest, `"field":"limit"`},
		{"unknown parameter", "/log?as_of=2026-05-01T00:00:00Z", saraReader, http.StatusBadRequest, `"field":"as_of"`},
		{"parameter of a single event", "/log/1?kind=x", saraReader, http.StatusBadRequest, `"field":"kind"`},
	}
	for _, tc := range cases {
		code, raw := get(t, base+tc.path, tc.header, nil)
		if code != tc.code || !strings.Contains(string(raw), tc.want) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, code, raw, tc.code, tc.want)
		}
	}
	// The shared tenant's log, with multi-tenant mode on: not readable.
	every := e.token([]string{"*"}, auth.ScopeRead)
	for _, path := range []string{"/v1/shared/log", "/v1/shared/log/1"} {
		if code, raw := get(t, e.url+path, every, nil); code != http.StatusNotFound || !strings.Contains(string(raw), "multi-tenant mode is on") {
			t.Errorf("%s: %d %s", path, code, raw)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzLogParams: the log routes' parameters are refused with an ArgumentError naming one, or
// read into a query within bounds.
func FuzzLogParams(f *testing.F) {
	for _, s := range []string{"", "kind=preference_added&limit=10", "stored_from=2026-05-01T00:00:00Z&stored_until=2026-05-01T00:00:00%2B02:00",
		"after=18446744073709551615", "limit=0", "kind=", "after=1&after=2", "x=1", "consistency=3"} {
		f.Add(s, "1")
	}
	f.Add("", "9223372036854775808")
	f.Add("", "-1")
	f.Fuzz(func(t *testing.T, raw, seq string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseLogQuery(v, 50)
		var arg *ArgumentError
		switch {
		case err != nil && (!errors.As(err, &arg) || arg.Field == ""):
			t.Fatalf("%q: %v is not an ArgumentError naming a parameter", raw, err)
		case err == nil && (q.Limit < 1 || q.Limit > 50 || (q.Kind != "" && !q.Kind.Valid()) || q.After > math.MaxInt64-1):
			t.Fatalf("%q: accepted out of bounds: %+v", raw, q)
		}
		n, err := parseSequence(seq)
		switch {
		case err != nil && (!errors.As(err, &arg) || arg.Field != "sequence"):
			t.Fatalf("sequence %q: %v", seq, err)
		case err == nil && (n == 0 || n > math.MaxInt64):
			t.Fatalf("sequence %q accepted as %d", seq, n)
		}
	})
}
