package events

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// rawToken is EncodeToken without the identifier rules: what an agent can put on a subject.
func rawToken(id string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		if c := id[i]; isPlain(c) {
			b.WriteByte(c)
		} else {
			b.WriteString("_" + string(hex[c>>4]) + string(hex[c&0x0f]))
		}
	}
	return b.String()
}

// TestDecodeRefusesWhatTheIngestorRefuses covers issue 12 findings 6, 7 and 11 for events an
// agent publishes straight to NATS: times outside RFC 3339's years or with an offset of 24h
// or more, identifiers with leading or trailing Unicode space or format characters, invalid
// UTF-8, repeated JSON members and numbers no float64 holds are refused (dead-lettered), and
// ce- headers repeated in another case make the event undecodable instead of decoding either
// way at random.
func TestDecodeRefusesWhatTheIngestorRefuses(t *testing.T) {
	t.Parallel()
	const user = "sara@omg.com"
	conv := ConversationID(user, "s1")
	base := func() *nats.Msg {
		t.Helper()
		e := &Event{ID: NewID(), Source: "/agent", User: user, Time: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC),
			Data: MessageAdded{MessageID: NewID(), ConversationID: conv, SessionID: "s1", Role: "user", Content: "hi"}}
		msg, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	data := func(extra string) []byte {
		return []byte(`{"message_id":"` + NewID() + `","conversation_id":"` + conv + `","session_id":"s1","role":"user"` + extra + `}`)
	}
	tests := []struct {
		name    string
		mutate  func(m *nats.Msg)
		wantErr error
	}{
		{"valid", func(*nats.Msg) {}, nil},
		{"valid data by hand", func(m *nats.Msg) { m.Data = data(`,"content":"hi","metadata":{"n":1e300}`) }, nil},
		{"duplicate member", func(m *nats.Msg) { m.Data = data(`,"content":"hi","content":"bye"`) }, ErrInvalidData},
		{"duplicate nested member", func(m *nats.Msg) { m.Data = data(`,"content":"hi","metadata":{"a":1,"a":2}`) }, ErrInvalidData},
		{"invalid UTF-8 in data", func(m *nats.Msg) { m.Data = data(`,"content":"h` + "\xff" + `"`) }, ErrInvalidData},
		{"number beyond float64", func(m *nats.Msg) { m.Data = data(`,"content":"hi","metadata":{"n":[1e400]}`) }, ErrInvalidData},
		{"timestamp in year 10000 in UTC", func(m *nats.Msg) { m.Data = data(`,"content":"hi","timestamp":"9999-12-31T23:30:00-23:00"`) }, ErrInvalidData},
		{"timestamp in year -1 in UTC", func(m *nats.Msg) { m.Data = data(`,"content":"hi","timestamp":"0000-01-01T00:00:00+01:00"`) }, ErrInvalidData},
		{"timestamp offset +24:00", func(m *nats.Msg) { m.Data = data(`,"content":"hi","timestamp":"2026-05-01T09:00:00+24:00"`) }, ErrInvalidData},
		{"ce-time in year 10000 in UTC", func(m *nats.Msg) { m.Header.Set("ce-time", "9999-12-31T23:30:00-23:00") }, ErrUndecodable},
		{"ce-time offset +24:00", func(m *nats.Msg) { m.Header.Set("ce-time", "2026-05-01T09:00:00+24:00") }, ErrUndecodable},
		{"ce-id repeated in another case", func(m *nats.Msg) { m.Header["Ce-Id"] = []string{NewID()} }, ErrUndecodable},
		{"ce-subject repeated in another case", func(m *nats.Msg) { m.Header["CE-SUBJECT"] = []string{user} }, ErrUndecodable},
		{"ce-id with two values", func(m *nats.Msg) { m.Header["ce-id"] = append(m.Header["ce-id"], NewID()) }, ErrUndecodable},
		{"ce-actor not UTF-8", func(m *nats.Msg) { m.Header.Set("ce-actor", "agent\xff") }, ErrUndecodable},
	}
	for _, ws := range []string{"\u00a0", "\u2003", "\u3000", "\u2028", "\u200b", "\ufeff", "\u0085"} {
		for _, id := range []string{ws + user, user + ws} {
			tests = append(tests, struct {
				name    string
				mutate  func(m *nats.Msg)
				wantErr error
			}{"identifier " + strings.ReplaceAll(id, ws, "<"+rawToken(ws)+">"), func(m *nats.Msg) {
				m.Subject = "mem." + rawToken(id) + "." + string(KindMessageAdded)
				m.Header.Set("ce-subject", id)
				m.Header.Set("ce-tenant", rawToken(id))
				m.Data = []byte(`{"message_id":"` + NewID() + `","conversation_id":"` + ConversationID(id, "s1") + `","session_id":"s1","role":"user","content":"hi"}`)
			}, ErrUndecodable})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := base()
			tt.mutate(m)
			_, err := Decode(m.Subject, m.Header, m.Data)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestValidateIdentifierUnicodeSpace: issue 12 finding 7 at the source of the rule that the
// ingestor, the Go client and the decoder share.
func TestValidateIdentifierUnicodeSpace(t *testing.T) {
	t.Parallel()
	for _, ws := range []string{" ", "\u00a0", "\u2003", "\u3000", "\u2028", "\u2029", "\u200b", "\ufeff", "\u2060", "\u0085", "\u180e"} {
		for _, id := range []string{ws + "sara", "sara" + ws} {
			if err := ValidateIdentifier(id); !errors.Is(err, ErrInvalidIdentifier) {
				t.Errorf("ValidateIdentifier(%q) = %v, want ErrInvalidIdentifier", id, err)
			}
		}
	}
	for _, id := range []string{"sara@omg.com", "a b", "zoë", "日本", "a\u00a0b"} {
		if err := ValidateIdentifier(id); err != nil {
			t.Errorf("ValidateIdentifier(%q) = %v", id, err)
		}
	}
}
