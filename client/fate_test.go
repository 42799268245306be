package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeFates answers fate reads from a script: each request gets the next answer (the last
// one repeats), and the requests are kept.
type fakeFates struct {
	mu       sync.Mutex
	answers  []fakeAnswer
	requests []string
}

type fakeAnswer struct {
	status int
	body   string
}

func (f *fakeFates) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.RequestURI())
	a := f.answers[min(len(f.requests), len(f.answers))-1]
	f.mu.Unlock()
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

func (f *fakeFates) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func fateClient(t *testing.T, f *fakeFates) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := New(WithHTTP(srv.URL, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	storedBody  = `{"event_id":"e1","sequence":7,"kind":"preference_superseded","stored_at":"2026-05-01T12:00:00Z","status":"stored","reason":null,"error":null,"dead_lettered_at":null}`
	appliedBody = `{"event_id":"e1","sequence":7,"kind":"preference_superseded","stored_at":"2026-05-01T12:00:00Z","status":"applied","reason":null,"error":null,"dead_lettered_at":null}`
	deadBody    = `{"event_id":"e1","sequence":7,"kind":"preference_superseded","stored_at":"2026-05-01T12:00:00Z","status":"dead_lettered","reason":"missing_reference","error":"preference p1 not found","dead_lettered_at":"2026-05-01T12:00:01Z"}`
)

func TestFateReadsTheReceiptsEvent(t *testing.T) {
	t.Parallel()
	f := &fakeFates{answers: []fakeAnswer{{200, deadBody}}}
	c := fateClient(t, f)
	got, err := c.Fate(t.Context(), Receipt{EventID: "e1", User: "sara@omg.com", Sequence: 7})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != FateDeadLettered || got.Reason != "missing_reference" || got.Message != "preference p1 not found" || got.DeadLetteredAt == nil {
		t.Fatalf("fate %+v", got)
	}
	var rej *RejectedError
	if err := got.Err(); !errors.Is(err, ErrRejected) || !errors.As(err, &rej) || rej.Reason != "missing_reference" ||
		rej.Message != "preference p1 not found" || rej.Sequence != 7 || rej.Kind != "preference_superseded" {
		t.Fatalf("Err() = %v", err)
	}
	// A shared-tenant write over NATS: no user, no sequence.
	if _, err := c.Fate(t.Context(), Receipt{EventID: "e1"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"/v1/users/sara@omg.com/events/e1?sequence=7", "/v1/shared/events/e1"}
	if got := f.seen(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("requests %q, want %q", got, want)
	}
	if _, err := c.Fate(t.Context(), Receipt{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty receipt: %v", err)
	}
	if err := (&Fate{Status: FateApplied}).Err(); err != nil {
		t.Fatalf("applied: Err() = %v", err)
	}
}

// TestWaitApplied: the wait asks with the receipt's sequence as consistency token, asks
// again after a 504, and ends with the decision.
func TestWaitApplied(t *testing.T) {
	t.Parallel()
	f := &fakeFates{answers: []fakeAnswer{
		{http.StatusGatewayTimeout, `{"error":"consistency token 7 not reached"}`},
		{200, deadBody},
	}}
	c := fateClient(t, f)
	_, err := c.WaitApplied(t.Context(), Receipt{EventID: "e1", User: "u", Sequence: 7})
	var rej *RejectedError
	if !errors.As(err, &rej) || rej.Reason != "missing_reference" {
		t.Fatalf("WaitApplied: %v", err)
	}
	for _, r := range f.seen() {
		if r != "/v1/users/u/events/e1?consistency=7&sequence=7" {
			t.Fatalf("request %q", r)
		}
	}

	// Over NATS: not found while unacknowledged, then stored, then applied.
	f = &fakeFates{answers: []fakeAnswer{{404, `{"error":"not found"}`}, {200, storedBody}, {200, appliedBody}}}
	c = fateClient(t, f)
	got, err := c.WaitApplied(t.Context(), Receipt{EventID: "e1", User: "u"})
	if err != nil || got.Status != FateApplied {
		t.Fatalf("WaitApplied over NATS: %+v, %v", got, err)
	}
	if seen := f.seen(); len(seen) != 3 || seen[0] != "/v1/users/u/events/e1" || seen[2] != "/v1/users/u/events/e1?consistency=7&sequence=7" {
		t.Fatalf("requests %q", seen)
	}

	// A 404 for a receipt with a sequence is final (erased, or never this user's).
	f = &fakeFates{answers: []fakeAnswer{{404, `{"error":"not found"}`}}}
	c = fateClient(t, f)
	if _, err := c.WaitApplied(t.Context(), Receipt{EventID: "e1", User: "u", Sequence: 7}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("not found: %v", err)
	}

	// And the wait ends with its context.
	f = &fakeFates{answers: []fakeAnswer{{200, storedBody}}}
	c = fateClient(t, f)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.WaitApplied(ctx, Receipt{EventID: "e1", User: "u", Sequence: 7}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("context ended: %v", err)
	}
}
