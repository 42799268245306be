package events

import (
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestFastRulesCoverEveryKind: every kind's schema compiles to a rule, so the fast path
// answers for every kind. A schema that grows a keyword rule.go does not know fails here.
func TestFastRulesCoverEveryKind(t *testing.T) {
	t.Parallel()
	for _, k := range Kinds {
		if _, err := kindRule(k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

// validSeeds are one valid data document of each kind, in Kinds order.
func validSeeds() [][]byte {
	const user = "sara@omg.com"
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	conf, dur, ok := 0.85, int64(42), true
	id := "0190a5a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b"
	out := make([][]byte, 0, len(Kinds))
	for _, d := range []any{
		UserUpserted{UserID: UserID(user), Identifier: user, Attributes: map[string]any{"role": "manager", "n": 1.5, "l": []any{nil, true}}},
		MessageAdded{MessageID: id, ConversationID: ConversationID(user, "s1"), SessionID: "s1", Role: "user",
			Content: "Find me a team\n\"now\" zoë", Timestamp: &at, Metadata: map[string]any{"a": map[string]any{}}, Title: "t"},
		PreferenceAdded{PreferenceID: id, Category: "consultants", Preference: "Senior", Context: "c", Confidence: &conf, ValidFrom: &at,
			Metadata: map[string]any{}, AppliesTo: []EntityRef{{Name: "Healthcare", Type: "Industry"}, {ID: id}}},
		PreferenceSuperseded{OldID: id, NewID: id, ValidUntil: &at},
		TraceStarted{TraceID: id, SessionID: "s1", Task: "search", Metadata: map[string]any{"k": "v"}},
		TraceStepAdded{TraceID: id, StepID: id, StepNumber: 3, Thought: "look", Action: "a", Observation: "o"},
		ToolCallRecorded{TraceID: id, StepID: id, ToolCallID: id, ToolName: "search", Arguments: map[string]any{"q": "x"},
			Result: []any{1.0, "two"}, Status: "success", DurationMS: &dur, Error: "e"},
		TraceCompleted{TraceID: id, Outcome: "found", Success: &ok},
		UserErased{Identifier: user, Reason: "asked"},
		UserRecreated{UserID: UserID(user), Identifier: user, Reason: "came back"},
		EntityAdded{Name: "Acme", Type: "ORGANIZATION", Subtype: "COMPANY", Description: "d", Aliases: []string{"ACME Inc"},
			Attributes: map[string]any{"k": "v"}, Confidence: &conf, MessageIDs: []string{id}, TraceIDs: []string{}},
		RelationshipAdded{Source: EntityRef{ID: id}, Target: EntityRef{Name: "Acme", Type: "ORGANIZATION"}, Type: "WORKS_AT",
			Description: "d", Confidence: &conf, ValidFrom: &at, ValidUntil: &at, Attributes: map[string]any{"since": 2020.0}},
		EntitiesMerged{SourceID: id, TargetID: id},
		MessageDeleted{MessageID: id, ConversationID: id, SessionID: "s-1"},
		MessageDeleted{MessageID: id},
		SessionCleared{ConversationID: id, SessionID: "s-1"},
		EntityDeleted{EntityID: id},
		FactAdded{FactID: id, Subject: "Sara", Predicate: "works_at", Object: "Acme", Confidence: &conf, ValidFrom: &at,
			ValidUntil: &at, Metadata: map[string]any{}},
	} {
		b, err := json.Marshal(d)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

// trickySeeds are documents at the edges the two paths must agree on, each with the kind it
// is meant for; the fuzzer tries them under every kind as well.
func trickySeeds() map[Kind][]string {
	const id = `"0190a5a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b"`
	pre := `{"trace_id":` + id + `,"step_id":` + id
	sup := func(t string) string { return `{"old_id":` + id + `,"new_id":` + id + `,"valid_until":"` + t + `"}` }
	pref := func(extra string) string {
		return `{"preference_id":` + id + `,"category":"c","preference":"p"` + extra + `}`
	}
	msg := func(extra string) string {
		return `{"message_id":` + id + `,"conversation_id":` + id + `,"session_id":"s","role":"user","content":""` + extra + `}`
	}
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	seeds := map[Kind][]string{
		KindTraceStepAdded: {
			pre + `,"step_number":1.0}`, pre + `,"step_number":1e2}`, pre + `,"step_number":-0}`,
			pre + `,"step_number":1000000}`, pre + `,"step_number":1000001}`, pre + `,"step_number":1000000.5}`,
			pre + `,"step_number":-0.5}`, pre + `,"step_number":1e-2000000}`, pre + `,"step_number":0e-2000000}`,
			pre + `,"step_number":null}`, pre + `,"step_number":"1"}`, pre + `,"step_number":99999999999999999999}`,
			pre + `,"thought":"a","thought":"b"}`, pre + `,"THOUGHT":"a"}`, pre + `,"thought":null}`,
			pre + `,"thought":"` + "\xff" + `"}`, pre + `}trailing`, ` ` + pre + "}\n\t", pre + `,"action":` + `"\u0000"}`,
		},
		KindToolCallRecorded: {
			`{"trace_id":` + id + `,"step_id":` + id + `,"tool_call_id":` + id + `,"tool_name":"t","status":"success","duration_ms":604800000}`,
			`{"trace_id":` + id + `,"step_id":` + id + `,"tool_call_id":` + id + `,"tool_name":"t","status":"success","duration_ms":604800001}`,
			`{"trace_id":` + id + `,"step_id":` + id + `,"tool_call_id":` + id + `,"tool_name":"t","status":"success","duration_ms":6.048e8}`,
			`{"trace_id":` + id + `,"step_id":` + id + `,"tool_call_id":` + id + `,"tool_name":"t","status":"SUCCESS"}`,
			`{"trace_id":` + id + `,"step_id":` + id + `,"tool_call_id":` + id + `,"tool_name":"t","status":"success","arguments":{"n":1e400}}`,
			`{"trace_id":` + id + `,"step_id":` + id + `,"tool_call_id":` + id + `,"tool_name":"t","status":"success","result":null,"arguments":` + deep(9999) + `}`,
			`{"trace_id":` + id + `,"step_id":` + id + `,"tool_call_id":` + id + `,"tool_name":"t","status":"success","result":` + deep(10000) + `}`,
			`{"trace_id":` + id + `,"step_id":` + id + `,"tool_call_id":` + id + `,"tool_name":"t","status":"success","arguments":{"a":1,"b":{"a":1,"a":2}}}`,
			`{"trace_id":` + id + `,"step_id":` + id + `,"tool_call_id":` + id + `,"tool_name":"t","status":"success","arguments":{"\ud800":1,"\ufffd":2}}`,
		},
		KindPreferenceAdded: {
			pref(`,"confidence":1`), pref(`,"confidence":1.0000000000000000001`), pref(`,"confidence":0.99999999999999999999`),
			pref(`,"confidence":-0.0`), pref(`,"confidence":-1e-300`), pref(`,"confidence":1e-2000000`), pref(`,"confidence":1E0`),
			pref(`,"applies_to":[]`), pref(`,"applies_to":[{"type":"x"}]`), pref(`,"applies_to":[{"name":""}]`),
			pref(`,"applies_to":[{"id":` + strings.ToUpper(id) + `}]`), pref(`,"applies_to":[{"name":"a","extra":1}]`),
			pref(`,"applies_to":[` + strings.Repeat(`{"name":"a"},`, 64) + `{"name":"a"}]`),
			pref(`,"applies_to":[` + strings.Repeat(`{"name":"a"},`, 63) + `{"name":"a"}]`),
			pref(`,"metadata":{` + strings.Repeat(`"k":1,`, 0) + `"a":1,"b":2}`),
			pref(`,"valid_from":"2024-02-29T00:00:00Z"`), pref(`,"valid_from":"2026-02-29T00:00:00Z"`),
			`{"preference_id":` + id + `,"category":"` + strings.Repeat("é", 256) + `","preference":"p"}`,
			`{"preference_id":` + id + `,"category":"` + strings.Repeat("é", 257) + `","preference":"p"}`,
			`{"preference_id":` + id + `,"category":"` + strings.Repeat(`\u00e9`, 256) + `","preference":"p"}`,
			`{"preference_id":` + id + `,"category":"` + strings.Repeat(`\ud83d\ude00`, 256) + `","preference":"p"}`,
			`{"preference_id":` + id + `,"category":"` + strings.Repeat(`\ud83d`, 257) + `","preference":"p"}`,
		},
		KindPreferenceSuperseded: {
			sup("2026-12-31T23:59:60Z"), sup("2026-12-31T23:59:60+00:00"), sup("2026-12-31T23:59:60+01:00"),
			sup("2027-01-01T00:59:60+01:00"), sup("2026-12-31T22:59:60-01:00"), sup("2026-05-01t09:00:00z"),
			sup("2026-05-01T09:00:00.Z"), sup("2026-05-01T09:00:00.123456789+05:30"), sup("2026-05-01T09:00:00+24:00"),
			sup("2026-05-01T09:00:00+23:59"), sup("2026-05-01T+9:00:00Z"), sup("2026-05-01T-0:00:00Z"),
			sup("2026-05-01T09:00:00+0530"), sup("2026-05-01 09:00:00Z"), sup("9999-12-31T23:30:00-23:00"),
			sup(`2026-05-01T09:00:00\u005a`), sup("2026-05-01T09:00:00Zé"), sup("2026-5-01T09:00:00Z"),
			`{"old_id":` + strings.ToUpper(id) + `,"new_id":` + id + `}`, `{"old_id":` + id + `,"new_id":"` + id[1:37] + `\n"}`,
			`{"old_id":` + id + `}`, `{"old_id":` + id + `,"new_id":` + id + `,"valid_until":null}`,
		},
		KindMessageAdded: {
			msg(`,"role":"user"`), msg(`,"metadata":{` + strings.Repeat(`"k":1,`, 0) + `}`), msg(`,"metadata":null`),
			msg(`,"metadata":[]`), msg(`,"title":"` + strings.Repeat("日", 1024) + `"`), msg(`,"title":"` + strings.Repeat("日", 1025) + `"`),
			`{"message_id":` + id + `,"conversation_id":` + id + `,"session_id":"","role":"user","content":""}`,
			`{"message_id":` + id + `,"conversation_id":` + id + `,"session_id":"s","role":"robot","content":""}`,
			`{"message_id":` + id + `,"conversation_id":` + id + `,"session_id":"s","role":1,"content":""}`,
			`{"message_\u0069d":` + id + `,"conversation_id":` + id + `,"session_id":"s","role":"user","content":""}`,
		},
		KindUserErased: {
			`{"identifier":"\ud800"}`, `{"identifier":"a","reason":"\ud800\udc00"}`, `{"identifier":"\/"}`,
			`{"identifier":"a\'"}`, `{"identifier":"a"`, `{"identifier":"a",}`, `{}`, `[]`, `null`, ``, `{"identifier":"a"} {}`,
		},
		KindUserRecreated: {
			`{"user_id":` + id + `,"identifier":"a"}`, `{"user_id":` + id + `,"identifier":"a","reason":""}`,
			`{"user_id":` + strings.ToUpper(id) + `,"identifier":"a"}`, `{"identifier":"a"}`, `{"user_id":` + id + `}`,
			`{"user_id":` + id + `,"identifier":""}`, `{"user_id":` + id + `,"identifier":"a","attributes":{}}`,
			`{"user_id":` + id + `,"identifier":"a","reason":null}`, `{"user_id":` + id + `,"identifier":"a","reason":"` + strings.Repeat("é", 1025) + `"}`,
		},
		KindTraceCompleted: {`{"trace_id":` + id + `,"success":false}`, `{"trace_id":` + id + `,"success":0}`, `{"trace_id":` + id + `,"success":tru}`},
		KindUserUpserted: {
			`{"user_id":` + id + `,"identifier":"a","attributes":{` + strings.Repeat(`"k":1,`, 0) + `"x":-0,"y":1E+2,"z":[1.5e-400]}}`,
			`{"user_id":` + id + `,"identifier":"a","attributes":{}}`, `{"user_id":` + id + `,"identifier":"a","attributes":{"a":01}}`,
		},
	}
	var attrs strings.Builder
	for i := range 257 {
		if i > 0 {
			attrs.WriteByte(',')
		}
		attrs.WriteString(`"k` + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + `":1`)
	}
	seeds[KindUserUpserted] = append(seeds[KindUserUpserted],
		`{"user_id":`+id+`,"identifier":"a","attributes":{`+attrs.String()+`}}`,
		`{"user_id":`+id+`,"identifier":"a","attributes":{`+attrs.String()[strings.IndexByte(attrs.String(), ',')+1:]+`}}`)
	return seeds
}

// FuzzValidateMatchesSchema holds the fast path to the reference path on any data under any
// kind: validFast accepts exactly what json.Valid, CheckJSON and the kind's JSON Schema accept,
// and decodeData's one pass accepts exactly what the reference validation and encoding/json's
// strict decoding accept, into the same value.
func FuzzValidateMatchesSchema(f *testing.F) {
	for i, b := range validSeeds() {
		f.Add(uint8(i), b)
	}
	for k, docs := range trickySeeds() {
		for _, d := range docs {
			f.Add(uint8(kindIndex(k)), []byte(d))
		}
	}
	f.Fuzz(func(t *testing.T, ki uint8, data []byte) {
		if slowForBigRat(data) {
			t.Skip("an exponent big.Rat takes milliseconds to seconds over: FuzzDecimalMatchesRat's part")
		}
		k := Kinds[int(ki)%len(Kinds)]
		ref := validateReference(k, data)
		if fast := validFast(rules()[k], data); fast != (ref == nil) {
			t.Fatalf("%s: fast path accepts: %v; reference: %v\n%q", k, fast, ref, data)
		}
		// The reference words its errors in map order, so they are compared by what they wrap.
		if err := ValidateData(k, data); (err == nil) != (ref == nil) || !errors.Is(err, ErrInvalidData) != !errors.Is(ref, ErrInvalidData) {
			t.Fatalf("%s: ValidateData: %v; reference: %v", k, err, ref)
		}

		want, wantErr := decodeDataReference(k, data)
		s := scanner{data: data}
		got, ok := s.typed(k, rules()[k])
		ok = ok && s.end() && utf8.Valid(data)
		if ok != (wantErr == nil) {
			t.Fatalf("%s: one-pass decoding accepts: %v; reference: %v\n%q", k, ok, wantErr, data)
		}
		if ok && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: one-pass decoding gives %#v; reference %#v", k, got, want)
		}
		if gotD, err := decodeData(k, data); (err == nil) != (wantErr == nil) || !errors.Is(err, ErrInvalidData) != !errors.Is(wantErr, ErrInvalidData) ||
			!reflect.DeepEqual(gotD, want) {
			t.Fatalf("%s: decodeData: %#v, %v; reference %#v, %v", k, gotD, err, want, wantErr)
		}
	})
}

func kindIndex(k Kind) int {
	for i, c := range Kinds {
		if c == k {
			return i
		}
	}
	return 0
}

// FuzzDecimalMatchesRat holds parseDecimal to big.Rat, which the reference compares numbers
// with: it fails exactly where SetString does, and says the same of integers and of the
// order against int64 bounds. Exponents are kept within ±2e6, where big.Rat is fast enough.
func FuzzDecimalMatchesRat(f *testing.F) {
	for _, s := range []string{"0", "-0", "-0.0", "1", "1.0", "0.85", "1e2", "6.048e8", "604800000.5", "-1e-300",
		"1.0000000000000000001", "0.99999999999999999999", "1e-1000000", "1e1000000", "1e-1000001", "10e-1000001",
		"0e-1000001", "0.5e1000001", "123456789012345678901234", "-99999999999999999999.5", "1e18", "-1e18", "0.001e3"} {
		f.Add(s, int64(0), int64(1))
	}
	f.Fuzz(func(t *testing.T, lit string, lo, hi int64) {
		s := scanner{data: []byte(lit)}
		if _, ok := s.num(); !ok || s.i != len(lit) || strings.ContainsAny(lit, "eE") && len(lit) > 12 {
			return
		}
		d, ok := parseDecimal([]byte(lit))
		rat, want := new(big.Rat).SetString(lit)
		if ok != want {
			t.Fatalf("%s: parseDecimal ok %v, big.Rat %v", lit, ok, want)
		}
		if !ok {
			return
		}
		if d.frac == rat.IsInt() {
			t.Fatalf("%s: fraction %v, big.Rat integer %v", lit, d.frac, rat.IsInt())
		}
		for _, b := range []int64{lo, hi, 0, 1, -1, 604800000, 1e18 - 1, -1e18 + 1} {
			c, decided := d.cmp(&bound{int: b, isInt: true})
			if decided && c != rat.Cmp(new(big.Rat).SetInt64(b)) {
				t.Fatalf("%s cmp %d: %d, big.Rat %d", lit, b, c, rat.Cmp(new(big.Rat).SetInt64(b)))
			}
			if !decided && b > -1e18 && b < 1e18 {
				t.Fatalf("%s cmp %d undecided", lit, b)
			}
		}
	})
}

// TestDecodeRefusesNumbersBeyondExactComparison: the schema library panics comparing
// "confidence": 1e-2000000 with its minimum (big.Rat refuses the exponent); Decode refuses
// the event as invalid data instead of panicking.
func TestDecodeRefusesNumbersBeyondExactComparison(t *testing.T) {
	t.Parallel()
	id := NewID()
	e := &Event{ID: NewID(), Source: "/agent", User: "sara@omg.com", Time: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC),
		Data: PreferenceAdded{PreferenceID: id, Category: "c", Preference: "p"}}
	m, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, conf := range []string{"1e-2000000", "-1e-2000000"} {
		data := []byte(`{"preference_id":"` + id + `","category":"c","preference":"p","confidence":` + conf + `}`)
		if _, err := Decode(m.Subject, m.Header, data); !errors.Is(err, ErrInvalidData) {
			t.Errorf("confidence %s: Decode: %v, want ErrInvalidData", conf, err)
		}
	}
	data := []byte(`{"preference_id":"` + id + `","category":"c","preference":"p","confidence":1e-999999}`)
	if ev, err := Decode(m.Subject, m.Header, data); err != nil || *ev.Data.(PreferenceAdded).Confidence != 0 {
		t.Errorf("confidence 1e-999999: Decode: %v, %v; want 0", ev, err)
	}
}

// slowForBigRat reports whether data holds an exponent from 10 000 to about a million, which
// big.Rat (the reference's number comparison) spends milliseconds to seconds on; beyond, it
// refuses at once. The fuzzer finds such inputs interesting and would crawl.
func slowForBigRat(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if c := data[i]; c != 'e' && c != 'E' {
			continue
		}
		j := i + 1
		if j < len(data) && (data[j] == '+' || data[j] == '-') {
			j++
		}
		for j < len(data) && data[j] == '0' {
			j++
		}
		start := j
		for j < len(data) && '0' <= data[j] && data[j] <= '9' {
			j++
		}
		if n := j - start; n == 5 || n == 6 || n == 7 {
			exp, _ := strconv.Atoi(string(data[start:j]))
			if exp <= 1e6+len(data) {
				return true
			}
		}
	}
	return false
}
