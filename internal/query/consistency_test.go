package query

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func TestWaitFor(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	group := testGroup(t, d)
	r, err := NewReader(d, "", WithCheckpointGroup(group))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	user := testenv.User(t, "ryw")
	tok, _ := events.TenantToken(user)
	partition := events.Partition(tok, natsdeploy.Partitions)
	name, err := r.CheckpointName(user)
	if err != nil {
		t.Fatal(err)
	}
	if want := group + "-p" + strconv.Itoa(partition); name != want {
		t.Fatalf("checkpoint name %q, want %q", name, want)
	}

	// No checkpoint yet: nothing is covered. (A wait of a second: a wait in which Neo4j never
	// answers, which a loaded machine can make of 50 ms, is a 503 by design.)
	err = r.WaitFor(ctx, user, 5, time.Second)
	var lag *ConsistencyError
	if !errors.Is(err, ErrNotCaughtUp) || !errors.As(err, &lag) || lag.Token != 5 || lag.Reached != 0 || lag.Checkpoint != name {
		t.Fatalf("no checkpoint: err %v", err)
	}

	setCheckpoint(t, d, name, partition, 10)
	for _, token := range []uint64{1, 10} {
		if err := r.WaitFor(ctx, user, token, time.Second); err != nil {
			t.Fatalf("token %d with checkpoint 10: %v", token, err)
		}
	}
	err = r.WaitFor(ctx, user, 11, time.Second)
	if !errors.As(err, &lag) || lag.Reached != 10 {
		t.Fatalf("token 11 with checkpoint 10: err %v", err)
	}

	// The projector catches up while the read waits.
	done := make(chan error, 1)
	go func() { done <- r.WaitFor(ctx, user, 20, 30*time.Second) }()
	setCheckpoint(t, d, name, partition, 15)
	setCheckpoint(t, d, name, partition, 20)
	if err := <-done; err != nil {
		t.Fatalf("wait for 20 while the checkpoint reached it: %v", err)
	}

	// A canceled read stops waiting with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.WaitFor(cctx, user, 100, 30*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: err %v", err)
	}
	for _, token := range []uint64{0, 1 << 63} {
		if err := r.WaitFor(ctx, user, token, time.Second); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("token %d: err %v, want ErrInvalidArgument", token, err)
		}
	}
}

// TestWaitForOtherPartition: a token of another user's write (another partition) is covered
// once the reader's partition has nothing unapplied at or below it.
func TestWaitForOtherPartition(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	_, _, js := testenv.NATS(t)
	group := testGroup(t, d)
	r, err := NewReader(d, "", WithCheckpointGroup(group), WithPartitionLog(NewStreamLog(js)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	reader := testenv.User(t, "reader")
	readerTok, _ := events.TenantToken(reader)
	pr := events.Partition(readerTok, natsdeploy.Partitions)
	other := testenv.User(t, "other")
	for i := 0; ; i++ {
		tok, _ := events.TenantToken(other)
		if events.Partition(tok, natsdeploy.Partitions) != pr {
			break
		}
		other = testenv.User(t, "other")
		if i > 100 {
			t.Fatal("no user in another partition")
		}
	}
	pub := stream.NewPublisher(js, 5*time.Second)
	publish := func(user string) uint64 {
		t.Helper()
		st, err := pub.Publish(ctx, &events.Event{ID: events.NewID(), Source: "/test", User: user, Time: time.Now().UTC(),
			Data: events.UserUpserted{UserID: events.UserID(user), Identifier: user}})
		if err != nil {
			t.Fatal(err)
		}
		return st.Sequence
	}
	name, _ := r.CheckpointName(reader)

	own := publish(reader)    // the reader's partition
	foreign := publish(other) // another partition, a later sequence
	setCheckpoint(t, d, name, pr, int64(own))
	if err := r.WaitFor(ctx, reader, foreign, 5*time.Second); err != nil {
		t.Fatalf("token %d of another partition, own partition applied up to %d: %v", foreign, own, err)
	}

	// Now the reader's partition has an unapplied event below the token: not covered.
	pending := publish(reader)
	later := publish(other)
	err = r.WaitFor(ctx, reader, later, 100*time.Millisecond)
	var lag *ConsistencyError
	if !errors.As(err, &lag) || lag.Reached != own {
		t.Fatalf("token %d with event %d of the partition unapplied: err %v", later, pending, err)
	}
	// A token below the pending event is still covered.
	if err := r.WaitFor(ctx, reader, foreign, time.Second); err != nil {
		t.Fatalf("token %d below the pending event %d: %v", foreign, pending, err)
	}
	setCheckpoint(t, d, name, pr, int64(pending))
	if err := r.WaitFor(ctx, reader, later, 5*time.Second); err != nil {
		t.Fatalf("after the pending event was applied: %v", err)
	}

	// A token beyond the stream's end is not covered: a later event of the partition could
	// still take a sequence below it.
	err = r.WaitFor(ctx, reader, later+10, 100*time.Millisecond)
	if !errors.As(err, &lag) || lag.Reached != pending {
		t.Fatalf("token beyond the stream: err %v", err)
	}
}
