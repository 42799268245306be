package keys_test

import (
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/testenv"
)

// BenchmarkDecodeSealed: what a reader pays per sealed event with the user's key cached in
// its Ring (on a real KV bucket), next to the same event in plaintext:
// go test -run '^$' -bench BenchmarkDecodeSealed -benchmem ./internal/keys/
func BenchmarkDecodeSealed(b *testing.B) {
	_, _, js := testenv.NATS(b)
	ring := keys.Default(js)
	codec := events.Codec{Keys: ring}
	user := testenv.User(b, "bench")
	e := &events.Event{ID: events.NewID(), Source: "/engram/ingestor", User: user, Time: time.Now().UTC(), Actor: "agent",
		Data: events.MessageAdded{MessageID: events.NewID(), ConversationID: events.ConversationID(user, "s1"), SessionID: "s1", Role: "user",
			Content: "Find me a senior consultant team for a healthcare project in Berlin."}}
	plain, err := events.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	sealed, err := events.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	if err := codec.Seal(b.Context(), user, sealed); err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		msg  [2]any
	}{{"plaintext", [2]any{plain.Header, plain.Data}}, {"sealed", [2]any{sealed.Header, sealed.Data}}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			m := plain
			if v.name == "sealed" {
				m = sealed
			}
			for b.Loop() {
				if _, err := codec.DecodeStored(m.Subject+".1", m.Header, m.Data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
