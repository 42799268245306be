package query

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestProgressWakesWaiters: a notification of the projector's group for a partition closes
// the channel a waiter of that partition took before, and only that one; other groups'
// notifications and malformed ones are ignored.
func TestProgressWakesWaiters(t *testing.T) {
	t.Parallel()
	_, nc, _ := testenv.NATS(t)
	p := NewProgress("grp")
	if err := p.Subscribe(nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	c3, c4 := p.Changed(3), p.Changed(4)
	for _, m := range []struct{ subject, data string }{
		{stream.ProgressSubject("other", 3), "10"}, // another group
		{stream.ProgressSubject("grp", 3), "ten"},  // not a sequence
	} {
		if err := nc.Publish(m.subject, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Publish(stream.ProgressSubject("grp", 3), []byte("10")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c3:
	case <-time.After(10 * time.Second):
		t.Fatal("partition 3's waiter was not woken")
	}
	select {
	case <-c4:
		t.Error("partition 4's waiter woken by partition 3's notification")
	default:
	}
	if p.Changed(3) == c3 {
		t.Error("a woken channel is handed out again")
	}
}

func TestParseProgress(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		subject, data string
		part          int
		seq           uint64
		ok            bool
	}{
		{"engram.progress.g.7", "42", 7, 42, true},
		{"engram.progress.g.x", "42", 0, 0, false},
		{"engram.progress.g.-1", "42", 0, 0, false},
		{"engram.progress.g.1", "", 0, 0, false},
		{"nodots", "1", 0, 0, false},
	} {
		part, seq, ok := stream.ParseProgress(c.subject, []byte(c.data))
		if ok != c.ok || (ok && (part != c.part || seq != c.seq)) {
			t.Errorf("ParseProgress(%q, %q) = %d, %d, %v", c.subject, c.data, part, seq, ok)
		}
	}
}

// TestProgressReached: a partition's latest notification names its checkpoint for
// progressTrust after it arrived, then no longer; a later, lower one replaces a higher one
// (a checkpoint that went back, as after a restore of Neo4j).
func TestProgressReached(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p := NewProgress("grp")
	p.now = func() time.Time { return now }
	if got := p.Reached(3); got != 0 {
		t.Fatalf("before any notification: %d, want 0", got)
	}
	p.notify(3, 40)
	if got, other := p.Reached(3), p.Reached(4); got != 40 || other != 0 {
		t.Errorf("after 40 on partition 3: %d and %d on 4, want 40 and 0", got, other)
	}
	p.notify(3, 25)
	if got := p.Reached(3); got != 25 {
		t.Errorf("after 25: %d, want the latest, 25", got)
	}
	now = now.Add(progressTrust + time.Millisecond)
	if got := p.Reached(3); got != 0 {
		t.Errorf("%s later: %d, want 0 (no longer fresh)", progressTrust, got)
	}
	var none *Progress
	if none.Reached(3) != 0 {
		t.Error("a nil Progress reached something")
	}
}

// TestWaitForTrustsAFreshNotification: a read woken by the projector's notification that
// its partition's checkpoint passed the token answers without the checkpoint in the graph
// (here there is none: only the notification can cover the token).
func TestWaitForTrustsAFreshNotification(t *testing.T) {
	t.Parallel()
	n := newNotified(t, "notified")
	r, nc, group, user, part := n.r, n.nc, n.group, n.user, n.part
	done := make(chan error, 1)
	go func() { done <- r.WaitFor(t.Context(), user, 7, 30*time.Second) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err := nc.Publish(stream.ProgressSubject(group, part), []byte("9")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("WaitFor after a notification of 9 for token 7: %v", err)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("WaitFor did not return after the notification")
		}
	}
}

// TestWaitForFallsBackToTheGraphWhenNotificationsStop: below a fresh notification the
// checkpoint is not read from the graph (the projector says when it passes the token); once
// no fresh notification is there (the projector stopped notifying), the graph decides again.
// Here the graph's checkpoint covers the token and the only notification says less: the read
// is answered after the notification went stale, within the wait.
func TestWaitForFallsBackToTheGraphWhenNotificationsStop(t *testing.T) {
	t.Parallel()
	n := newNotified(t, "stale")
	r, nc, p, group, user, part := n.r, n.nc, n.p, n.group, n.user, n.part
	name := group + "-p" + strconv.Itoa(part)
	setCheckpoint(t, n.d, name, part, 10)
	if err := nc.Publish(stream.ProgressSubject(group, part), []byte("5")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); p.Reached(part) != 5; {
		if time.Now().After(deadline) {
			t.Fatal("the notification did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := r.WaitFor(t.Context(), user, 8, 10*time.Second); err != nil {
		t.Fatalf("WaitFor(8) with the graph at 10 and a notification of 5: %v", err)
	}
	t.Logf("answered after %s (the notification stands for %s)", time.Since(start).Round(time.Millisecond), progressTrust)
}

// notifiedReader is a Reader whose progress follows a group of its own on a private NATS, and a
// user of the test with its partition.
type notifiedReader struct {
	d     neo4j.DriverWithContext
	nc    *nats.Conn
	p     *Progress
	r     *Reader
	group string
	user  string
	part  int
}

func newNotified(t *testing.T, name string) notifiedReader {
	t.Helper()
	n := notifiedReader{d: neo4jDriver(t), group: name + "-" + events.NewID()[24:]}
	_, n.nc, _ = testenv.NATS(t)
	n.p = NewProgress(n.group)
	if err := n.p.Subscribe(n.nc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.p.Close() })
	var err error
	if n.r, err = NewReader(n.d, "", WithCheckpointGroup(n.group), WithProgress(n.p)); err != nil {
		t.Fatal(err)
	}
	n.user = testenv.User(t, name)
	owner, _ := events.TenantToken(n.user)
	n.part = events.Partition(owner, n.r.partitions)
	return n
}
