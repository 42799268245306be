package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	cenats "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/engram-memory/engram/internal/events"
)

// encodeViaSDK is Encode as it was written before its headers were written directly: the
// CloudEvents SDK's event, validated, written by the SDK's NATS binding. It is the reference
// Encode is held to.
func encodeViaSDK(e *events.Event) (*nats.Msg, error) {
	kind, ok := events.KindOf(e.Data)
	if !ok {
		return nil, events.ErrUnknownType
	}
	subject, err := events.Subject(e.User, kind)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return nil, err
	}
	if err := events.ValidateData(kind, data); err != nil {
		return nil, err
	}
	ev := ce.New(ce.CloudEventsVersionV1)
	ev.SetID(e.ID)
	ev.SetSource(e.Source)
	ev.SetType(kind.Type())
	if e.User != "" {
		ev.SetSubject(e.User)
	}
	ev.SetTime(e.Time.UTC())
	ev.SetDataSchema(kind.DataSchema())
	tok, _ := events.TenantToken(e.User)
	ev.SetExtension(events.ExtTenant, tok)
	if e.Actor != "" {
		ev.SetExtension(events.ExtActor, e.Actor)
	}
	if e.CorrelationID != "" {
		ev.SetExtension(events.ExtCorrelation, e.CorrelationID)
	}
	if e.CausationID != "" {
		ev.SetExtension(events.ExtCausation, e.CausationID)
	}
	if err := ev.SetData(events.ContentType, json.RawMessage(data)); err != nil {
		return nil, err
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	var body bytes.Buffer
	header, err := cenats.WriteMsg(context.Background(), binding.ToMessage(&ev), &body)
	if err != nil {
		return nil, err
	}
	header.Set(nats.MsgIdHdr, events.MsgID(tok, e.ID))
	return &nats.Msg{Subject: subject, Header: header, Data: body.Bytes()}, nil
}

// refusedByEncode reports whether Encode must refuse e though the SDK writes it: the SDK
// trims the id and the subject and drops a zero time, and writes header values that do not
// come back as written (line breaks, surrounding space) or that Decode refuses (not UTF-8, a
// time outside RFC 3339's years).
func refusedByEncode(e *events.Event) bool {
	for _, v := range []string{e.ID, e.User, e.Actor, e.CorrelationID, e.CausationID} {
		if !utf8.ValidString(v) || strings.ContainsAny(v, "\r\n") || strings.TrimSpace(v) != v {
			return true
		}
	}
	return e.Time.IsZero() || events.CheckTime(e.Time.UTC()) != nil
}

// checkEncodeMatchesSDK: Encode answers what the SDK's binding writes, header for header and
// byte for byte, or refuses what the SDK refuses (or would repair); and what it writes the
// SDK's binding reads back as the event written.
func checkEncodeMatchesSDK(t *testing.T, e *events.Event) {
	t.Helper()
	ref, refErr := encodeViaSDK(e)
	got, err := events.Encode(e)
	switch {
	case err != nil && refErr == nil && !refusedByEncode(e):
		t.Fatalf("Encode refused what the SDK writes: %v\nevent %+v", err, e)
	case err == nil && refErr != nil:
		t.Fatalf("Encode wrote what the SDK refuses (%v)\nevent %+v", refErr, e)
	case err == nil && refusedByEncode(e):
		t.Fatalf("Encode wrote what would not be read back as written\nevent %+v", e)
	case err != nil:
		return
	}
	if got.Subject != ref.Subject || !bytes.Equal(got.Data, ref.Data) {
		t.Fatalf("subject or data differ:\n got %s %s\nwant %s %s", got.Subject, got.Data, ref.Subject, ref.Data)
	}
	if !maps.EqualFunc(got.Header, ref.Header, slices.Equal) {
		t.Fatalf("headers differ:\n got %v\nwant %v", got.Header, ref.Header)
	}
	// The SDK's binding reads it as the event written.
	ev, err := binding.ToEvent(context.Background(), cenats.NewMessage(got))
	if err != nil {
		t.Fatalf("the SDK cannot read what Encode wrote: %v", err)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("the SDK finds what Encode wrote invalid: %v", err)
	}
	if ev.ID() != e.ID || ev.Subject() != e.User || !ev.Time().Equal(e.Time) || ev.Type() != e.Kind.Type() ||
		ev.DataContentType() != events.ContentType || !bytes.Equal(ev.Data(), got.Data) {
		t.Fatalf("the SDK reads %v, want event %+v", ev, e)
	}
	exts := ev.Extensions()
	for name, want := range map[string]string{events.ExtActor: e.Actor, events.ExtCorrelation: e.CorrelationID, events.ExtCausation: e.CausationID} {
		if got, _ := exts[name].(string); got != want {
			t.Fatalf("extension %s: the SDK reads %q, want %q", name, got, want)
		}
	}
	// And Engram's own decoder reads it back too.
	back, err := events.Decode(got.Subject+".0", got.Header, got.Data)
	if err != nil {
		t.Fatalf("Decode of what Encode wrote: %v", err)
	}
	if back.ID != e.ID || back.User != e.User || !back.Time.Equal(e.Time) || back.Actor != e.Actor {
		t.Fatalf("Decode reads %+v, want %+v", back, e)
	}
}

// TestEncodeMatchesSDK: every benchmark event and variants of its envelope (zones and
// nanoseconds in the time, the shared tenant, Unicode, sources that url.Parse rewrites or
// refuses, ids and users with surrounding space) against the SDK's binding.
func TestEncodeMatchesSDK(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("plus", 5*3600+1800), time.FixedZone("minus", -11*3600)}
	sources := []string{"/engram/ingestor", "https://agent.example/x?y=1#frag", "urn:agent:7", "a b", "%41", "http://[::1", "", " ", "mailto:ops@engram.dev"}
	for _, ne := range benchEvents() {
		for i, src := range sources {
			e := *ne.ev
			e.Source = src
			e.Time = time.Date(2026, 5, 1, 9, 0, 0, i*123457, zones[i%len(zones)])
			switch i % 4 {
			case 1:
				e.Actor, e.CorrelationID, e.CausationID = "agent ✓ 7", "", events.NewID()
			case 2:
				e.User, e.Actor = "", ""
			case 3:
				e.User = "Zoë@例え.jp"
			}
			switch d := e.Data.(type) {
			case events.UserUpserted:
				d.Identifier, d.UserID = e.User, events.UserID(e.User)
				e.Data = d
			case events.MessageAdded:
				d.ConversationID = events.ConversationID(e.User, d.SessionID)
				e.Data = d
			}
			t.Run(ne.name+"/"+src, func(t *testing.T) { checkEncodeMatchesSDK(t, &e) })
		}
		for _, bad := range []func(e *events.Event){
			func(e *events.Event) { e.ID = " " + e.ID },
			func(e *events.Event) { e.ID = "" },
			func(e *events.Event) { e.User = e.User + " " },
			func(e *events.Event) { e.Time = time.Time{} },
		} {
			e := *ne.ev
			bad(&e)
			if _, err := events.Encode(&e); err == nil {
				t.Errorf("%s: Encode wrote %+v, which the SDK would store otherwise", ne.name, e)
			}
		}
	}
}

// FuzzEncodeMatchesSDK varies the envelope of an event; Encode must agree with the SDK's
// binding on each (make fuzz runs it long; make test runs the seeds).
func FuzzEncodeMatchesSDK(f *testing.F) {
	f.Add("01a2320c-7ca5-7447-8bb8-8c4e68040d11", "/engram/ingestor", "sara@omg.com", "agent-7", "c-1", "", int64(1777626000123456789), 3600)
	f.Add(" x", "a b", "", "", "", "k", int64(0), 0)
	f.Add("id", "%zz", "u", "é", "\x00", "\t", int64(-1), -3600)
	f.Fuzz(func(t *testing.T, id, source, user, actor, corr, caus string, nanos int64, offset int) {
		e := &events.Event{ID: id, Source: source, User: user, Actor: actor, CorrelationID: corr, CausationID: caus,
			Time: time.Unix(0, nanos).In(time.FixedZone("z", offset%(18*3600))),
			Data: events.TraceCompleted{TraceID: "01a2320c-7ca5-7447-8bb8-8c4e68040d11", Outcome: "done"}}
		checkEncodeMatchesSDK(t, e)
	})
}

// BenchmarkEncodeViaSDK is the reference encoder (the SDK's generic event and binding) on
// the events of BenchmarkEncode: compare the two in one run.
func BenchmarkEncodeViaSDK(b *testing.B) {
	for _, ne := range benchEvents() {
		b.Run(ne.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeViaSDK(ne.ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
