package events

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// memRing is a Keyring in memory for the codec's unit tests (the real one, keys.Ring on a
// JetStream KV bucket, is tested against NATS in internal/keys).
type memRing struct {
	mu   sync.Mutex
	keys map[string]map[KeyRef][]byte // user → ref → key
	cur  map[string]KeyRef
}

func newMemRing() *memRing {
	return &memRing{keys: map[string]map[KeyRef][]byte{}, cur: map[string]KeyRef{}}
}

func (r *memRing) SealKey(_ context.Context, user string) (KeyRef, []byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, ok := r.cur[user]
	if !ok {
		ref = KeyRef{ID: "0123456789abcdef", Version: 1}
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		r.keys[user] = map[KeyRef][]byte{ref: k}
		r.cur[user] = ref
	}
	return ref, r.keys[user][ref], nil
}

func (r *memRing) OpenKey(_ context.Context, user string, ref KeyRef) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.keys[user][ref]
	if !ok {
		return nil, ErrShredded
	}
	return k, nil
}

func (r *memRing) destroy(user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.keys, user)
	delete(r.cur, user)
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	user := "sara@omg.com"
	ring := newMemRing()
	codec := Codec{Keys: ring}
	for _, e := range sample(user) {
		e.ID, e.Source, e.User, e.Time, e.Actor, e.CorrelationID, e.CausationID = NewID(), "/engram/test", user, time.Now().UTC().Truncate(time.Microsecond), "agent-1", "corr-1", "cause-1"
		plain, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := codec.Seal(ctx, user, msg); err != nil {
			t.Fatalf("seal %s: %v", e.Kind, err)
		}
		stored := msg.Subject + ".3"
		if !Sealable(user, e.Kind) {
			// Tombstones and re-creations stay readable without keys.
			if msg.Header.Get(HeaderKey) != "" || !bytes.Equal(msg.Data, plain.Data) {
				t.Fatalf("%s was sealed", e.Kind)
			}
			if _, err := Decode(stored, msg.Header, msg.Data); err != nil {
				t.Fatalf("decode unsealed %s: %v", e.Kind, err)
			}
			continue
		}
		if msg.Header.Get(HeaderKey) != "0123456789abcdef.1" {
			t.Errorf("%s: %s = %q", e.Kind, HeaderKey, msg.Header.Get(HeaderKey))
		}
		for _, h := range SealedHeaders {
			if _, ok := msg.Header[h]; ok {
				t.Errorf("%s: header %s left in clear", e.Kind, h)
			}
		}
		if bytes.Contains(msg.Data, []byte(user)) || bytes.Contains(msg.Data, plain.Data[:min(len(plain.Data), 12)]) {
			t.Errorf("%s: sealed data holds plaintext", e.Kind)
		}
		if _, err := Decode(stored, msg.Header, msg.Data); !errors.Is(err, ErrSealed) || !errors.Is(err, ErrUndecodable) {
			t.Errorf("%s: Decode of a sealed event: %v, want ErrSealed", e.Kind, err)
		}
		h, d, err := codec.Open(ctx, stored, msg.Header, msg.Data)
		if err != nil {
			t.Fatalf("open %s: %v", e.Kind, err)
		}
		if !bytes.Equal(d, plain.Data) || !reflect.DeepEqual(h, plain.Header) {
			t.Errorf("%s: opened %v %s, want %v %s", e.Kind, h, d, plain.Header, plain.Data)
		}
		got, err := codec.Decode(ctx, stored, msg.Header, msg.Data)
		if err != nil {
			t.Fatalf("codec decode %s: %v", e.Kind, err)
		}
		if got.User != user || got.CorrelationID != "corr-1" || got.CausationID != "cause-1" || got.ID != e.ID {
			t.Errorf("%s: decoded %+v", e.Kind, got)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	user, other := "sara@omg.com", "liam@omg.com"
	ring := newMemRing()
	codec := Codec{Keys: ring}
	seal := func(u string) *nats.Msg {
		t.Helper()
		e := &Event{ID: NewID(), Source: "/engram/test", User: u, Time: time.Now().UTC(),
			Data: MessageAdded{MessageID: NewID(), ConversationID: ConversationID(u, "s"), SessionID: "s", Role: "user", Content: "secret"}}
		msg, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := codec.Seal(ctx, u, msg); err != nil {
			t.Fatal(err)
		}
		return msg
	}
	a := seal(user)
	tampered := bytes.Clone(a.Data)
	tampered[len(tampered)-1] ^= 1
	otherTok, _ := EncodeToken(other)
	b := seal(other)
	moved := nats.Header{}
	for k, v := range a.Header {
		moved[k] = v
	}
	moved.Set("ce-id", b.Header.Get("ce-id"))
	for _, c := range []struct {
		name    string
		subject string
		header  nats.Header
		data    []byte
		codec   Codec
		wantErr error
	}{
		{"tampered", a.Subject, a.Header, tampered, codec, ErrUndecodable},
		{"another event's id", a.Subject, moved, a.Data, codec, ErrUndecodable},
		{"another tenant's subject", "mem." + otherTok + ".message_added", a.Header, a.Data, codec, ErrUndecodable},
		{"shared tenant", "mem." + SharedTenantToken + ".message_added", a.Header, a.Data, codec, ErrUndecodable},
		{"no keys", a.Subject, a.Header, a.Data, Codec{}, ErrSealed},
		{"bad key header", a.Subject, nats.Header{HeaderKey: {"nope"}}, a.Data, codec, ErrUndecodable},
		{"too short", a.Subject, a.Header, a.Data[:5], codec, ErrUndecodable},
	} {
		if _, _, err := c.codec.Open(ctx, c.subject, c.header, c.data); !errors.Is(err, c.wantErr) {
			t.Errorf("%s: %v, want %v", c.name, err, c.wantErr)
		}
	}
	ring.destroy(user)
	_, err := codec.Decode(ctx, a.Subject, a.Header, a.Data)
	if !errors.Is(err, ErrShredded) || !errors.Is(err, ErrUndecodable) {
		t.Errorf("after the key is destroyed: %v, want ErrShredded", err)
	}
	if strings.Contains(err.Error(), user) {
		t.Errorf("the error names the user: %v", err)
	}
	// Plaintext events still decode through the codec.
	e := &Event{ID: NewID(), Source: "/agent", User: user, Time: time.Now().UTC(), Data: UserUpserted{UserID: UserID(user), Identifier: user}}
	plain, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := codec.Decode(ctx, plain.Subject, plain.Header, plain.Data); err != nil {
		t.Errorf("plaintext through the codec: %v", err)
	}
}

// BenchmarkSealOpen: sealing and opening one message_added of the ingestor's size with a
// cached key (the AES-256-GCM pass and the frame), next to Encode and Decode of the same event.
func BenchmarkSealOpen(b *testing.B) {
	user := "sara@omg.com"
	ring := newMemRing()
	codec := Codec{Keys: ring}
	e := &Event{ID: NewID(), Source: "/engram/ingestor", User: user, Time: time.Now().UTC(), Actor: "agent", CorrelationID: NewID(),
		Data: MessageAdded{MessageID: NewID(), ConversationID: ConversationID(user, "s1"), SessionID: "s1", Role: "user",
			Content: "Find me a senior consultant team for a healthcare project in Berlin."}}
	plain, err := Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	sealed, err := Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	if err := codec.Seal(b.Context(), user, sealed); err != nil {
		b.Fatal(err)
	}
	stored := sealed.Subject + ".3"
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Encode(e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode+seal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := Encode(e)
			if err != nil {
				b.Fatal(err)
			}
			if err := codec.Seal(b.Context(), user, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(stored, plain.Header, plain.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open+decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := codec.Decode(b.Context(), stored, sealed.Header, sealed.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
