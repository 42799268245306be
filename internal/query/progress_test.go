package query

import (
	"testing"
	"time"

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
