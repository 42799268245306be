package e2e

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestCryptoShredding: through the whole stack (encryption on, its default), what the
// ingestor stores of a user is sealed; a copy of the stream taken before the erasure (a
// backup, a replica's block) is unreadable after it; and the scan of graph, stream (but the
// tombstone), dead letters and key bucket finds neither the identifier, the tenant token nor
// the user id of the erased user, while the other user reads as before.
func TestCryptoShredding(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	d := testenv.Neo4j(t)
	gone, kept := testenv.User(t, "shred"), testenv.User(t, "kept")
	t.Cleanup(func() { testenv.Cleanup(t, d, gone, kept) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var last client.Receipt
	for _, u := range []string{gone, kept} {
		if _, err := c.Users.UpsertUser(ctx, u, client.WithAttributes(map[string]any{"email": u})); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ShortTerm.AddMessage(ctx, "s1", "user", "secret of "+u, client.ForUser(u)); err != nil {
			t.Fatal(err)
		}
		p, err := c.LongTerm.AddPreference(ctx, "c", "likes of "+u, client.ForUser(u))
		if err != nil {
			t.Fatal(err)
		}
		// A supersede of a preference that does not exist: dead-lettered (missing_reference).
		s, err := c.LongTerm.SupersedePreference(ctx, events.NewID(), p.ID, client.ForUser(u))
		if err != nil {
			t.Fatal(err)
		}
		last = s
	}
	if _, err := c.WaitApplied(ctx, last); err == nil {
		t.Fatal("the poison supersede was applied")
	}
	keptPrefs, err := c.LongTerm.GetPreferencesFor(ctx, kept)
	if err != nil || len(keptPrefs) != 1 {
		t.Fatalf("kept's preferences: %v, %v", keptPrefs, err)
	}

	nc, err := nats.Connect(stack.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	goneTok, _ := events.TenantToken(gone)
	// The backup: every stored message of gone's, and their dead letter.
	ms, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ms.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var backup []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := ms.GetMsg(ctx, seq)
		if err == nil && strings.HasPrefix(m.Subject, "mem."+goneTok+".") {
			backup = append(backup, m)
		}
	}
	if len(backup) != 4 {
		t.Fatalf("backup holds %d of gone's events, want 4", len(backup))
	}
	for _, m := range backup {
		if m.Header.Get(events.HeaderKey) == "" || m.Header.Get("ce-subject") != "" || bytes.Contains(m.Data, []byte("of "+gone)) {
			t.Fatalf("event %d is not sealed: %v %q", m.Sequence, m.Header, m.Data)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(testenv.StreamTraces(ctx, t, js, stream.DeadLetterStream, nil, goneTok)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("gone's poison was not dead-lettered")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := testenv.StreamTraces(ctx, t, js, stream.DeadLetterStream, nil, "of "+gone, "of "+kept, gone, kept); len(got) != 0 {
		t.Fatalf("dead letters hold plaintext: %v", got)
	}

	before, err := fingerprint.Of(ctx, d, "", fingerprint.Scope{Owners: []string{mustTok(t, kept)}})
	if err != nil {
		t.Fatal(err)
	}
	erased, err := c.Users.EraseUser(ctx, gone)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Users.GetUser(ctx, gone, client.AtLeast(erased.Sequence)); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("erased user readable: %v", err)
	}

	// The backup no longer opens: the key is gone from the store (and a fresh reader has no
	// cache).
	ring, err := keys.NewRing(keys.NewKV(js))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range backup {
		if _, err := (events.Codec{Keys: ring}).Decode(ctx, m.Subject, m.Header, m.Data); !errors.Is(err, events.ErrShredded) {
			t.Fatalf("backup event %d after the erasure: %v, want ErrShredded", m.Sequence, err)
		}
	}
	// The scan.
	needles := testenv.Needles(t, gone)
	tombstone := func(m jetstream.RawStreamMsg) bool { return m.Sequence == erased.Sequence }
	for name, got := range map[string][]string{
		"graph":       testenv.GraphTraces(ctx, t, d, needles...),
		"stream":      testenv.StreamTraces(ctx, t, js, stream.MemoryStream, tombstone, needles...),
		"dead letter": testenv.StreamTraces(ctx, t, js, stream.DeadLetterStream, nil, needles...),
		"key bucket":  testenv.StreamTraces(ctx, t, js, "KV_"+keys.Bucket, nil, needles...),
	} {
		if len(got) != 0 {
			t.Errorf("the %s keeps a trace of the erased user: %v", name, got)
		}
	}
	after, err := fingerprint.Of(ctx, d, "", fingerprint.Scope{Owners: []string{mustTok(t, kept)}})
	if err != nil {
		t.Fatal(err)
	}
	if !after.Equal(before) {
		t.Fatalf("the erasure touched the kept user:\n%s", fingerprint.Diff(before, after, 10))
	}
	if prefs, err := c.LongTerm.GetPreferencesFor(ctx, kept); err != nil || len(prefs) != 1 || prefs[0].Preference != "likes of "+kept {
		t.Fatalf("kept's preferences after the erasure: %v, %v", prefs, err)
	}
}

func mustTok(t *testing.T, user string) string {
	t.Helper()
	tok, err := events.TenantToken(user)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
