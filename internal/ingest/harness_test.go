package ingest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// testConfig is the ingestor configuration of the tests (defaults; Common unused but the
// multi-tenant switch).
func testConfig(t testing.TB, multiTenant bool) ingest.Config {
	t.Helper()
	cfg, err := ingest.LoadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg.Common.MultiTenant = multiTenant
	return cfg
}

// harness is an ingestor handler on an embedded JetStream.
type harness struct {
	t  testing.TB
	js jetstream.JetStream
	h  *ingest.Handler
}

func newHarness(t testing.TB, multiTenant bool) *harness {
	t.Helper()
	_, _, js := testenv.NATS(t)
	return newHarnessOn(t, js, testConfig(t, multiTenant))
}

func newHarnessOn(t testing.TB, js jetstream.JetStream, cfg ingest.Config) *harness {
	t.Helper()
	h, err := ingest.NewHandler(stream.NewPublisher(js, 5*time.Second), cfg)
	if err != nil {
		t.Fatalf("new handler: %v", err)
	}
	return &harness{t: t, js: js, h: h}
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) accepted(t testing.TB) ingest.Accepted {
	t.Helper()
	if r.code != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", r.code, r.body)
	}
	var a ingest.Accepted
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("decode answer %s: %v", r.body, err)
	}
	return a
}

func (r reply) problem(t testing.TB) ingest.Problem {
	t.Helper()
	var p ingest.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode problem %s: %v", r.body, err)
	}
	return p
}

// do sends a request; a non-empty body goes as application/json unless headers say otherwise
// (pairs of name, value).
func (h *harness) do(method, path, body string, headers ...string) reply {
	h.t.Helper()
	req := httptest.NewRequestWithContext(h.t.Context(), method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	return reply{code: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// count is the number of messages in the memory stream.
func count(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// stored returns the message at seq.
func stored(t testing.TB, js jetstream.JetStream, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatalf("get message %d: %v", seq, err)
	}
	return m
}

// storedSubject is the subject an event of user and kind is stored under.
func storedSubject(t testing.TB, user string, k events.Kind) string {
	t.Helper()
	tok, err := events.TenantToken(user)
	if err != nil {
		t.Fatal(err)
	}
	return "mem." + tok + "." + string(k) + "." + strconv.Itoa(events.Partition(tok, natsdeploy.Partitions))
}

// checkEnvelope checks the stored message of an accepted event: subject, CloudEvents headers,
// Nats-Msg-Id, and that it decodes; it returns the decoded event.
func checkEnvelope(t testing.TB, m *jetstream.RawStreamMsg, eventID, user string, k events.Kind) *events.Event {
	t.Helper()
	if want := storedSubject(t, user, k); m.Subject != want {
		t.Errorf("%s stored on %q, want %q", k, m.Subject, want)
	}
	tok, _ := events.TenantToken(user)
	want := map[string]string{
		"ce-specversion":     "1.0",
		"ce-id":              eventID,
		"ce-type":            k.Type(),
		"ce-source":          ingest.DefaultSource,
		"ce-subject":         user,
		"ce-tenant":          tok,
		"ce-dataschema":      k.DataSchema(),
		"ce-datacontenttype": events.ContentType,
		"ce-actor":           ingest.AnonymousActor,
	}
	// Tenant-scoped: events.MsgID from a publisher without keys, the keyed id (and a vouch)
	// from the ingestor's (Module's) publisher.
	if id := m.Header.Get(nats.MsgIdHdr); id != events.MsgID(tok, eventID) &&
		(!strings.HasPrefix(id, tok+":k") || m.Header.Get(stream.VouchHeader) == "") {
		t.Errorf("%s header Nats-Msg-Id = %q, want %q or the keyed id of tenant %s", k, id, events.MsgID(tok, eventID), tok)
	}
	for h, v := range want {
		if got := m.Header.Get(h); got != v {
			t.Errorf("%s header %s = %q, want %q", k, h, got, v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, m.Header.Get("ce-time")); err != nil {
		t.Errorf("%s header ce-time %q: %v", k, m.Header.Get("ce-time"), err)
	}
	ev, err := events.Decode(m.Subject, m.Header, m.Data)
	if err != nil {
		t.Fatalf("decode stored %s: %v", k, err)
	}
	return ev
}

func userPath(user string) string { return "/v1/users/" + url.PathEscape(user) }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
