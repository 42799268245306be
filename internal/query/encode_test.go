package query

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestHTTPEncodeFailureIs500 covers issue 12 finding 6: a preference whose valid_from is in
// year 10000 (applied before the ingestor and the decoder refused such times) cannot be
// encoded as RFC 3339. The read answers a 500 with a problem body, not 200 with an empty one.
func TestHTTPEncodeFailureIs500(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	srv := newServer(t, d)
	f := newFixture(t, d, "y10k")
	f.user(nil, time.Now())
	f.preference(pref{category: "food", text: "tea", validFrom: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), recordedAt: time.Now()})
	code, body := get(t, userURL(srv.url, f.id)+"/preferences?active_only=false", nil, nil)
	var p struct{ Error string }
	if code != http.StatusInternalServerError || json.Unmarshal(body, &p) != nil || p.Error == "" {
		t.Fatalf("year 10000: %d %q, want 500 with a problem body", code, body)
	}
}
