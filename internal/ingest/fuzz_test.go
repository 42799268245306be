package ingest_test

import (
	"errors"
	"testing"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
)

// seedBodies are valid and broken bodies of every endpoint, the fuzzers' starting points.
var seedBodies = map[string][]string{
	ingest.OpUpsertUser: {
		`{"identifier":"sara@omg.com","attributes":{"role":"manager","n":12345678901234567890}}`,
		`{"identifier":"sara@omg.com","attributes":null}`,
		`{"identifier":"sara@omg.com","attributes":{}}`,
	},
	ingest.OpRecreateUser: {`{"identifier":"sara@omg.com","reason":"came back"}`, `{"identifier":"zoë 日本 x"}`},
	ingest.OpEraseUser:    {`{"identifier":"sara@omg.com","reason":"asked"}`, `{"identifier":"zoë 日本 x","reason":""}`},
	ingest.OpAddMessage: {
		`{"user_identifier":"sara@omg.com","session_id":"sara-2026-05-01","role":"user","content":"Find me a healthcare team"}`,
		`{"session_id":"s","role":"tool","content":"x","timestamp":"2026-05-01T09:00:00.123456789+02:00","metadata":{"a":[1,{"b":null}]},"title":"t"}`,
		`{"session_id":"s","role":"user","content":"\u0000\ud800","message_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d"}`,
	},
	ingest.OpAddPreference: {
		`{"user_identifier":"sara@omg.com","category":"consultants","preference":"Senior on healthcare","applies_to":[{"name":"Healthcare","type":"Industry"},{"id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d"}],"confidence":0.9,"valid_from":"2026-05-01T09:00:00Z"}`,
		`{"category":"c","preference":"p","applies_to":[{}]}`,
	},
	ingest.OpSupersedePreference: {
		`{"user_identifier":"sara@omg.com","old_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d","new_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0e","valid_until":"2026-06-01T00:00:00Z"}`,
	},
	ingest.OpStartTrace: {`{"user_identifier":"sara@omg.com","session_id":"s","task":"consultant search","metadata":{"k":"v"}}`},
	ingest.OpAddTraceStep: {
		`{"trace_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d","step_number":3,"thought":"t","action":"a","observation":"o"}`,
	},
	ingest.OpRecordToolCall: {
		`{"trace_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d","step_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0e","tool_name":"search","arguments":{"q":"x"},"result":[1,2],"status":"error","duration_ms":5,"error":"boom"}`,
	},
	ingest.OpCompleteTrace: {`{"trace_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d","outcome":"found","success":false}`},
	ingest.OpDeleteMessage: {
		`{"user_identifier":"sara@omg.com","message_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d"}`,
		`{"user_identifier":"sara@omg.com","message_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d","session_id":"s"}`,
	},
	ingest.OpClearSession: {`{"user_identifier":"sara@omg.com","session_id":"s"}`},
	ingest.OpDeleteEntity: {`{"user_identifier":"sara@omg.com","entity_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d"}`},
}

var brokenBodies = []string{``, `{`, `[]`, `null`, `{"x":1}`, `{"session_id":5}`, `{"applies_to":[{"name":1}]}`, `{} {}`, `{"timestamp":"x"}`}

// checkAccepted holds the decoders to their contract: what they refuse is a *FieldError;
// what they and Build accept encodes to an event that decodes back unchanged.
func checkAccepted(t *testing.T, cmds []ingest.Command, err error) {
	t.Helper()
	if err != nil {
		var fe *ingest.FieldError
		if !errors.As(err, &fe) || fe.Reason == "" || !errors.Is(err, ingest.ErrInvalid) {
			t.Fatalf("decode error %v (%T) is not a FieldError with a reason", err, err)
		}
		return
	}
	for _, multiTenant := range []bool{false, true} {
		built, err := ingest.BuildBatch(cmds, ingest.Settings{MultiTenant: multiTenant})
		if err != nil {
			var fe *ingest.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ingest.ErrInvalid) {
				t.Fatalf("build error %v (%T) is not a FieldError", err, err)
			}
			continue
		}
		for _, b := range built {
			msg, err := events.Encode(b.Event)
			if errors.Is(err, events.ErrDataTooLarge) {
				continue
			}
			if err != nil {
				t.Fatalf("Build accepted a %s the event schema refuses: %v", b.Event.Kind, err)
			}
			got, err := events.Decode(msg.Subject, msg.Header, msg.Data)
			if err != nil {
				t.Fatalf("accepted %s does not decode: %v\n%s", b.Event.Kind, err, msg.Data)
			}
			if got.ID != b.Event.ID || got.Kind != b.Event.Kind || got.User != b.Event.User {
				t.Fatalf("round trip changed the envelope: %+v -> %+v", b.Event, got)
			}
		}
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for i, op := range ingest.Ops {
		for _, b := range seedBodies[op] {
			f.Add(uint8(i), []byte(b))
		}
		for _, b := range brokenBodies {
			f.Add(uint8(i), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, body []byte) {
		op := ingest.Ops[int(opIndex)%len(ingest.Ops)]
		cmd, err := ingest.DecodeCommand(op, body)
		if err == nil && cmd.Op() != op {
			t.Fatalf("decoded %s as %s", op, cmd.Op())
		}
		checkAccepted(t, []ingest.Command{cmd}, err)
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, op := range ingest.Ops {
		for _, b := range seedBodies[op] {
			f.Add([]byte(`{"commands":[` + b[:1] + `"op":"` + op + `",` + b[1:] + `]}`))
		}
	}
	for _, b := range brokenBodies {
		f.Add([]byte(`{"commands":[` + b + `]}`))
		f.Add([]byte(b))
	}
	f.Add([]byte(`{"commands":[{"op":"complete_trace","trace_id":"01968f4c-1d2e-7a3b-8c4d-5e6f7a8b9c0d"},{"op":7}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		cmds, err := ingest.DecodeBatch(body, 50)
		if err == nil && (len(cmds) == 0 || len(cmds) > 50) {
			t.Fatalf("decoded a batch of %d", len(cmds))
		}
		checkAccepted(t, cmds, err)
	})
}
