package mcp

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
)

// schemaFor infers the JSON Schema of a tool's input type T (descriptions from the
// jsonschema struct tags; additional properties refused) and lets the tool say what the Go
// type cannot: enums, bounds, lengths, formats.
func schemaFor[T any](refine ...func(*jsonschema.Schema)) *jsonschema.Schema {
	s, err := jsonschema.For[T](nil)
	if err != nil {
		panic(fmt.Sprintf("schema of %T: %v", *new(T), err))
	}
	for _, r := range refine {
		r(s)
	}
	return s
}

// prop returns the schema of a property, following a path through nested objects and array
// items ("applies_to", "[]", "name").
func prop(s *jsonschema.Schema, path ...string) *jsonschema.Schema {
	for _, p := range path {
		if p == "[]" {
			s = s.Items
		} else {
			s = s.Properties[p]
		}
		if s == nil {
			panic(fmt.Sprintf("schema has no property %q", path))
		}
	}
	return s
}

// The refinements the tools use.

func enum(path []string, values ...string) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) {
		p := prop(s, path...)
		p.Enum = make([]any, 0, len(values))
		for _, v := range values {
			p.Enum = append(p.Enum, v)
		}
	}
}

func bounds(path []string, lo, hi float64) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) { p := prop(s, path...); p.Minimum, p.Maximum = &lo, &hi }
}

func length(path []string, lo, hi int) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) { p := prop(s, path...); p.MinLength, p.MaxLength = &lo, &hi }
}

func items(path []string, lo, hi int) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) { p := prop(s, path...); p.MinItems, p.MaxItems = &lo, &hi }
}

// dateTime marks properties as RFC 3339 date-times; a name is a path with "." between its
// steps ("messages.[].timestamp").
func dateTime(names ...string) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) {
		for _, n := range names {
			prop(s, strings.Split(n, ".")...).Format = "date-time"
		}
	}
}

func limit(def, hi int) func(*jsonschema.Schema) {
	return func(s *jsonschema.Schema) {
		p := prop(s, "limit")
		lo, h := 1.0, float64(hi)
		p.Minimum, p.Maximum = &lo, &h
		p.Default = []byte(fmt.Sprint(def))
	}
}

// withUser adapts the user_identifier property to the tenancy configuration: absent when the
// process acts for one configured user, required under the multi-tenant guardrail, optional
// (the shared tenant when omitted) otherwise.
func (m *Memory) withUser(s *jsonschema.Schema) *jsonschema.Schema {
	const name = "user_identifier"
	if _, ok := s.Properties[name]; !ok {
		return s
	}
	drop := func(list []string) []string { return slices.DeleteFunc(list, func(n string) bool { return n == name }) }
	switch {
	case m.user != "":
		delete(s.Properties, name)
		s.PropertyOrder, s.Required = drop(s.PropertyOrder), drop(s.Required)
	case m.multiTenant:
		p := s.Properties[name]
		p.Description = "the user this call is about, e.g. sara@omg.com (required)"
		lo, hi := 1, 256
		p.MinLength, p.MaxLength = &lo, &hi
		if !slices.Contains(s.Required, name) {
			s.Required = append(s.Required, name)
		}
	default:
		s.Properties[name].Description = "the user this call is about, e.g. sara@omg.com; omit it for the shared tenant"
	}
	return s
}

// parseTime reads an RFC 3339 argument; "" is no time.
func parseTime(arg, v string) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, &ArgError{Arg: arg, Reason: fmt.Sprintf("%q is not an RFC 3339 date-time with a zone, e.g. 2026-05-01T12:00:00Z", v)}
	}
	return &t, nil
}
