package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/engram-memory/engram/internal/events"
)

// errTooLarge marks a *FieldError that is answered 413: a body or a batch over its limit.
var errTooLarge = errors.New("request too large")

// bodyField names the request body as a whole in errors that concern no single field.
const bodyField = "body"

// DecodeCommand decodes the JSON body of op's endpoint strictly: unknown fields, wrong types,
// malformed JSON and trailing data are *FieldErrors naming the field (or "body").
func DecodeCommand(op string, body []byte) (Command, error) {
	cmd := newCommand(op)
	if cmd == nil {
		return nil, fieldErr("op", "unknown operation %q: one of %s", clip(op), strings.Join(Ops, ", "))
	}
	if err := decodeObject(body, cmd); err != nil {
		return nil, err
	}
	return cmd, nil
}

// batchBody is the JSON body of POST /v1/batch.
type batchBody struct {
	Commands []json.RawMessage `json:"commands"`
}

// DecodeBatch decodes the JSON body of POST /v1/batch: {"commands": [{"op": ..., ...}, ...]},
// at least one and at most max commands. Errors name the field inside the batch, e.g.
// commands[3].role.
func DecodeBatch(body []byte, max int) ([]Command, error) {
	var b batchBody
	if err := decodeObject(body, &b); err != nil {
		return nil, err
	}
	switch {
	case len(b.Commands) == 0:
		return nil, fieldErr("commands", "must hold at least one command")
	case len(b.Commands) > max:
		return nil, &FieldError{Field: "commands", Reason: fmt.Sprintf("holds %d commands, at most %d allowed in one batch", len(b.Commands), max), err: errTooLarge}
	}
	out := make([]Command, len(b.Commands))
	for i, raw := range b.Commands {
		prefix := fmt.Sprintf("commands[%d]", i)
		// The entry without its "op" is the command's body: its other members copied as
		// written (the whole body was checked for repeated names and bad numbers above).
		var rawOp []byte
		rest := make([]byte, 1, len(raw))
		rest[0] = '{'
		isObject, _ := events.EachMember(raw, func(name, value []byte) error {
			if string(name) == "op" {
				rawOp = value
				return nil
			}
			if len(rest) > 1 {
				rest = append(rest, ',')
			}
			quoted, _ := json.Marshal(string(name))
			rest = append(append(append(rest, quoted...), ':'), value...)
			return nil
		})
		rest = append(rest, '}')
		if !isObject {
			return nil, fieldErr(prefix, "must be a JSON object with an \"op\"")
		}
		var op string
		if rawOp == nil {
			return nil, fieldErr(prefix+".op", "is required: one of %s", strings.Join(Ops, ", "))
		} else if err := json.Unmarshal(rawOp, &op); err != nil {
			return nil, fieldErr(prefix+".op", "must be a string")
		}
		cmd, err := DecodeCommand(op, rest)
		if err != nil {
			return nil, prefixed(prefix, err)
		}
		out[i] = cmd
	}
	return out, nil
}

// MarshalBatchEntry encodes cmd as an entry of a batch: its JSON fields and its "op".
func MarshalBatchEntry(cmd Command) ([]byte, error) {
	raw, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	op, _ := json.Marshal(cmd.Op())
	if bytes.Equal(raw, []byte("{}")) {
		return []byte(`{"op":` + string(op) + `}`), nil
	}
	return append([]byte(`{"op":`+string(op)+`,`), raw[1:]...), nil
}

// decodeObject decodes exactly one JSON object from body into v (a pointer to a struct),
// rejecting unknown fields. Numbers inside free-form values (metadata, attributes, tool
// arguments) stay exact (json.Number).
func decodeObject(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return fieldErr(bodyField, "is empty: a JSON object is required")
	}
	if trimmed[0] != '{' {
		return fieldErr(bodyField, "must be a JSON object")
	}
	// What encoding/json would bend (invalid UTF-8 replaced, a repeated member's last value
	// kept) or the projector would refuse (numbers beyond float64) is refused here, naming it.
	var je *events.JSONError
	if err := events.CheckJSON(body); errors.As(err, &je) {
		field := je.Path
		if field == "" {
			field = bodyField
		}
		return fieldErr(field, "%s", je.Reason)
	}
	if err := strictDecode(body, v); err != nil {
		return describe(body, v, err)
	}
	return exactNames(body, reflect.TypeOf(v), "")
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// exactNames refuses member names that match a field only when case is ignored, which
// encoding/json accepts: the API's field names are exact, as its OpenAPI document says. It
// runs after the strict decode, so every name matches some field but for case; it walks the
// body once (events.EachMember), directed by the type, and reports the first such name in
// document order.
func exactNames(body []byte, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		if !walksInto(t.Elem()) {
			return nil
		}
		_, err := events.EachElement(body, func(i int, el []byte) error {
			return exactNames(el, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		})
		return err
	case t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType):
		return nil
	}
	fields := jsonFields(t)
	_, err := events.EachMember(body, func(name, value []byte) error {
		ft, ok := fields[string(name)]
		if !ok {
			p := memberName(string(name))
			if path != "" {
				p = path + "." + p
			}
			return fieldErr(p, "unknown field (field names are case-sensitive)")
		}
		if !walksInto(ft) {
			return nil
		}
		p := memberName(string(name))
		if path != "" {
			p = path + "." + p
		}
		return exactNames(value, ft, p)
	})
	return err
}

// walksInto reports whether a value of type t can hold member names to check: a struct
// decoded field by field, or a slice or pointer of one.
func walksInto(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer || (t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8) {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(unmarshalerType)
}

// jsonFields returns the JSON names of a struct's fields with their types, computed once per
// type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	fieldCache.Store(t, fields)
	return fields
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

func strictDecode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailing
	}
	return nil
}

var errTrailing = errors.New("trailing data after the JSON object")

// memberName is how a problem names a member: as it is, or `""` for a member with an empty
// name, so that the field of the answer is never empty (found by FuzzHandler).
func memberName(k string) string {
	if k == "" {
		return `""`
	}
	return k
}

// describe turns a decoding error into a *FieldError naming the field. encoding/json names
// neither the index of a bad array element nor the path of an unknown nested field, and
// errors of types with their own decoding (times) name no field at all, so the field is found
// by decoding the body's members one at a time.
func describe(body []byte, v any, err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fieldErr(bodyField, "malformed JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fieldErr(bodyField, "malformed JSON: unexpected end of input")
	case errors.Is(err, errTrailing):
		return fieldErr(bodyField, "must hold a single JSON object: %v", err)
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(body, &members) != nil {
		return fieldErr(bodyField, "%s", reason(err))
	}
	keys := make([]string, 0, len(members))
	for k := range members {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	typ := reflect.TypeOf(v).Elem()
	for _, k := range keys {
		one, _ := json.Marshal(map[string]json.RawMessage{k: members[k]})
		e := strictDecode(one, reflect.New(typ).Interface())
		if e == nil {
			continue
		}
		if isUnknownField(e) && unknownName(e) == k {
			return fieldErr(memberName(k), "unknown field")
		}
		path := k
		var te *json.UnmarshalTypeError
		if errors.As(e, &te) && te.Field == k {
			return fieldErr(k, "%s", reason(e)) // the member itself has the wrong type
		}
		var elems []json.RawMessage
		if json.Unmarshal(members[k], &elems) == nil {
			for i, el := range elems {
				one, _ := json.Marshal(map[string][]json.RawMessage{k: {el}})
				if ee := strictDecode(one, reflect.New(typ).Interface()); ee != nil {
					path, e = fmt.Sprintf("%s[%d]", k, i), ee
					break
				}
			}
		}
		if isUnknownField(e) {
			return fieldErr(path+"."+unknownName(e), "unknown field")
		}
		if errors.As(e, &te) {
			if _, sub, ok := strings.Cut(te.Field, "."); ok {
				path += "." + sub
			}
		}
		return fieldErr(path, "%s", reason(e))
	}
	return fieldErr(bodyField, "%s", reason(err))
}

func isUnknownField(err error) bool {
	return strings.HasPrefix(err.Error(), "json: unknown field ")
}

func unknownName(err error) string {
	name := strings.TrimPrefix(err.Error(), "json: unknown field ")
	if s, e := unquote(name); e == nil {
		return s
	}
	return name
}

func unquote(s string) (string, error) {
	var out string
	err := json.Unmarshal([]byte(s), &out)
	return out, err
}

// reason words a decoding error for a client.
func reason(err error) string {
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("must be %s, got %s", jsonType(te.Type), te.Value)
	case errors.As(err, &pe):
		return "must be an RFC 3339 date-time, e.g. 2026-05-01T09:00:00Z"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonType names a Go type as the JSON value it decodes from.
func jsonType(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "an RFC 3339 date-time string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return jsonType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a JSON value"
}
