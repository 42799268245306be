package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
)

// fakeStore stands in for JetStream under the real handler and publisher, on a plain
// embedded NATS server (nothing is stored, so a million requests cost no disk): single
// publishes are taken by PublishMsg, batches and purges (which the publisher sends as NATS
// requests) are answered by subscriptions the way JetStream answers them. It keeps every
// message it was handed.
type fakeStore struct {
	jetstream.JetStream // the embedded server's, for Conn and Options

	mu   sync.Mutex
	seq  uint64
	msgs []*nats.Msg
}

func (s *fakeStore) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.msgs = append(s.msgs, m)
	return &jetstream.PubAck{Stream: stream.MemoryStream, Sequence: s.seq}, nil
}

func (s *fakeStore) take() []*nats.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.msgs
	s.msgs = nil
	return out
}

// batchMsg keeps one message of an atomic batch and answers its flow control and commit.
func (s *fakeStore) batchMsg(m *nats.Msg) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	var ack []byte
	if m.Header.Get("Nats-Batch-Commit") != "" {
		n, _ := strconv.ParseUint(m.Header.Get("Nats-Batch-Sequence"), 10, 64)
		s.seq += n
		ack, _ = json.Marshal(map[string]any{"stream": stream.MemoryStream, "seq": s.seq, "batch": m.Header.Get("Nats-Batch-Id"), "count": n})
	}
	s.mu.Unlock()
	if m.Reply != "" {
		_ = m.Respond(ack)
	}
}

func newFakeStore(tb testing.TB) *fakeStore {
	tb.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	srv.Start()
	tb.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	s := &fakeStore{JetStream: js}
	if _, err := nc.Subscribe("mem.>", s.batchMsg); err != nil {
		tb.Fatal(err)
	}
	if _, err := nc.Subscribe("$JS.API.STREAM.PURGE.>", func(m *nats.Msg) { _ = m.Respond([]byte(`{"success":true,"purged":0}`)) }); err != nil {
		tb.Fatal(err)
	}
	// No user was ever erased: every look-up of a tombstone or re-creation finds none.
	if _, err := nc.Subscribe("$JS.API.DIRECT.GET.>", func(m *nats.Msg) {
		_ = m.RespondMsg(&nats.Msg{Header: nats.Header{"Status": []string{"404"}, "Description": []string{"Message Not Found"}}})
	}); err != nil {
		tb.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// handlerRoutes are the ingestor's write routes; %s is the path parameter.
var handlerRoutes = []struct{ method, path, op string }{
	{"PUT", "/v1/users/%s", ingest.OpUpsertUser},
	{"POST", "/v1/users", ingest.OpUpsertUser},
	{"DELETE", "/v1/users/%s", ingest.OpEraseUser},
	{"POST", "/v1/users/%s/recreate", ingest.OpRecreateUser},
	{"POST", "/v1/messages", ingest.OpAddMessage},
	{"POST", "/v1/preferences", ingest.OpAddPreference},
	{"POST", "/v1/preferences/%s/supersede", ingest.OpSupersedePreference},
	{"POST", "/v1/traces", ingest.OpStartTrace},
	{"POST", "/v1/traces/%s/steps", ingest.OpAddTraceStep},
	{"POST", "/v1/traces/%s/tool-calls", ingest.OpRecordToolCall},
	{"POST", "/v1/traces/%s/complete", ingest.OpCompleteTrace},
	{"POST", "/v1/batch", "batch"},
}

// FuzzHandler sends raw bodies (and path parameters, Content-Types, correlation ids) through
// the ingestor's real HTTP handler and publisher, to every write route, the batch included.
// It never panics; the answer is 202, or a 4xx whose problem names a field with nothing
// stored; and every event of a 202 is one the projector decodes (events.Decode), with the
// ids and sequences the answer gave: what the ingestor accepts is never dead-lettered as
// undecodable or schema-invalid (issue 12, finding 7).
func FuzzHandler(f *testing.F) {
	store := newFakeStore(f)
	cfg := testConfig(f, true)
	cfg.MaxBodyBytes = 64 << 10
	h, err := ingest.NewHandler(stream.NewPublisher(store, 5*time.Second), cfg)
	if err != nil {
		f.Fatal(err)
	}
	const id = "01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d"
	for i, r := range handlerRoutes {
		param := id
		if r.op == ingest.OpUpsertUser || r.op == ingest.OpEraseUser || r.op == ingest.OpRecreateUser {
			param = "sara@omg.com"
		}
		if r.op == "batch" {
			for _, op := range ingest.Ops {
				for _, b := range seedBodies[op] {
					f.Add(uint8(i), "", "application/json", "", []byte(`{"commands":[`+b[:1]+`"op":"`+op+`",`+b[1:]+`]}`))
				}
			}
			continue
		}
		for _, b := range seedBodies[r.op] {
			f.Add(uint8(i), param, "application/json", "", []byte(b))
			f.Add(uint8(i), param, "application/cloudevents+json; charset=utf-8", "corr-1", []byte(b))
			if !strings.Contains(b, "identifier") { // multi-tenant: the user is required
				f.Add(uint8(i), param, "application/json", "", []byte(`{"user_identifier":"sara@omg.com",`+b[1:]))
			}
		}
		for _, b := range brokenBodies {
			f.Add(uint8(i), param, "application/json", "", []byte(b))
		}
		f.Add(uint8(i), param, "text/plain", "", []byte(`{}`))
	}

	f.Fuzz(func(t *testing.T, route uint8, param, contentType, correlation string, body []byte) {
		r := handlerRoutes[int(route)%len(handlerRoutes)]
		target := r.path
		if strings.Contains(target, "%s") {
			if param == "" || param == "." || param == ".." {
				return // no route: the mux's 404, or its redirect to the cleaned path
			}
			target = fmt.Sprintf(target, url.PathEscape(param))
		}
		req := httptest.NewRequest(r.method, target, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if correlation != "" {
			req.Header.Set(ingest.CorrelationHeader, correlation)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		stored := store.take()
		if rec.Code == http.StatusNotFound && rec.Body.String() == "404 page not found\n" && strings.Contains(r.path, "%s") {
			return // the mux found no route (e.g. /v1/users/%2F): not the handler's answer
		}

		if rec.Code != http.StatusAccepted {
			var p ingest.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Error == "" {
				t.Fatalf("%s %s: %d with body %q", r.method, target, rec.Code, rec.Body.Bytes())
			}
			if rec.Code < 400 || rec.Code >= 500 || p.Field == "" && rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
				t.Fatalf("%s %s: %d %+v for %q", r.method, target, rec.Code, p, body)
			}
			if len(stored) > 0 {
				t.Fatalf("%s %s: %d, yet %d events were published", r.method, target, rec.Code, len(stored))
			}
			return
		}
		var ids []string
		if r.op == "batch" {
			var a ingest.BatchAccepted
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || len(a.Results) == 0 {
				t.Fatalf("batch answer %q: %v", rec.Body.Bytes(), err)
			}
			for i, res := range a.Results {
				if res.Sequence != a.Sequence-uint64(len(a.Results)-1-i) {
					t.Fatalf("batch answer sequences %q", rec.Body.Bytes())
				}
				ids = append(ids, res.EventID)
			}
		} else {
			var a ingest.Accepted
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.Sequence == 0 {
				t.Fatalf("answer %q: %v", rec.Body.Bytes(), err)
			}
			ids = append(ids, a.EventID)
		}
		if len(stored) != len(ids) {
			t.Fatalf("answered %d events, published %d", len(ids), len(stored))
		}
		for i, m := range stored {
			ev, err := events.Decode(m.Subject, m.Header, m.Data)
			if err != nil {
				t.Fatalf("accepted %s %s (%q), but the projector cannot decode event %d: %v\nheaders %v\ndata %s",
					r.method, target, body, i, err, m.Header, m.Data)
			}
			if ev.ID != ids[i] {
				t.Fatalf("event %d is %s, the answer says %s", i, ev.ID, ids[i])
			}
			if correlation != "" && ev.CorrelationID != correlation {
				t.Fatalf("correlation id %q stored as %q", correlation, ev.CorrelationID)
			}
		}
	})
}
