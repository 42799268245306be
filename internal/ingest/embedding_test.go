package ingest_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/engram-memory/engram/internal/embed"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestEmbeddings: a write's vector goes into its event; with EMBEDDER set, the ingestor embeds
// the text of a write that has none (content; preference and context; name and description;
// task), in single writes and batches alike, and keeps a vector given; a bad vector is a 400
// naming embedding, and nothing is stored.
func TestEmbeddings(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	cfg := testConfig(t, true)
	cfg.Embedder = "hash:32"
	h := newHarnessOn(t, js, cfg)
	hash := embed.Hash{D: 32}
	const u = `"user_identifier":"sara@omg.com"`
	vecOf := func(text string) []float64 {
		v, err := hash.Embed(text)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		name, path, body string
		kind             events.Kind
		want             []float64
	}{
		{"message embedded", "/v1/messages", `{` + u + `,"session_id":"s1","role":"user","content":"book the sushi place"}`,
			events.KindMessageAdded, vecOf("book the sushi place")},
		{"message with its own vector", "/v1/messages", `{` + u + `,"session_id":"s1","role":"user","content":"x","embedding":[1,0.5,-2]}`,
			events.KindMessageAdded, []float64{1, 0.5, -2}},
		{"message without words", "/v1/messages", `{` + u + `,"session_id":"s1","role":"assistant","content":""}`,
			events.KindMessageAdded, nil},
		{"preference embedded", "/v1/preferences", `{` + u + `,"category":"food","preference":"sushi","context":"on fridays"}`,
			events.KindPreferenceAdded, vecOf("sushi\non fridays")},
		{"entity embedded", "/v1/entities", `{` + u + `,"name":"Acme","type":"ORGANIZATION","description":"an insurer"}`,
			events.KindEntityAdded, vecOf("Acme\nan insurer")},
		{"trace embedded", "/v1/traces", `{` + u + `,"session_id":"s1","task":"compare offers"}`,
			events.KindTraceStarted, vecOf("compare offers")},
	} {
		r := h.do("POST", tt.path, tt.body)
		if r.code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", tt.name, r.code, r.body)
		}
		acc := r.accepted(t)
		ev := checkEnvelope(t, stored(t, js, acc.Sequence), acc.EventID, "sara@omg.com", tt.kind)
		var got []float64
		switch d := ev.Data.(type) {
		case events.MessageAdded:
			got = d.Embedding
		case events.PreferenceAdded:
			got = d.Embedding
		case events.EntityAdded:
			got = d.Embedding
		case events.TraceStarted:
			got = d.Embedding
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: stored embedding %v, want %v", tt.name, got, tt.want)
		}
	}
	r := h.do("POST", "/v1/batch", `{"commands":[{"op":"add_message",`+u+`,"session_id":"s1","role":"user","content":"in a batch"}]}`)
	if r.code != http.StatusAccepted {
		t.Fatalf("batch: %d %s", r.code, r.body)
	}

	before := count(t, js)
	for _, tt := range []struct{ name, body, field string }{
		{"empty", `{` + u + `,"session_id":"s1","role":"user","content":"x","embedding":[]}`, "embedding"},
		{"all zeros", `{` + u + `,"session_id":"s1","role":"user","content":"x","embedding":[0,0,0]}`, "embedding"},
		{"not numbers", `{` + u + `,"session_id":"s1","role":"user","content":"x","embedding":["a"]}`, "embedding"},
		{"beyond float64", `{` + u + `,"session_id":"s1","role":"user","content":"x","embedding":[1e400]}`, "embedding[0]"},
		{"in a batch", `{"commands":[{"op":"add_message",` + u + `,"session_id":"s1","role":"user","content":"x","embedding":[0]}]}`, "commands[0].embedding"},
	} {
		path := "/v1/messages"
		if tt.name == "in a batch" {
			path = "/v1/batch"
		}
		r := h.do("POST", path, tt.body)
		if r.code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tt.name, r.code, r.body)
			continue
		}
		if p := r.problem(t); p.Field != tt.field {
			t.Errorf("%s: field %q (%s), want %q", tt.name, p.Field, p.Error, tt.field)
		}
	}
	if got := count(t, js); got != before {
		t.Errorf("%d events stored by refused writes", got-before)
	}
}
