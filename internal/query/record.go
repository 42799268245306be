package query

import (
	"encoding/json"
	"time"
)

// Helpers that read the maps the Cypher projections return. Properties the library leaves
// null stay nil; a property of an unexpected type reads as absent rather than failing the
// whole read.

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func strp(m map[string]any, k string) *string {
	if s, ok := m[k].(string); ok {
		return &s
	}
	return nil
}

func timep(m map[string]any, k string) *time.Time {
	if t, ok := m[k].(time.Time); ok {
		t = t.UTC()
		return &t
	}
	return nil
}

func int64p(m map[string]any, k string) *int64 {
	switch v := m[k].(type) {
	case int64:
		return &v
	case float64:
		n := int64(v)
		return &n
	}
	return nil
}

func boolp(m map[string]any, k string) *bool {
	if b, ok := m[k].(bool); ok {
		return &b
	}
	return nil
}

func float(m map[string]any, k string, def float64) float64 {
	switch v := m[k].(type) {
	case float64:
		return v
	case int64:
		return float64(v)
	}
	return def
}

func strs(m map[string]any, k string) []string {
	list, _ := m[k].([]any)
	out := make([]string, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func mapList(m map[string]any, k string) []map[string]any {
	list, _ := m[k].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, v := range list {
		if mm, ok := v.(map[string]any); ok {
			out = append(out, mm)
		}
	}
	return out
}

// object returns a property the graph stores as a JSON string (metadata, attributes_json) as
// raw JSON: {} when absent or empty, the string itself as a JSON string when it is not JSON.
func object(m map[string]any, k string) json.RawMessage {
	return rawJSON(m, k, json.RawMessage("{}"))
}

// rawJSON is object with a chosen value for absent properties.
func rawJSON(m map[string]any, k string, absent json.RawMessage) json.RawMessage {
	s, ok := m[k].(string)
	if !ok || s == "" || s == "null" {
		return absent
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

// cmpInt orders present values first, ascending.
func cmpInt(a, b *int64) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	case *a < *b:
		return -1
	case *a > *b:
		return 1
	}
	return 0
}

// cmpTime orders present values first, ascending.
func cmpTime(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return a.Compare(*b)
}
