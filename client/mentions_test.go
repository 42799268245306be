package client

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestEntityDeletionAndMentionsSend: DeleteEntity sends DELETE to the user's route (the
// owner remembered from AddEntity when ForUser is left out), refuses a bad id before sending;
// the mention reads ask the user's routes with the limit and decode the answers. The round
// trip through the real stack: test/e2e TestEntityDeletionThroughTheStack.
func TestEntityDeletionAndMentionsSend(t *testing.T) {
	t.Parallel()
	var got []string
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		bodies = append(bodies, m)
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/entities":
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"event_id":"e","sequence":3,"entity_id":"5b0c3f2e-7a51-5c4e-9d0e-6a1f0f1c7e01"}`))
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"event_id":"e","sequence":9,"entity_id":"5b0c3f2e-7a51-5c4e-9d0e-6a1f0f1c7e01"}`))
		case strings.HasSuffix(r.URL.Path, "/mentions"):
			_, _ = w.Write([]byte(`{"entity_id":"x","resolved_from":"y","messages":[{"id":"m","role":"user","content":"hi","session_id":"s"}],` +
				`"traces":[{"id":"t","session_id":"s","task":"k","step_count":0}],"truncated":true}`))
		default:
			_, _ = w.Write([]byte(`{"message_id":"m","entities":[{"id":"x","name":"Acme","type":"ORGANIZATION","aliases":[]}],"truncated":false}`))
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(WithHTTP(srv.URL, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	e, err := c.LongTerm.AddEntity(ctx, "Acme", "ORGANIZATION", ForUser("sara@omg.com"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.LongTerm.DeleteEntity(ctx, e.ID) // the owner this client remembers
	if err != nil {
		t.Fatal(err)
	}
	if r.Sequence != 9 || r.User != "sara@omg.com" || c.tokenFor("sara@omg.com") != 9 {
		t.Errorf("receipt %+v, token %d", r, c.tokenFor("sara@omg.com"))
	}
	if b := bodies[1]; b["entity_id"] != e.ID || b["user_identifier"] != "sara@omg.com" || b["event_id"] == nil {
		t.Errorf("delete body %v", b)
	}
	n := len(got)
	if _, err := c.LongTerm.DeleteEntity(ctx, "Acme", ForUser("sara@omg.com")); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad entity id: %v, want ErrInvalid", err)
	}
	if len(got) != n {
		t.Errorf("%d requests sent for a refused deletion", len(got)-n)
	}

	m, err := c.LongTerm.GetEntityMentions(ctx, "sara@omg.com", "x", Limit(5))
	if err != nil {
		t.Fatal(err)
	}
	if m.EntityID != "x" || m.ResolvedFrom == nil || len(m.Messages) != 1 || m.Messages[0].SessionID != "s" ||
		len(m.Traces) != 1 || m.Traces[0].User != "sara@omg.com" || !m.Truncated {
		t.Errorf("mentions %+v", m)
	}
	me, err := c.ShortTerm.GetMessageEntities(ctx, "sara@omg.com", "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(me.Entities) != 1 || me.Entities[0].Name != "Acme" || me.Entities[0].User != "sara@omg.com" {
		t.Errorf("message entities %+v", me)
	}
	if _, err := c.Reasoning.GetTraceEntities(ctx, "sara@omg.com", "t", Limit(2)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /v1/entities?",
		"DELETE /v1/users/sara@omg.com/entities/" + e.ID + "?",
		"GET /v1/users/sara@omg.com/entities/x/mentions?consistency=9&limit=5",
		"GET /v1/users/sara@omg.com/messages/m/entities?consistency=9",
		"GET /v1/users/sara@omg.com/traces/t/entities?consistency=9&limit=2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("sent %q\nwant %q", got, want)
	}
}
