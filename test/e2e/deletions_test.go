package e2e

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestDeletionsThroughTheStack drives the Go client through the real ingestor, projector and
// query service: messages are written, one is deleted and the conversation read back with the
// deletion's consistency token has the others in order; deleting it again or deleting an id
// never written is applied as a no-op; deleting another user's message is dead-lettered; the
// cleared session reads back empty, is gone from the conversation list, takes new messages;
// the other user's session of the same id is untouched.
func TestDeletionsThroughTheStack(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	d := testenv.Neo4j(t)
	sara, liam := testenv.User(t, "del-sara"), testenv.User(t, "del-liam")
	t.Cleanup(func() { testenv.Cleanup(t, d, sara, liam) })
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	contents := func(user, session string, seq uint64) []string {
		t.Helper()
		page, err := c.ShortTerm.GetMessages(ctx, user, session, client.AtLeast(seq))
		if err != nil {
			t.Fatalf("read %s of %s: %v", session, user, err)
		}
		out := []string{}
		for _, m := range page.Messages {
			out = append(out, m.Content)
		}
		return out
	}

	var ids []string
	for _, text := range []string{"one", "two", "three", "four"} {
		m, err := c.ShortTerm.AddMessage(ctx, "s", "user", text, client.ForUser(sara))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	liamMsg, err := c.ShortTerm.AddMessage(ctx, "s", "user", "liam's", client.ForUser(liam))
	if err != nil {
		t.Fatal(err)
	}

	r, err := c.ShortTerm.DeleteMessage(ctx, ids[1], client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(sara, "s", r.Sequence); !slices.Equal(got, []string{"one", "three", "four"}) {
		t.Fatalf("after deleting the second message: %v", got)
	}
	// The first and the last, over HTTP with the session in the path.
	for _, id := range []string{ids[0], ids[3]} {
		var acc ingest.Accepted
		u := stack.IngestorURL + "/v1/users/" + url.PathEscape(sara) + "/conversations/s/messages/" + id
		if code := doJSON(t, http.MethodDelete, u, "", nil, &acc); code != http.StatusAccepted || acc.Sequence == 0 {
			t.Fatalf("DELETE %s: %d %+v", u, code, acc)
		}
		r.Sequence = acc.Sequence
	}
	if got := contents(sara, "s", r.Sequence); !slices.Equal(got, []string{"three"}) {
		t.Fatalf("after deleting the first and the last: %v", got)
	}

	// Again, and an id never written: applied, nothing changes.
	for _, id := range []string{ids[1], events.NewID()} {
		r, err := c.ShortTerm.DeleteMessage(ctx, id, client.ForUser(sara))
		if err != nil {
			t.Fatal(err)
		}
		if f, err := c.WaitApplied(ctx, r); err != nil || f.Status != client.FateApplied {
			t.Errorf("deleting %s again or never written: fate %+v, %v; want applied", id, f, err)
		}
	}
	// Another user's message: dead-lettered, and it stays.
	r, err = c.ShortTerm.DeleteMessage(ctx, liamMsg.ID, client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitApplied(ctx, r); !errors.Is(err, client.ErrRejected) {
		t.Errorf("deleting another user's message: %v, want ErrRejected", err)
	}
	if got := contents(liam, "s", liamMsg.Receipt.Sequence); !slices.Equal(got, []string{"liam's"}) {
		t.Errorf("liam's session after sara's attempt: %v", got)
	}

	// Deleting the last one left empties the session.
	r, err = c.ShortTerm.DeleteMessage(ctx, ids[2], client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(sara, "s", r.Sequence); len(got) != 0 {
		t.Fatalf("after deleting every message: %v", got)
	}

	// Clear a session with messages: empty, gone from her list, her other sessions and liam's
	// kept; twice, or a session never written, is no error; new messages start it anew.
	for _, w := range []struct{ session, text string }{{"s", "five"}, {"s", "six"}, {"s2", "other"}, {"s3", "third"}} {
		if _, err := c.ShortTerm.AddMessage(ctx, w.session, "user", w.text, client.ForUser(sara)); err != nil {
			t.Fatal(err)
		}
	}
	r, err = c.ShortTerm.ClearSession(ctx, "s", client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(sara, "s", r.Sequence); len(got) != 0 {
		t.Errorf("cleared session reads %v, want nothing", got)
	}
	convs, err := c.ShortTerm.GetConversations(ctx, sara, client.AtLeast(r.Sequence))
	if err != nil {
		t.Fatal(err)
	}
	var sessions []string
	for _, cv := range convs {
		sessions = append(sessions, cv.SessionID)
	}
	slices.Sort(sessions)
	if !slices.Equal(sessions, []string{"s2", "s3"}) {
		t.Errorf("sessions after clearing s: %v, want [s2 s3]", sessions)
	}
	if got := contents(sara, "s2", r.Sequence); !slices.Equal(got, []string{"other"}) {
		t.Errorf("s2 after clearing s: %v", got)
	}
	for _, session := range []string{"s", "never-written"} {
		r, err := c.ShortTerm.ClearSession(ctx, session, client.ForUser(sara))
		if err != nil {
			t.Fatal(err)
		}
		if f, err := c.WaitApplied(ctx, r); err != nil || f.Status != client.FateApplied {
			t.Errorf("clearing %s (cleared or never written): fate %+v, %v; want applied", session, f, err)
		}
	}
	m, err := c.ShortTerm.AddMessage(ctx, "s", "user", "again", client.ForUser(sara))
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(sara, "s", m.Receipt.Sequence); !slices.Equal(got, []string{"again"}) {
		t.Errorf("the cleared session after a new message: %v", got)
	}
	if got := contents(liam, "s", m.Receipt.Sequence); !slices.Equal(got, []string{"liam's"}) {
		t.Errorf("liam's session after sara's clearing: %v", got)
	}
}
