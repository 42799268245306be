package events

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func sample(user string) []*Event {
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	conf := 0.9
	ok := true
	dur := int64(12)
	return []*Event{
		{Data: UserUpserted{UserID: UserID(user), Identifier: user, Attributes: map[string]any{"role": "manager"}}},
		{Data: MessageAdded{MessageID: NewID(), ConversationID: ConversationID(user, "s1"), SessionID: "s1", Role: "user", Content: "Find me a healthcare team"}},
		{Data: PreferenceAdded{PreferenceID: NewID(), Category: "consultants", Preference: "Senior on healthcare", Confidence: &conf, ValidFrom: &at,
			AppliesTo: []EntityRef{{Name: "Healthcare", Type: "Industry"}}}},
		{Data: PreferenceSuperseded{OldID: NewID(), NewID: NewID()}},
		{Data: TraceStarted{TraceID: NewID(), SessionID: "s1", Task: "consultant search"}},
		{Data: TraceStepAdded{TraceID: NewID(), StepID: NewID(), Thought: "look"}},
		{Data: ToolCallRecorded{TraceID: NewID(), StepID: NewID(), ToolCallID: NewID(), ToolName: "search", Status: "success", DurationMS: &dur, Arguments: map[string]any{"q": "x"}}},
		{Data: TraceCompleted{TraceID: NewID(), Outcome: "found", Success: &ok}},
		{Data: UserErased{Identifier: user}},
		{Data: UserRecreated{UserID: UserID(user), Identifier: user}},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	user := "sara@omg.com"
	for _, e := range sample(user) {
		e.ID, e.Source, e.User, e.Time, e.Actor, e.CorrelationID = NewID(), "/engram/test", user, time.Now().UTC().Truncate(time.Microsecond), "agent-1", "corr-1"
		msg, err := Encode(e)
		if err != nil {
			t.Fatalf("encode %T: %v", e.Data, err)
		}
		if want := "mem.sara_40omg_2Ecom." + string(e.Kind); msg.Subject != want {
			t.Errorf("subject %q, want %q", msg.Subject, want)
		}
		for h, want := range map[string]string{
			nats.MsgIdHdr: "sara_40omg_2Ecom:" + e.ID, "ce-id": e.ID, "ce-type": e.Kind.Type(), "ce-subject": user,
			"ce-specversion": "1.0", "ce-dataschema": e.Kind.DataSchema(), "ce-tenant": "sara_40omg_2Ecom",
			"ce-datacontenttype": ContentType, "ce-actor": "agent-1", "ce-correlationid": "corr-1",
		} {
			if got := msg.Header.Get(h); got != want {
				t.Errorf("%T header %s = %q, want %q", e.Data, h, got, want)
			}
		}
		got, err := Decode(msg.Subject+".3", msg.Header, msg.Data)
		if err != nil {
			t.Fatalf("decode %T: %v", e.Data, err)
		}
		if !reflect.DeepEqual(got.Data, e.Data) && e.Kind != KindToolCallRecorded {
			t.Errorf("data %#v, want %#v", got.Data, e.Data)
		}
		if got.ID != e.ID || got.User != user || !got.Time.Equal(e.Time) || got.Actor != "agent-1" || got.Kind != e.Kind {
			t.Errorf("envelope %+v, want %+v", got, e)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	user := "sara@omg.com"
	good := func() *nats.Msg {
		e := &Event{ID: NewID(), Source: "/t", User: user, Time: time.Now(),
			Data: PreferenceAdded{PreferenceID: NewID(), Category: "c", Preference: "p"}}
		m, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name    string
		mutate  func(m *nats.Msg)
		wantErr error
	}{
		{"garbage body", func(m *nats.Msg) { m.Data = []byte("{not json") }, ErrInvalidData},
		{"unknown field", func(m *nats.Msg) {
			m.Data = []byte(`{"preference_id":"` + NewID() + `","category":"c","preference":"p","x":1}`)
		}, ErrInvalidData},
		{"missing required", func(m *nats.Msg) { m.Data = []byte(`{"category":"c","preference":"p"}`) }, ErrInvalidData},
		{"unknown type", func(m *nats.Msg) { m.Header.Set("ce-type", "dev.engram.memory.nope.v1") }, ErrUnknownType},
		{"no headers", func(m *nats.Msg) { m.Header = nats.Header{} }, ErrUndecodable},
		{"other tenant", func(m *nats.Msg) { m.Subject = "mem.liam_40omg_2Ecom.preference_added" }, ErrUndecodable},
		{"kind mismatch", func(m *nats.Msg) { m.Subject = "mem.sara_40omg_2Ecom.message_added" }, ErrUndecodable},
		{"bad subject", func(m *nats.Msg) { m.Subject = "foo" }, ErrUndecodable},
	}
	for _, tt := range tests {
		m := good()
		tt.mutate(m)
		if _, err := Decode(m.Subject, m.Header, m.Data); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}

func FuzzDecode(f *testing.F) {
	e := &Event{ID: NewID(), Source: "/t", User: "sara@omg.com", Time: time.Now(),
		Data: PreferenceAdded{PreferenceID: NewID(), Category: "c", Preference: "p"}}
	m, err := Encode(e)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(m.Subject, m.Header.Get("ce-type"), m.Header.Get("ce-subject"), m.Data)
	f.Fuzz(func(t *testing.T, subject, typ, user string, data []byte) {
		h := nats.Header{}
		for k, v := range m.Header {
			h[k] = v
		}
		h.Set("ce-type", typ)
		h.Set("ce-subject", user)
		ev, err := Decode(subject, h, data)
		if err != nil {
			return
		}
		// Whatever decodes must name a valid kind and agree with its subject.
		tok, kind, _ := ParseSubject(subject)
		if want, _ := TenantToken(ev.User); want != tok || kind != ev.Kind {
			t.Fatalf("decoded %+v from subject %q", ev, subject)
		}
	})
}
