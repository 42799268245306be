package integration

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestPartitionMatchesServer checks that events.Partition computes the partition the stream's
// subject transform stores each tenant's events under.
func TestPartitionMatchesServer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, js := testenv.NATS(t)
	pub := stream.NewPublisher(js, 5*time.Second)
	const n = 200
	want := map[uint64]int{}
	for i := range n {
		user := fmt.Sprintf("user-%d@example.com", i)
		st, err := pub.Publish(ctx, &events.Event{ID: events.NewID(), Source: "/t", User: user, Time: time.Now(),
			Data: events.UserUpserted{UserID: events.UserID(user), Identifier: user}})
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := events.TenantToken(user)
		want[st.Sequence] = events.Partition(tok, natsdeploy.Partitions)
	}
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for seq, p := range want {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		_, _, part, err := splitStored(m)
		if err != nil {
			t.Fatal(err)
		}
		if part != p {
			t.Fatalf("seq %d on %q: server partition %d, events.Partition %d", seq, m.Subject, part, p)
		}
		seen[p] = true
	}
	if len(seen) != natsdeploy.Partitions {
		t.Fatalf("%d tenants used only partitions %v", n, seen)
	}
}

func splitStored(m *jetstream.RawStreamMsg) (string, events.Kind, int, error) {
	tok, kind, err := events.ParseSubject(m.Subject)
	if err != nil {
		return "", "", 0, err
	}
	last := m.Subject[len(m.Subject)-1:]
	p, err := strconv.Atoi(last)
	return tok, kind, p, err
}
