package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// decodeData reads an event's data into its kind's type. One pass validates the data against
// the kind's rule and fills the type; where that pass cannot decide (the data is refused, or
// holds what it does not decode), the reference path decides and words the error: today's
// ValidateData and encoding/json's strict decoding. FuzzValidateMatchesSchema holds the
// two to the same events.
func decodeData(k Kind, raw []byte) (any, error) {
	if r := rules()[k]; r != nil && schemasLoaded() && utf8.Valid(raw) {
		s := scanner{data: raw}
		if v, ok := s.typed(k, r); ok && s.end() {
			return v, nil
		}
	}
	return decodeDataReference(k, raw)
}

// decodeDataReference is decodeData without the fast pass.
func decodeDataReference(k Kind, raw []byte) (any, error) {
	if err := validateReference(k, raw); err != nil {
		return nil, err
	}
	v := newData(k)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	return derefData(v), nil
}

// derefData is the data value newData's pointer points to: deref for the kinds it lists, and
// for the others (every kind's data type is a struct) the value by reflection.
func derefData(v any) any {
	d := deref(v)
	if rv := reflect.ValueOf(d); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return rv.Elem().Interface()
	}
	return d
}

// typed reads the data of kind k under its rule r. Each field is validated under its
// property's rule, then stored as encoding/json stores it; false leaves the decision to the
// reference path.
func (s *scanner) typed(k Kind, r *rule) (any, bool) {
	if s.next() != '{' || !r.has(tObject) || r.enum != nil {
		return nil, false
	}
	var v any
	ok := false
	switch k {
	case KindUserUpserted:
		var d UserUpserted
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "user_id":
				return s.stringInto(p, &d.UserID)
			case "identifier":
				return s.stringInto(p, &d.Identifier)
			case "attributes":
				return s.mapInto(p, depth, &d.Attributes)
			}
			return false
		})
		v = d
	case KindMessageAdded:
		var d MessageAdded
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "message_id":
				return s.stringInto(p, &d.MessageID)
			case "conversation_id":
				return s.stringInto(p, &d.ConversationID)
			case "session_id":
				return s.stringInto(p, &d.SessionID)
			case "role":
				return s.stringInto(p, &d.Role)
			case "content":
				return s.stringInto(p, &d.Content)
			case "timestamp":
				return s.timeInto(p, &d.Timestamp)
			case "metadata":
				return s.mapInto(p, depth, &d.Metadata)
			case "title":
				return s.stringInto(p, &d.Title)
			case "embedding":
				return s.floatsInto(p, depth, &d.Embedding)
			}
			return false
		})
		v = d
	case KindPreferenceAdded:
		var d PreferenceAdded
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "preference_id":
				return s.stringInto(p, &d.PreferenceID)
			case "category":
				return s.stringInto(p, &d.Category)
			case "preference":
				return s.stringInto(p, &d.Preference)
			case "context":
				return s.stringInto(p, &d.Context)
			case "confidence":
				return s.floatInto(p, &d.Confidence)
			case "valid_from":
				return s.timeInto(p, &d.ValidFrom)
			case "metadata":
				return s.mapInto(p, depth, &d.Metadata)
			case "applies_to":
				return s.entityRefsInto(p, depth, &d.AppliesTo)
			case "embedding":
				return s.floatsInto(p, depth, &d.Embedding)
			}
			return false
		})
		v = d
	case KindPreferenceSuperseded:
		var d PreferenceSuperseded
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "old_id":
				return s.stringInto(p, &d.OldID)
			case "new_id":
				return s.stringInto(p, &d.NewID)
			case "valid_until":
				return s.timeInto(p, &d.ValidUntil)
			}
			return false
		})
		v = d
	case KindTraceStarted:
		var d TraceStarted
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "trace_id":
				return s.stringInto(p, &d.TraceID)
			case "session_id":
				return s.stringInto(p, &d.SessionID)
			case "task":
				return s.stringInto(p, &d.Task)
			case "metadata":
				return s.mapInto(p, depth, &d.Metadata)
			case "embedding":
				return s.floatsInto(p, depth, &d.Embedding)
			}
			return false
		})
		v = d
	case KindTraceStepAdded:
		var d TraceStepAdded
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "trace_id":
				return s.stringInto(p, &d.TraceID)
			case "step_id":
				return s.stringInto(p, &d.StepID)
			case "step_number":
				n, ok := s.intValue(p, strconv.IntSize)
				d.StepNumber = int(n)
				return ok
			case "thought":
				return s.stringInto(p, &d.Thought)
			case "action":
				return s.stringInto(p, &d.Action)
			case "observation":
				return s.stringInto(p, &d.Observation)
			}
			return false
		})
		v = d
	case KindToolCallRecorded:
		var d ToolCallRecorded
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "trace_id":
				return s.stringInto(p, &d.TraceID)
			case "step_id":
				return s.stringInto(p, &d.StepID)
			case "tool_call_id":
				return s.stringInto(p, &d.ToolCallID)
			case "tool_name":
				return s.stringInto(p, &d.ToolName)
			case "arguments":
				return s.anyInto(p, depth, &d.Arguments)
			case "result":
				return s.anyInto(p, depth, &d.Result)
			case "status":
				return s.stringInto(p, &d.Status)
			case "duration_ms":
				n, ok := s.intValue(p, 64)
				d.DurationMS = &n
				return ok
			case "error":
				return s.stringInto(p, &d.Error)
			}
			return false
		})
		v = d
	case KindTraceCompleted:
		var d TraceCompleted
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "trace_id":
				return s.stringInto(p, &d.TraceID)
			case "outcome":
				return s.stringInto(p, &d.Outcome)
			case "success":
				return s.boolInto(p, &d.Success)
			}
			return false
		})
		v = d
	case KindUserErased:
		var d UserErased
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "identifier":
				return s.stringInto(p, &d.Identifier)
			case "reason":
				return s.stringInto(p, &d.Reason)
			}
			return false
		})
		v = d
	case KindEntityAdded:
		var d EntityAdded
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "name":
				return s.stringInto(p, &d.Name)
			case "type":
				return s.stringInto(p, &d.Type)
			case "subtype":
				return s.stringInto(p, &d.Subtype)
			case "description":
				return s.stringInto(p, &d.Description)
			case "aliases":
				return s.stringsInto(p, depth, &d.Aliases)
			case "attributes":
				return s.mapInto(p, depth, &d.Attributes)
			case "confidence":
				return s.floatInto(p, &d.Confidence)
			case "message_ids":
				return s.stringsInto(p, depth, &d.MessageIDs)
			case "trace_ids":
				return s.stringsInto(p, depth, &d.TraceIDs)
			case "embedding":
				return s.floatsInto(p, depth, &d.Embedding)
			}
			return false
		})
		v = d
	case KindRelationshipAdded:
		var d RelationshipAdded
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "source":
				return s.entityRefInto(p, depth, &d.Source)
			case "target":
				return s.entityRefInto(p, depth, &d.Target)
			case "type":
				return s.stringInto(p, &d.Type)
			case "description":
				return s.stringInto(p, &d.Description)
			case "confidence":
				return s.floatInto(p, &d.Confidence)
			case "valid_from":
				return s.timeInto(p, &d.ValidFrom)
			case "valid_until":
				return s.timeInto(p, &d.ValidUntil)
			case "attributes":
				return s.mapInto(p, depth, &d.Attributes)
			}
			return false
		})
		v = d
	case KindEntitiesMerged:
		var d EntitiesMerged
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "source_id":
				return s.stringInto(p, &d.SourceID)
			case "target_id":
				return s.stringInto(p, &d.TargetID)
			}
			return false
		})
		v = d
	case KindFactAdded:
		var d FactAdded
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "fact_id":
				return s.stringInto(p, &d.FactID)
			case "subject":
				return s.stringInto(p, &d.Subject)
			case "predicate":
				return s.stringInto(p, &d.Predicate)
			case "object":
				return s.stringInto(p, &d.Object)
			case "confidence":
				return s.floatInto(p, &d.Confidence)
			case "valid_from":
				return s.timeInto(p, &d.ValidFrom)
			case "valid_until":
				return s.timeInto(p, &d.ValidUntil)
			case "metadata":
				return s.mapInto(p, depth, &d.Metadata)
			}
			return false
		})
		v = d
	case KindMessageDeleted:
		var d MessageDeleted
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "message_id":
				return s.stringInto(p, &d.MessageID)
			case "conversation_id":
				return s.stringInto(p, &d.ConversationID)
			case "session_id":
				return s.stringInto(p, &d.SessionID)
			}
			return false
		})
		v = d
	case KindSessionCleared:
		var d SessionCleared
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "conversation_id":
				return s.stringInto(p, &d.ConversationID)
			case "session_id":
				return s.stringInto(p, &d.SessionID)
			}
			return false
		})
		v = d
	case KindEntityDeleted:
		v, ok = s.entityDeleted(r)
	case KindUserRecreated:
		var d UserRecreated
		ok = s.fields(r, 0, func(name string, p *rule, depth int) bool {
			switch name {
			case "user_id":
				return s.stringInto(p, &d.UserID)
			case "identifier":
				return s.stringInto(p, &d.Identifier)
			case "reason":
				return s.stringInto(p, &d.Reason)
			}
			return false
		})
		v = d
	}
	return v, ok
}

// fields reads an object under r at depth, calling field with each member's name, rule and
// depth; a member r has no property for is left to the reference path (encoding/json would
// match it to a field ignoring case).
func (s *scanner) fields(r *rule, depth int, field func(name string, p *rule, depth int) bool) bool {
	return s.members(r, depth, func(i int) bool {
		return i >= 0 && field(string(r.props[i].name), r.props[i].rule, depth+1)
	})
}

// The ...Into methods read a value under r and store it as encoding/json does. They take
// JSON strings, numbers, objects and arrays for fields of those types; anything else (null
// included: the catalogue's schemas refuse it) is left to the reference path.

func (s *scanner) stringInto(r *rule, dst *string) bool {
	if s.next() != '"' {
		return false
	}
	raw, esc, ok := s.str()
	if !ok {
		return false
	}
	b := s.text(raw, esc)
	if !r.any && (!r.has(tString) || !r.stringOK(b)) {
		return false
	}
	*dst = string(b)
	return true
}

// timeInto stores a time as time.Time's UnmarshalJSON reads it: from the string as written
// (it does not unescape), strictly RFC 3339.
func (s *scanner) timeInto(r *rule, dst **time.Time) bool {
	if s.next() != '"' {
		return false
	}
	start := s.i
	raw, esc, ok := s.str()
	if !ok || (!r.any && (!r.has(tString) || !r.stringOK(s.text(raw, esc)))) {
		return false
	}
	t := new(time.Time)
	if t.UnmarshalJSON(s.data[start:s.i]) != nil {
		return false
	}
	*dst = t
	return true
}

func (s *scanner) number(r *rule) ([]byte, bool) {
	switch s.next() {
	case '"', '{', '[', 't', 'f', 'n', 0:
		return nil, false
	}
	lit, ok := s.num()
	return lit, ok && (r.any || r.numberOK(lit))
}

func (s *scanner) floatInto(r *rule, dst **float64) bool {
	lit, ok := s.number(r)
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return false
	}
	*dst = &f
	return true
}

// intValue reads an integer field as encoding/json does: strconv.ParseInt of the literal,
// so 1.0 and 1e2, integers to JSON Schema, are refused.
func (s *scanner) intValue(r *rule, bits int) (int64, bool) {
	lit, ok := s.number(r)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(lit), 10, bits)
	return n, err == nil
}

func (s *scanner) boolInto(r *rule, dst **bool) bool {
	if c := s.next(); c != 't' && c != 'f' {
		return false
	}
	b := s.word("true")
	if !b && !s.word("false") {
		return false
	}
	if !r.any && (!r.has(tBoolean) || r.enum != nil) {
		return false
	}
	*dst = &b
	return true
}

// mapInto validates an object under r, then reads it again into a map.
func (s *scanner) mapInto(r *rule, depth int, dst *map[string]any) bool {
	if s.next() != '{' {
		return false
	}
	start := s.i
	if !s.value(r, depth) {
		return false
	}
	s.i = start
	*dst = s.build().(map[string]any)
	return true
}

// anyInto validates any value under r, then reads it again into an interface value.
func (s *scanner) anyInto(r *rule, depth int, dst *any) bool {
	s.ws()
	at := s.i
	if !s.value(r, depth) {
		return false
	}
	s.i = at
	*dst = s.build()
	return true
}

func (s *scanner) entityRefsInto(r *rule, depth int, dst *[]EntityRef) bool {
	if s.next() != '[' || r.any || !r.has(tArray) || r.enum != nil || depth >= maxDepth {
		return false
	}
	refs := []EntityRef{} // encoding/json makes [] an empty slice, not nil
	it := r.items
	ok := s.elements(r, func() bool {
		if s.next() != '{' || it == nil || it.any || !it.has(tObject) || it.enum != nil || depth+1 >= maxDepth {
			return false
		}
		var e EntityRef
		ok := s.fields(it, depth+1, func(name string, p *rule, _ int) bool {
			switch name {
			case "id":
				return s.stringInto(p, &e.ID)
			case "name":
				return s.stringInto(p, &e.Name)
			case "type":
				return s.stringInto(p, &e.Type)
			}
			return false
		})
		refs = append(refs, e)
		return ok
	})
	*dst = refs
	return ok
}

// floatsInto reads an array of numbers under r (a vector embedding).
func (s *scanner) floatsInto(r *rule, depth int, dst *[]float64) bool {
	if s.next() != '[' || r.any || !r.has(tArray) || r.enum != nil || depth >= maxDepth {
		return false
	}
	out := []float64{}
	it := r.items
	ok := s.elements(r, func() bool {
		if it == nil {
			return false
		}
		var f *float64
		ok := s.floatInto(it, &f)
		if ok {
			out = append(out, *f)
		}
		return ok
	})
	*dst = out
	return ok
}

// stringsInto reads an array of strings under r (encoding/json makes [] an empty slice).
func (s *scanner) stringsInto(r *rule, depth int, dst *[]string) bool {
	if s.next() != '[' || r.any || !r.has(tArray) || r.enum != nil || depth >= maxDepth {
		return false
	}
	out := []string{}
	it := r.items
	ok := s.elements(r, func() bool {
		if it == nil {
			return false
		}
		var v string
		ok := s.stringInto(it, &v)
		out = append(out, v)
		return ok
	})
	*dst = out
	return ok
}

// entityRefInto reads one entity reference (an object under r).
func (s *scanner) entityRefInto(r *rule, depth int, dst *EntityRef) bool {
	if s.next() != '{' || r.any || !r.has(tObject) || r.enum != nil || depth >= maxDepth {
		return false
	}
	return s.fields(r, depth, func(name string, p *rule, _ int) bool {
		switch name {
		case "id":
			return s.stringInto(p, &dst.ID)
		case "name":
			return s.stringInto(p, &dst.Name)
		case "type":
			return s.stringInto(p, &dst.Type)
		}
		return false
	})
}

// kindsByType is KindOfType as a table, for the decoder.
var kindsByType = func() map[string]Kind {
	m := make(map[string]Kind, len(Kinds))
	for _, k := range Kinds {
		m[k.Type()] = k
	}
	return m
}()
