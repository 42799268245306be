package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Unit tests of what the client decides on its own, before or without the network.

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	if _, err := New(); err == nil {
		t.Fatal("New() without URLs: no error")
	}
	if _, err := New(WithHTTP("ftp://x", "http://127.0.0.1:1")); err == nil {
		t.Fatal("ftp URL accepted")
	}
	if _, err := New(WithHTTP("http://127.0.0.1:1", "http://127.0.0.1:2"), WithRetries(-1)); err == nil {
		t.Fatal("negative retries accepted")
	}
}

func TestGuardrailFailsBeforeSending(t *testing.T) {
	t.Parallel()
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { calls++ }))
	t.Cleanup(srv.Close)
	c, err := New(WithHTTP(srv.URL, srv.URL), WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.ShortTerm.AddMessage(ctx, "s", "user", "hi"); !errors.Is(err, ErrUserRequired) {
		t.Errorf("AddMessage: %v", err)
	}
	if _, err := c.LongTerm.AddPreference(ctx, "c", "p"); !errors.Is(err, ErrUserRequired) {
		t.Errorf("AddPreference: %v", err)
	}
	if _, err := c.LongTerm.SupersedePreference(ctx, "01a219a1-ea54-73ca-b06f-f6e36debf76a", "01a219a1-ea55-7d23-a6de-97f47c3356ba"); !errors.Is(err, ErrUserRequired) {
		t.Errorf("SupersedePreference of an unknown preference: %v", err)
	}
	if _, err := c.ShortTerm.AddMessage(ctx, "s", "robot", "hi", ForUser("sara@omg.com")); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad role: %v", err)
	}
	if calls != 0 {
		t.Fatalf("%d requests sent for refused writes", calls)
	}
}

func TestAPIErrorsMapToSentinels(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]error{400: ErrInvalid, 404: ErrNotFound, 401: ErrUnauthenticated, 403: ErrForbidden,
		409: ErrConflict, 503: ErrUnavailable, 504: ErrNotCaughtUp} {
		err := error(&APIError{Op: "x", Status: status})
		if !errors.Is(err, want) {
			t.Errorf("%d: %v does not match %v", status, err, want)
		}
	}
}

func TestRetriesUnavailableWithTheSameEvent(t *testing.T) {
	t.Parallel()
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 4096)
		n, _ := r.Body.Read(buf)
		bodies = append(bodies, string(buf[:n]))
		if len(bodies) < 3 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"event store unavailable"}`))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"event_id":"e","sequence":7}`))
	}))
	t.Cleanup(srv.Close)
	c, err := New(WithHTTP(srv.URL, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.LongTerm.AddPreference(context.Background(), "c", "p", ForUser("sara@omg.com"))
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 3 || bodies[0] != bodies[1] || bodies[1] != bodies[2] {
		t.Fatalf("retries sent different bodies: %q", bodies)
	}
	if p.Receipt.Sequence != 7 || c.tokenFor("sara@omg.com") != 7 {
		t.Fatalf("receipt %+v, token %d", p.Receipt, c.tokenFor("sara@omg.com"))
	}
}
