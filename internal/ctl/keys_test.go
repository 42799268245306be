package ctl

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestKeysAndEraseShred: memctl keys shows and rotates a user's data keys (never printing a
// key), memctl dlq show opens a sealed dead letter, and memctl erase destroys the keys, after
// which the letter's event no longer opens and keys show finds none.
func TestKeysAndEraseShred(t *testing.T) {
	t.Parallel()
	srv, _, js := testenv.NATS(t)
	ctx := t.Context()
	env := map[string]string{"NATS_URL": srv.ClientURL()}
	run := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := Main(ctx, args, &out, &errOut, func(k string) string { return env[k] })
		return out.String(), errOut.String(), code
	}
	user := testenv.User(t, "keys")
	ring, err := keys.NewRing(keys.NewKV(js))
	if err != nil {
		t.Fatal(err)
	}
	ev := &events.Event{ID: events.NewID(), Source: "/t", User: user, Time: time.Now().UTC(),
		Data: events.PreferenceAdded{PreferenceID: events.NewID(), Category: "c", Preference: "secret preference"}}
	msg, err := events.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := (events.Codec{Keys: ring}).Seal(ctx, user, msg); err != nil {
		t.Fatal(err)
	}
	st, err := stream.NewPublisher(js, 5*time.Second).PublishMsg(ctx, ev.ID, msg)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := events.TenantToken(user)
	stored := "mem." + tok + ".preference_added.0"
	if err := projection.NewDeadLetters(js, "test", 5*time.Second).Send(ctx, projection.DeadLetter{Subject: stored, Sequence: st.Sequence,
		Stored: time.Now(), Header: msg.Header, Data: msg.Data, Reason: projection.ReasonMissingReference, Err: errors.New("x")}); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := run("keys", "rotate", "--user", user)
	if code != 0 || !strings.Contains(out, "2 version(s)") {
		t.Fatalf("keys rotate: %d %q %q", code, out, errOut)
	}
	out, _, code = run("keys", "show", "--user", user)
	set, _ := keys.NewKV(js).Get(ctx, user)
	if code != 0 || !strings.Contains(out, set.ID+".2") {
		t.Fatalf("keys show: %d %q, want the set %s at version 2", code, out, set.ID)
	}
	out, errOut, code = run("dlq", "show", "1")
	if code != 0 || !strings.Contains(out, "secret preference") || !strings.Contains(out, "ce-subject: "+user) || !strings.Contains(out, "opened with data key") {
		t.Fatalf("dlq show of a sealed letter: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := run("erase", "--user", user); code != 0 {
		t.Fatalf("erase: %q", errOut)
	}
	if _, err := keys.NewKV(js).Get(ctx, user); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("keys after memctl erase: %v", err)
	}
	if _, errOut, code := run("keys", "show", "--user", user); code == 0 || !strings.Contains(errOut, "no data keys") {
		t.Fatalf("keys show after the erasure: %d %q", code, errOut)
	}
	// The erasure purged the dead letter too; a copy of it (a backup) no longer opens.
	fresh, err := keys.NewRing(keys.NewKV(js))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := (events.Codec{Keys: fresh}).Open(ctx, stored, msg.Header, msg.Data); !errors.Is(err, events.ErrShredded) {
		t.Fatalf("the sealed copy after memctl erase: %v, want ErrShredded", err)
	}
}
