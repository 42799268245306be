package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// WriteJSON writes v as a JSON response with status code. v is encoded before anything is
// written: when encoding fails (e.g. a time outside RFC 3339's years 0000-9999) the answer is
// a 500 Problem instead, never the status asked for with an empty body, and the error is
// returned for the caller to log. The answer carries its Content-Length, so net/http sends
// it with its headers in one write instead of chunking a body over 2 KiB.
func WriteJSON(w http.ResponseWriter, code int, v any) error {
	b := jsonBuffers.Get().(*bytes.Buffer)
	defer putJSONBuffer(b)
	b.Reset()
	var err error
	if err = json.NewEncoder(b).Encode(v); err != nil {
		b.Reset()
		_ = json.NewEncoder(b).Encode(Problem{Error: "internal error"})
		code = http.StatusInternalServerError
		err = fmt.Errorf("encode response: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
	return err
}

// jsonBuffers keeps the answers' buffers between requests; one grown past maxPooledJSON (a
// large page) is left to the collector rather than kept.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledJSON = 256 << 10

func putJSONBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledJSON {
		jsonBuffers.Put(b)
	}
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
