package client

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestDeletionsSend: DeleteMessage and ClearSession send DELETE to the user's route (or the
// user-less one for the shared tenant) with the command as the body, refuse bad input before
// sending, and keep the sequence as the user's consistency token. The round trip through the
// real stack: test/e2e TestDeletionsThroughTheStack.
func TestDeletionsSend(t *testing.T) {
	t.Parallel()
	var got []string
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.EscapedPath())
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		bodies = append(bodies, m)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"event_id":"e","sequence":9}`))
	}))
	t.Cleanup(srv.Close)
	c, err := New(WithHTTP(srv.URL, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const msg = "01a219a1-ea54-73ca-b06f-f6e36debf76a"
	r, err := c.ShortTerm.DeleteMessage(ctx, msg, ForUser("sara@omg.com"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Sequence != 9 || r.User != "sara@omg.com" || c.tokenFor("sara@omg.com") != 9 {
		t.Errorf("receipt %+v, token %d", r, c.tokenFor("sara@omg.com"))
	}
	if _, err := c.ShortTerm.ClearSession(ctx, "s 1", ForUser("sara@omg.com")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShortTerm.DeleteMessage(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShortTerm.ClearSession(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"DELETE /v1/users/sara@omg.com/messages/" + msg,
		"DELETE /v1/users/sara@omg.com/conversations/s%201",
		"DELETE /v1/messages/" + msg,
		"DELETE /v1/conversations/s",
	}
	if !slices.Equal(got, want) {
		t.Errorf("sent %q\nwant %q", got, want)
	}
	if b := bodies[0]; b["message_id"] != msg || b["user_identifier"] != "sara@omg.com" || b["event_id"] == nil {
		t.Errorf("delete body %v", b)
	}
	if b := bodies[1]; b["session_id"] != "s 1" || b["user_identifier"] != "sara@omg.com" {
		t.Errorf("clear body %v", b)
	}

	n := len(got)
	if _, err := c.ShortTerm.DeleteMessage(ctx, "not-a-uuid", ForUser("sara@omg.com")); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad message id: %v, want ErrInvalid", err)
	}
	if _, err := c.ShortTerm.ClearSession(ctx, "", ForUser("sara@omg.com")); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty session: %v, want ErrInvalid", err)
	}
	mt, err := New(WithHTTP(srv.URL, srv.URL), WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mt.ShortTerm.DeleteMessage(ctx, msg); !errors.Is(err, ErrUserRequired) {
		t.Errorf("no user in multi-tenant mode: %v, want ErrUserRequired", err)
	}
	if len(got) != n {
		t.Errorf("%d requests sent for refused deletions", len(got)-n)
	}
}
