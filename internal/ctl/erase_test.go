package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func TestEraseCommand(t *testing.T) {
	t.Parallel()
	srv, _, js := testenv.NATS(t)
	pub := stream.NewPublisher(js, 5*time.Second)
	for _, u := range []string{"gone@omg.com", "kept@omg.com"} {
		if _, err := pub.Publish(t.Context(), &events.Event{ID: events.NewID(), Source: "/t", User: u, Time: time.Now(),
			Data: events.PreferenceAdded{PreferenceID: events.NewID(), Category: "c", Preference: "p"}}); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"NATS_URL": srv.ClientURL()}
	for range 2 { // idempotent
		var out, errOut bytes.Buffer
		if code := Main(t.Context(), []string{"erase", "--user", "gone@omg.com", "--reason", "asked"}, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		if !strings.Contains(out.String(), "tombstone") {
			t.Fatalf("output %q", out.String())
		}
	}
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]events.Kind{"gone@omg.com": events.KindUserErased, "kept@omg.com": events.KindPreferenceAdded} {
		f, _ := events.TenantSubjects(user)
		info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(f))
		if err != nil {
			t.Fatal(err)
		}
		if len(info.State.Subjects) != 1 {
			t.Fatalf("%s: subjects %v", user, info.State.Subjects)
		}
		for subj, n := range info.State.Subjects {
			if _, k, _ := events.ParseSubject(subj); k != want || n != 1 {
				t.Fatalf("%s: subjects %v, want one %s", user, info.State.Subjects, want)
			}
		}
	}
}
