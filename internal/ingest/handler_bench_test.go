package ingest_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// BenchmarkHandler measures the ingest handler per request on an embedded JetStream, as the
// service runs it (strict decode, build, the erasure look-up, encode, publish, the answer):
// ns and allocations per request for the frequent commands, and per event for a batch of 100.
// The HTTP transport is left out (httptest), so that what the handler costs is what shows:
// go test -run '^$' -bench BenchmarkHandler -benchmem ./internal/ingest/
func BenchmarkHandler(b *testing.B) {
	h := newHarness(b, true)
	user := testenv.User(b, "bench-handler")
	u := `"user_identifier":"` + user + `"`
	trace := events.NewID()
	cases := []struct{ name, method, path, body string }{
		{"add_message", http.MethodPost, "/v1/messages", msgBody(b, user, "Find me a senior consultant team for a healthcare project in Berlin.")},
		{"add_preference", http.MethodPost, "/v1/preferences", `{` + u + `,"category":"consultants","preference":"Prefers senior consultants",` +
			`"context":"staffing","confidence":0.85,"applies_to":[{"name":"Healthcare","type":"Industry"}]}`},
		{"start_trace", http.MethodPost, "/v1/traces", `{` + u + `,"session_id":"s-1","task":"find consultants","trace_id":"` + trace + `"}`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := h.do(c.method, c.path, c.body); r.code != http.StatusAccepted {
					b.Fatalf("%d %s", r.code, r.body)
				}
			}
		})
	}
	b.Run("batch_of_100", func(b *testing.B) {
		cmds := make([]string, 100)
		for i := range cmds {
			cmds[i] = fmt.Sprintf(`{"op":"add_message",%s,"session_id":"s-%d","role":"user","content":"message %d"}`, u, i%7, i)
		}
		body := `{"commands":[` + strings.Join(cmds, ",") + `]}`
		b.ReportAllocs()
		for b.Loop() {
			if r := h.do(http.MethodPost, "/v1/batch", body); r.code != http.StatusAccepted {
				b.Fatalf("%d %s", r.code, r.body)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
	})
}
