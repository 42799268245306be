package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func TestAuditCommand(t *testing.T) {
	t.Parallel()
	srv, _, js := testenv.NATS(t)
	user := "sara@omg.com"
	pref := events.NewID()
	if _, err := stream.NewPublisher(js, 5*time.Second).Publish(t.Context(), &events.Event{
		ID: events.NewID(), Source: "/engram/test", User: user, Time: time.Now(), Actor: "agent-1",
		Data: events.PreferenceAdded{PreferenceID: pref, Category: "consultants", Preference: "Senior"},
	}); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	env := map[string]string{"NATS_URL": srv.ClientURL()}
	if code := Main(t.Context(), []string{"audit", "--user", user}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"preference_added", "/engram/test", "agent-1", pref, "Senior"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	errOut.Reset()
	if code := Main(t.Context(), []string{"audit"}, &out, &errOut, func(string) string { return "" }); code == 0 || !strings.Contains(errOut.String(), "--user is required") {
		t.Fatalf("missing --user: exit %d, %q", code, errOut.String())
	}
}
