package stream

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/events"
)

// FuzzDoor holds the door's check of an agent's message (subject and headers) to its rule,
// written out here a second way: a message is relayed exactly when its subject is
// agent.<token>.<kind>, its kind is not an erasure or a re-creation, no header name starts
// with Nats-Batch- in any case, and every Nats-Expected-Last-Subject-Sequence-Subject names a
// subject of the token's tenant. Relayed messages go to mem.<token>.<kind>.
func FuzzDoor(f *testing.F) {
	f.Add("agent.c2FyYQ.preference_added", "Nats-Msg-Id", "x", "ce-id", "1")
	f.Add("agent.c2FyYQ.preference_added", "Nats-Batch-Id", "b", "Nats-Batch-Sequence", "1")
	f.Add("agent.c2FyYQ.message_added", "nats-batch-commit", "1", "", "")
	f.Add("agent.c2FyYQ.user_erased", "", "", "", "")
	f.Add("agent.c2FyYQ.preference_added", "Nats-Expected-Last-Subject-Sequence-Subject", "mem.bGlhbQ.>", "", "")
	f.Add("agent.c2FyYQ.preference_added", "NATS-EXPECTED-LAST-SUBJECT-SEQUENCE-SUBJECT", "mem.c2FyYQ.preference_added.*", "", "")
	f.Add("agent..x", "", "", "", "")
	f.Add("agent.a.b.c", "", "", "", "")
	f.Fuzz(func(t *testing.T, subject, k1, v1, k2, v2 string) {
		h := nats.Header{}
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}} {
			if kv[0] != "" {
				h[kv[0]] = append(h[kv[0]], kv[1])
			}
		}
		token, kind, ok := agentSubject(subject)
		parts := strings.Split(subject, ".")
		wantOK := len(parts) == 3 && parts[0] == AgentRoot && parts[1] != "" && parts[2] != ""
		if ok != wantOK {
			t.Fatalf("agentSubject(%q) ok = %v, want %v", subject, ok, wantOK)
		}
		if !ok {
			return
		}
		if token+"."+kind != strings.TrimPrefix(subject, AgentRoot+".") {
			t.Fatalf("agentSubject(%q) = %q, %q", subject, token, kind)
		}
		reason, code := doorRefusal(h, token, kind)
		want := kind != string(events.KindUserErased) && kind != string(events.KindUserRecreated)
		asciiFold := func(a, b string) bool { // equal but for the case of ASCII letters
			return len(a) == len(b) && isASCII(a) && strings.EqualFold(a, b)
		}
		for name, vals := range h {
			if len(name) >= len("nats-batch-") && asciiFold(name[:len("nats-batch-")], "NATS-BATCH-") {
				want = false
			}
			if asciiFold(name, "nats-expected-last-subject-sequence-subject") {
				for _, v := range vals {
					if !strings.HasPrefix(v, "mem."+token+".") {
						want = false
					}
				}
			}
		}
		if relayed := reason == ""; relayed != want {
			t.Fatalf("subject %q headers %q: relayed = %v (%q), want %v", subject, h, relayed, reason, want)
		}
		if reason != "" && code != errCodeAtomicDisabled && code != errCodeBadRequest {
			t.Fatalf("refusal code %d", code)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
