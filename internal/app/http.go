package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

// WriteJSON writes v as a JSON response with status code. v is encoded before anything is
// written: when encoding fails (e.g. a time outside RFC 3339's years 0000-9999) the answer is
// a 500 Problem instead, never the status asked for with an empty body, and the error is
// returned for the caller to log.
func WriteJSON(w http.ResponseWriter, code int, v any) error {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		b.Reset()
		_ = json.NewEncoder(&b).Encode(Problem{Error: "internal error"})
		code = http.StatusInternalServerError
		err = fmt.Errorf("encode response: %w", err)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write(b.Bytes())
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
	return nil
}

// Problem is the body of every error response: what is wrong, and for bad input which field.
type Problem struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// WriteError writes a Problem with status code.
func WriteError(w http.ResponseWriter, code int, field, msg string) {
	_ = WriteJSON(w, code, Problem{Error: msg, Field: field})
}
