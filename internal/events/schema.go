package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/engram-memory/engram/schemas"
)

var compiled = sync.OnceValues(func() (map[Kind]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, k := range Kinds {
		raw, err := schemas.Events.ReadFile("events/" + string(k) + "." + SchemaVersion + ".json")
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", k, err)
		}
		if err := c.AddResource(k.DataSchema(), doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", k, err)
		}
	}
	out := make(map[Kind]*jsonschema.Schema, len(Kinds))
	for _, k := range Kinds {
		s, err := c.Compile(k.DataSchema())
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", k, err)
		}
		out[k] = s
	}
	return out, nil
})

// schemasLoaded reports whether the reference validator compiled: the fast path answers
// only for schemas the reference accepts as schemas.
func schemasLoaded() bool {
	_, err := compiled()
	return err == nil
}

// ValidateData checks an event's JSON data against its kind's JSON Schema, after CheckJSON:
// what encoding/json would read leniently is invalid data, not a guess.
//
// The kind's rule (rule.go) accepts in one pass exactly what the reference path accepts;
// data it refuses goes through the reference path, which decides and words the error.
func ValidateData(k Kind, data []byte) error {
	if r := rules()[k]; r != nil && schemasLoaded() && validFast(r, data) {
		return nil
	}
	return validateReference(k, data)
}

// validateReference is ValidateData as the JSON Schema library decides it: json.Valid, then
// CheckJSON, then the compiled schema. It is the definition the fast path is held to.
func validateReference(k Kind, data []byte) error {
	all, err := compiled()
	if err != nil {
		return fmt.Errorf("load schemas: %w", err)
	}
	s, ok := all[k]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownType, k)
	}
	if !json.Valid(data) {
		return fmt.Errorf("%w: %s data is not JSON", ErrInvalidData, k)
	}
	if err := CheckJSON(data); err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	if err := validateSchema(s, doc); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidData, k, err)
	}
	return nil
}

// validateSchema is s.Validate, which panics comparing a number whose exponent big.Rat
// refuses (beyond a million, e.g. "confidence": 1e-2000000) with a minimum or maximum: such
// a number is refused.
func validateSchema(s *jsonschema.Schema, doc any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("a number beyond exact comparison (%v)", p)
		}
	}()
	return s.Validate(doc)
}
