package app

import (
	"encoding/json"
	"net/http"
)

// WriteJSON writes v as a JSON response with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Problem is the body of every error response: what is wrong, and for bad input which field.
type Problem struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// WriteError writes a Problem with status code.
func WriteError(w http.ResponseWriter, code int, field, msg string) {
	WriteJSON(w, code, Problem{Error: msg, Field: field})
}
