package stream_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func key(t *testing.T, s string) stream.Key {
	t.Helper()
	k, err := stream.NewKey([]byte(strings.Repeat(s, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestPublishDedupeIsPerTenant covers issue 12 finding 9 on the stream: JetStream
// deduplicates on the Nats-Msg-Id across the whole stream, so two tenants' events of one
// event id must not share it. With and without the ingestors' keys, the second tenant's event
// is stored (not a duplicate), and the same tenant's repeat still is a duplicate — also when
// the repeat comes in an atomic batch.
func TestPublishDedupeIsPerTenant(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string][]stream.PublisherOption{
		"without keys": nil,
		"with keys":    {stream.WithKeys(stream.Keys{key(t, "k")})},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, _, js := testenv.NATS(t)
			pub := stream.NewPublisher(js, 5*time.Second, opts...)
			id := events.NewID()
			sara, liam := prefEvent("sara@omg.com"), prefEvent("liam@omg.com")
			sara.ID, liam.ID = id, id
			first, err := pub.Publish(t.Context(), sara)
			if err != nil {
				t.Fatal(err)
			}
			other, err := pub.Publish(t.Context(), liam)
			if err != nil {
				t.Fatal(err)
			}
			if other.Duplicate || other.Sequence == first.Sequence {
				t.Errorf("liam's event of sara's id: %+v, want stored apart from %+v", other, first)
			}
			again, err := pub.Publish(t.Context(), sara)
			if err != nil {
				t.Fatal(err)
			}
			if !again.Duplicate || again.Sequence != first.Sequence {
				t.Errorf("sara's repeat: %+v, want a duplicate of %d", again, first.Sequence)
			}
			noah := prefEvent("noah@omg.com")
			noah.ID = id
			if _, err := pub.PublishBatch(t.Context(), []*events.Event{prefEvent("noah@omg.com"), noah}); err != nil {
				t.Errorf("a batch holding another tenant's event id: %v", err)
			}
			if _, err := pub.PublishBatch(t.Context(), []*events.Event{prefEvent("noah@omg.com"), sara}); !errors.Is(err, stream.ErrDuplicateInBatch) {
				t.Errorf("a batch repeating sara's event: %v, want %v", err, stream.ErrDuplicateInBatch)
			}
			if n := streamMsgs(t, js); n != 4 {
				t.Errorf("stream holds %d messages, want 4", n)
			}
		})
	}
}

// TestKeyedMsgIDCannotBeForged: a publisher without the key (an agent over NATS, choosing its
// own Nats-Msg-Id) cannot make an id that suppresses a keyed publisher's event of another
// tenant — not with the event id, not with events.MsgID of the victim's tenant.
func TestKeyedMsgIDCannotBeForged(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	pub := stream.NewPublisher(js, 5*time.Second, stream.WithKeys(stream.Keys{key(t, "k")}))
	id := events.NewID()
	liamTok, _ := events.TenantToken("liam@omg.com")
	for _, forged := range []string{id, events.MsgID(liamTok, id), liamTok + ":k" + id} {
		m, err := events.Encode(prefEvent("sara@omg.com"))
		if err != nil {
			t.Fatal(err)
		}
		m.Header.Set(nats.MsgIdHdr, forged)
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	victim := prefEvent("liam@omg.com")
	victim.ID = id
	st, err := pub.Publish(t.Context(), victim)
	if err != nil {
		t.Fatal(err)
	}
	if st.Duplicate {
		t.Fatalf("liam's event taken for a duplicate of sequence %d, which another tenant forged", st.Sequence)
	}
}

// TestVouch: a keyed publisher's events verify with its keys (also after rotation, as the
// second key) and with no other; a change of any ce- header or of the data, or a publisher
// without the key, does not verify.
func TestVouch(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	k1, k2 := key(t, "a"), key(t, "b")
	pub := stream.NewPublisher(js, 5*time.Second, stream.WithKeys(stream.Keys{k1}))
	ev := prefEvent("sara@omg.com")
	ev.Actor = "agent-7"
	st, err := pub.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(t.Context(), st.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if !(stream.Keys{k1}).Verify(raw.Subject, raw.Header, raw.Data) || !(stream.Keys{k2, k1}).Verify(raw.Subject, raw.Header, raw.Data) {
		t.Fatal("the stored event's vouch does not verify with its key")
	}
	if (stream.Keys{k2}).Verify(raw.Subject, raw.Header, raw.Data) {
		t.Error("verifies with another key")
	}
	tamper := func(f func(h nats.Header) (string, nats.Header, []byte)) bool {
		h := nats.Header{}
		for k, v := range raw.Header {
			h[k] = append([]string(nil), v...)
		}
		subj, h, data := f(h)
		return (stream.Keys{k1}).Verify(subj, h, data)
	}
	for name, f := range map[string]func(h nats.Header) (string, nats.Header, []byte){
		"actor": func(h nats.Header) (string, nats.Header, []byte) {
			h.Set("ce-actor", "ops")
			return raw.Subject, h, raw.Data
		},
		"source": func(h nats.Header) (string, nats.Header, []byte) {
			h.Set("ce-source", "/x")
			return raw.Subject, h, raw.Data
		},
		"actor added": func(h nats.Header) (string, nats.Header, []byte) {
			h.Set("Ce-Actor", "ops")
			return raw.Subject, h, raw.Data
		},
		"data": func(h nats.Header) (string, nats.Header, []byte) {
			return raw.Subject, h, append([]byte(" "), raw.Data...)
		},
		"other tenant": func(h nats.Header) (string, nats.Header, []byte) { return "mem.liam.preference_added.1", h, raw.Data },
		"no vouch": func(h nats.Header) (string, nats.Header, []byte) {
			h.Del(stream.VouchHeader)
			return raw.Subject, h, raw.Data
		},
		"garbage vouch": func(h nats.Header) (string, nats.Header, []byte) {
			h.Set(stream.VouchHeader, "v1.x.y")
			return raw.Subject, h, raw.Data
		},
		"repeated vouch": func(h nats.Header) (string, nats.Header, []byte) {
			h.Add(stream.VouchHeader, "v1.x.y")
			return raw.Subject, h, raw.Data
		},
	} {
		if tamper(f) {
			t.Errorf("%s changed: still verifies", name)
		}
	}
	// A keyless publisher (an operator's tool) vouches for nothing.
	st2, err := stream.NewPublisher(js, 5*time.Second).Publish(t.Context(), prefEvent("sara@omg.com"))
	if err != nil {
		t.Fatal(err)
	}
	raw2, err := s.GetMsg(t.Context(), st2.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if (stream.Keys{k1}).Verify(raw2.Subject, raw2.Header, raw2.Data) {
		t.Error("a keyless publisher's event verifies")
	}
}

func TestLoadKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := strings.Repeat("a", 40), strings.Repeat("b", 32)
	ks, err := stream.LoadKeys(write("ok", "# ingestor keys\n"+a+"\n\n"+b+"  \n"))
	if err != nil || len(ks) != 2 {
		t.Fatalf("LoadKeys: %d keys, %v", len(ks), err)
	}
	if ks[0].MsgID("t", "e") != key(t, "a").MsgID("t", "e") && ks[0].MsgID("t", "e") == ks[1].MsgID("t", "e") {
		t.Error("keys not in file order")
	}
	if _, err := stream.LoadKeys(write("empty", "# none\n\n")); !errors.Is(err, stream.ErrNoKey) {
		t.Errorf("empty file: %v, want %v", err, stream.ErrNoKey)
	}
	_, err = stream.LoadKeys(write("short", a+"\nsecret-short\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "secret-short") {
		t.Errorf("short key: %v, want an error naming line 2 and not the key", err)
	}
}
