package ingest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func batchAccepted(t *testing.T, r reply) ingest.BatchAccepted {
	t.Helper()
	if r.code != http.StatusAccepted {
		t.Fatalf("batch: status %d, want 202: %s", r.code, r.body)
	}
	var b ingest.BatchAccepted
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBatch: a batch stores every command's event, in order, with consecutive sequences, one
// shared correlation id, and the documented subjects and headers.
func TestBatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	sara, liam := testenv.User(t, "sara"), testenv.User(t, "liam")
	trace, step, oldPref, newPref := events.NewID(), events.NewID(), events.NewID(), events.NewID()
	cmds := []map[string]any{
		{"op": "upsert_user", "identifier": sara, "attributes": map[string]any{"role": "manager"}},
		{"op": "upsert_user", "identifier": liam},
		{"op": "add_message", "user_identifier": sara, "session_id": "sara-1", "role": "user", "content": "Find me a healthcare team"},
		{"op": "add_message", "user_identifier": liam, "session_id": "liam-1", "role": "user", "content": "Find me a fintech team"},
		{"op": "add_preference", "user_identifier": sara, "preference_id": oldPref, "category": "consultants", "preference": "Junior"},
		{"op": "add_preference", "user_identifier": sara, "preference_id": newPref, "category": "consultants", "preference": "Senior",
			"applies_to": []any{map[string]any{"name": "Healthcare", "type": "Industry"}}},
		{"op": "supersede_preference", "user_identifier": sara, "old_id": oldPref, "new_id": newPref},
		{"op": "start_trace", "user_identifier": sara, "trace_id": trace, "session_id": "sara-1", "task": "search"},
		{"op": "add_trace_step", "user_identifier": sara, "trace_id": trace, "step_id": step, "thought": "look"},
		{"op": "record_tool_call", "user_identifier": sara, "trace_id": trace, "step_id": step, "tool_name": "search"},
		{"op": "complete_trace", "user_identifier": sara, "trace_id": trace, "success": true},
		{"op": "erase_user", "identifier": liam},
	}
	kinds := []events.Kind{
		events.KindUserUpserted, events.KindUserUpserted, events.KindMessageAdded, events.KindMessageAdded,
		events.KindPreferenceAdded, events.KindPreferenceAdded, events.KindPreferenceSuperseded, events.KindTraceStarted,
		events.KindTraceStepAdded, events.KindToolCallRecorded, events.KindTraceCompleted, events.KindUserErased,
	}
	users := []string{sara, liam, sara, liam, sara, sara, sara, sara, sara, sara, sara, liam}
	body := mustJSON(t, map[string]any{"commands": cmds})
	b := batchAccepted(t, h.do(http.MethodPost, "/v1/batch", body))
	if len(b.Results) != len(cmds) || b.BatchID == "" {
		t.Fatalf("answer %+v", b)
	}
	for i, r := range b.Results {
		if r.Op != cmds[i]["op"] {
			t.Errorf("results[%d].op %s, want %s", i, r.Op, cmds[i]["op"])
		}
		if i > 0 && r.Sequence != b.Results[i-1].Sequence+1 {
			t.Errorf("results[%d].sequence %d after %d: want consecutive", i, r.Sequence, b.Results[i-1].Sequence)
		}
		if users[i] == liam && kinds[i] != events.KindUserErased {
			// Liam is erased later in the batch: his earlier events are purged from the stream.
			s, err := h.js.Stream(t.Context(), stream.MemoryStream)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetMsg(t.Context(), r.Sequence); !errors.Is(err, jetstream.ErrMsgNotFound) {
				t.Errorf("results[%d]: an erased user's event is still stored (%v)", i, err)
			}
			continue
		}
		m := stored(t, h.js, r.Sequence)
		ev := checkEnvelope(t, m, r.EventID, users[i], kinds[i])
		if got := m.Header.Get("ce-correlationid"); got != b.BatchID {
			t.Errorf("results[%d] correlationid %q, want the batch id %q", i, got, b.BatchID)
		}
		if ev.CorrelationID != b.BatchID {
			t.Errorf("decoded correlation %q", ev.CorrelationID)
		}
	}
	if b.Sequence != b.Results[len(b.Results)-1].Sequence {
		t.Errorf("batch sequence %d, want the last event's %d", b.Sequence, b.Results[len(b.Results)-1].Sequence)
	}
	if b.Results[4].PreferenceID != oldPref || b.Results[7].TraceID != trace || b.Results[2].MessageID == "" ||
		b.Results[2].ConversationID != events.ConversationID(sara, "sara-1") {
		t.Errorf("minted ids in results: %+v", b.Results)
	}
	if n := count(t, h.js); n != uint64(len(cmds)-2) {
		t.Errorf("stream holds %d events, want %d (all but Liam's two purged ones)", n, len(cmds)-2)
	}

	// X-Correlation-ID names the batch.
	b2 := batchAccepted(t, h.do(http.MethodPost, "/v1/batch",
		`{"commands":[{"op":"complete_trace","user_identifier":"`+sara+`","trace_id":"`+trace+`"}]}`, "X-Correlation-ID", "agent-run-7"))
	if b2.BatchID != "agent-run-7" || stored(t, h.js, b2.Sequence).Header.Get("ce-correlationid") != "agent-run-7" {
		t.Errorf("correlated batch %+v", b2)
	}
}

// TestBatchAllOrNothing: a batch with one invalid command publishes nothing; a batch the
// server refuses (it holds an already stored event id) stores nothing; retrying a stored batch
// with the same ids stores nothing again.
func TestBatchAllOrNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true)
	user := testenv.User(t, "batch")
	cmd := func(extra string) string {
		return `{"op":"add_message","user_identifier":"` + user + `","session_id":"s","role":"user","content":"hi"` + extra + `}`
	}
	batch := func(cmds ...string) string { return `{"commands":[` + strings.Join(cmds, ",") + `]}` }

	// One invalid command among valid ones: 400, nothing published.
	r := h.do(http.MethodPost, "/v1/batch", batch(cmd(""), cmd(""), cmd(`,"role":"boss"`), cmd("")))
	if r.code != http.StatusBadRequest || r.problem(t).Field != "commands[2].role" {
		t.Fatalf("invalid batch: %d %s", r.code, r.body)
	}
	if n := count(t, h.js); n != 0 {
		t.Fatalf("invalid batch stored %d events", n)
	}

	// A stored event, then a batch holding its id among new ones: the server refuses the
	// whole batch.
	storedID := events.NewID()
	single := `{"user_identifier":"` + user + `","session_id":"s","role":"user","content":"hi","event_id":"` + storedID + `"}`
	h.do(http.MethodPost, "/v1/messages", single).accepted(t)
	r = h.do(http.MethodPost, "/v1/batch", batch(cmd(""), cmd(`,"event_id":"`+storedID+`"`), cmd("")))
	if r.code != http.StatusConflict || len(r.problem(t).EventIDs) != 3 {
		t.Fatalf("batch holding a stored event: %d %s, want 409 with the event ids", r.code, r.body)
	}
	if n := count(t, h.js); n != 1 {
		t.Fatalf("refused batch stored %d events beside the single one", n-1)
	}

	// A batch with its own ids, stored, then retried: 409, nothing stored twice.
	ids := []string{events.NewID(), events.NewID(), events.NewID()}
	retry := batch(cmd(`,"event_id":"`+ids[0]+`"`), cmd(`,"event_id":"`+ids[1]+`"`), cmd(`,"event_id":"`+ids[2]+`"`))
	first := batchAccepted(t, h.do(http.MethodPost, "/v1/batch", retry))
	if r := h.do(http.MethodPost, "/v1/batch", retry); r.code != http.StatusConflict {
		t.Fatalf("retried batch: %d %s, want 409", r.code, r.body)
	}
	if n := count(t, h.js); n != 4 {
		t.Fatalf("stream holds %d events, want 4", n)
	}
	// Its events are deduplicated one by one too.
	again := h.do(http.MethodPost, "/v1/messages",
		`{"user_identifier":"`+user+`","session_id":"s","role":"user","content":"hi","event_id":"`+ids[1]+`"}`).accepted(t)
	if !again.Duplicate || again.Sequence != first.Results[1].Sequence {
		t.Errorf("event of a stored batch sent alone: %+v, want duplicate of sequence %d", again, first.Results[1].Sequence)
	}
}
