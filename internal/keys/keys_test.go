package keys_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/testenv"
)

// kvMessages is every message the bucket's stream holds on user's key.
func kvMessages(t *testing.T, js jetstream.JetStream, user string) uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), "KV_"+keys.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("$KV."+keys.Bucket+"."+events.UserID(user)))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestCreateOnceUnderConcurrentFirstWrites: processes creating a user's keys at once (each
// on its own connection) all get the one set stored.
func TestCreateOnceUnderConcurrentFirstWrites(t *testing.T) {
	t.Parallel()
	srv, _, js := testenv.NATS(t)
	user := testenv.User(t, "first")
	const writers = 12
	sets := make([]keys.Set, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		wjs, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ring, err := keys.NewRing(keys.NewKV(wjs))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			<-start
			ref, k, err := ring.SealKey(t.Context(), user)
			sets[i], errs[i] = keys.Set{ID: ref.ID, Keys: [][]byte{k}}, err
		})
	}
	close(start)
	wg.Wait()
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		if sets[i].ID != sets[0].ID || string(sets[i].Keys[0]) != string(sets[0].Keys[0]) {
			t.Fatalf("writer %d sealed with set %s, writer 0 with %s: two keys for one user", i, sets[i].ID, sets[0].ID)
		}
	}
	if n := kvMessages(t, js, user); n != 1 {
		t.Fatalf("the bucket holds %d revisions of the user's keys, want 1", n)
	}
}

// TestDestroyLeavesNothing: rotation adds a version and keeps the old ones; destroying the
// keys leaves no revision or marker in the bucket, and a reader that cached them is told
// the events are shredded once it reads the store again; a new life gets a new set.
func TestDestroyLeavesNothing(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	ctx := t.Context()
	user := testenv.User(t, "gone")
	store := keys.NewKV(js)
	first, err := store.Create(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := store.Rotate(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.ID != first.ID || len(rotated.Keys) != 2 || string(rotated.Keys[0]) != string(first.Keys[0]) {
		t.Fatalf("rotation: %s with %d versions, want %s with 2 keeping the first", rotated.ID, len(rotated.Keys), first.ID)
	}
	reader, err := keys.NewRing(store, keys.WithCache(time.Nanosecond, 10))
	if err != nil {
		t.Fatal(err)
	}
	v1 := events.KeyRef{ID: first.ID, Version: 1}
	if k, err := reader.OpenKey(ctx, user, v1); err != nil || string(k) != string(first.Keys[0]) {
		t.Fatalf("open version 1: %v", err)
	}
	if _, err := reader.OpenKey(ctx, user, events.KeyRef{ID: first.ID, Version: 3}); !errors.Is(err, events.ErrUndecodable) {
		t.Fatalf("open a version never made: %v, want ErrUndecodable", err)
	}
	if err := store.Destroy(ctx, user); err != nil {
		t.Fatal(err)
	}
	if err := store.Destroy(ctx, user); err != nil {
		t.Fatalf("destroying again: %v", err)
	}
	if _, err := store.Get(ctx, user); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("get after destroy: %v, want ErrNotFound", err)
	}
	if n := kvMessages(t, js, user); n != 0 {
		t.Fatalf("%d messages left on the user's key after destroy", n)
	}
	if _, err := reader.OpenKey(ctx, user, v1); !errors.Is(err, events.ErrShredded) {
		t.Fatalf("open after destroy: %v, want ErrShredded", err)
	}
	if _, err := store.Rotate(ctx, user); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("rotate destroyed keys: %v, want ErrNotFound", err)
	}
	// A new life: new keys, and the old life's events stay shredded.
	next, err := store.Create(ctx, user)
	if err != nil || next.ID == first.ID {
		t.Fatalf("new life's keys: %v, id %s (old %s)", err, next.ID, first.ID)
	}
	if _, err := reader.OpenKey(ctx, user, v1); !errors.Is(err, events.ErrShredded) {
		t.Fatalf("open the old life after a new one began: %v, want ErrShredded", err)
	}
	if _, err := reader.OpenKey(ctx, user, events.KeyRef{ID: next.ID, Version: 1}); err != nil {
		t.Fatalf("open the new life: %v", err)
	}
}

// TestRingCreatedHook: when the check after a creation fails (the ingestor: the user was
// erased meanwhile), the keys just made are destroyed and sealing fails.
func TestRingCreatedHook(t *testing.T) {
	t.Parallel()
	_, _, js := testenv.NATS(t)
	ctx := t.Context()
	store := keys.NewKV(js)
	errGone := errors.New("erased meanwhile")
	ring, err := keys.NewRing(store, keys.WithCreated(func(_ context.Context, user string) error {
		if strings.HasPrefix(user, "gone") {
			return errGone
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	gone, kept := testenv.User(t, "gone"), testenv.User(t, "kept")
	if _, _, err := ring.SealKey(ctx, gone); !errors.Is(err, errGone) {
		t.Fatalf("seal for a user erased meanwhile: %v", err)
	}
	if _, err := store.Get(ctx, gone); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("the keys made for an erased user were kept: %v", err)
	}
	ref, _, err := ring.SealKey(ctx, kept)
	if err != nil {
		t.Fatal(err)
	}
	if again, _, err := ring.SealKey(ctx, kept); err != nil || again != ref {
		t.Fatalf("second seal: %v %v, want %v", again, err, ref)
	}
	// Destroy through the ring forgets the cached keys.
	if err := ring.Destroy(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.OpenKey(ctx, kept, ref); !errors.Is(err, events.ErrShredded) {
		t.Fatalf("open after the ring destroyed the keys: %v", err)
	}
}
