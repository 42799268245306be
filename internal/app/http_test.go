package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestWriteJSONEncodeFailure covers issue 12 finding 6: a value encoding/json refuses (a time
// in year 10000) is answered 500 with a problem body, never the status asked for with an
// empty body.
func TestWriteJSONEncodeFailure(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, map[string]any{"at": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	var p Problem
	if rec.Code != http.StatusInternalServerError || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p.Error == "" {
		t.Fatalf("got %d %q, want 500 with a problem", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	WriteJSON(rec, http.StatusAccepted, map[string]int{"n": 1})
	if rec.Code != http.StatusAccepted || rec.Body.String() != "{\"n\":1}\n" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q", rec.Code, rec.Body.String())
	}
}
