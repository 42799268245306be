package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
)

// Bucket is the JetStream KV bucket of the data keys; its stream is KV_ENGRAM_KEYS and a
// user's keys are the value of the key named by the user's id (events.UserID), never by the
// identifier or the tenant token.
const Bucket = "ENGRAM_KEYS"

const (
	kvStream  = "KV_" + Bucket
	kvSubject = "$KV." + Bucket + "."
)

// BucketConfig is the bucket's definition: one revision per key (a rotation replaces the
// value, which holds every version), file storage with replicas as the memory stream's.
func BucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Engram per-user data keys (crypto-shredding): destroyed by the user's erasure",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// Ensure creates or updates the bucket (idempotent).
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if _, err := js.CreateOrUpdateKeyValue(ctx, BucketConfig(replicas)); err != nil {
		return fmt.Errorf("apply key bucket %s: %w", Bucket, err)
	}
	return nil
}

// KV is the default Store: the bucket Bucket, read and written with JetStream's own requests
// rather than a jetstream.KeyValue, so each service's NATS user needs only the exact subjects
// it uses (deploy/nats/accounts.conf): a last-by-subject direct get to read, a publish with an
// expected last subject sequence to create or rotate (the KV's Create and Update), and a
// purge of the key's subject to destroy (no delete marker is left behind: the subject holds
// nothing afterwards, so not even the key's name stays in the bucket).
type KV struct {
	js jetstream.JetStream
}

// NewKV returns the Store on js.
func NewKV(js jetstream.JetStream) *KV { return &KV{js: js} }

func subject(user string) string { return kvSubject + events.UserID(user) }

// Get implements Store.
func (s *KV) Get(ctx context.Context, user string) (Set, error) {
	set, _, err := s.get(ctx, user)
	return set, err
}

func (s *KV) get(ctx context.Context, user string) (Set, uint64, error) {
	m, err := s.js.Conn().RequestWithContext(ctx, "$JS.API.DIRECT.GET."+kvStream+"."+subject(user), nil)
	if err != nil {
		return Set{}, 0, fmt.Errorf("read data keys: %w", err)
	}
	switch status := m.Header.Get("Status"); status {
	case "":
	case "404":
		return Set{}, 0, ErrNotFound
	default:
		return Set{}, 0, fmt.Errorf("read data keys: status %s %s", status, m.Header.Get("Description"))
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return Set{}, 0, ErrNotFound
	}
	rev, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return Set{}, 0, fmt.Errorf("read data keys: answer without a valid %s header", jetstream.SequenceHeader)
	}
	var set Set
	if err := json.Unmarshal(m.Data, &set); err != nil {
		return Set{}, 0, fmt.Errorf("read data keys: %w", err)
	}
	if err := set.validate(); err != nil {
		return Set{}, 0, fmt.Errorf("read data keys: %w", err)
	}
	return set, rev, nil
}

// put stores set if the key's last revision is still rev (0: the key holds nothing).
func (s *KV) put(ctx context.Context, user string, set Set, rev uint64) error {
	data, err := json.Marshal(set)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: subject(user), Data: data}
	_, err = s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithExpectStream(kvStream))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("store data keys: %w", err)
	}
	return nil
}

// createWait bounds how long Create waits for the Set another creator stored to be readable.
const createWait = 5 * time.Second

// Create implements Store: the first of concurrent creators stores its Set, the others find
// the subject no longer empty (a wrong last sequence) and read the one stored. On a
// replicated bucket that one may not be readable yet: a second creator is refused while the
// first one's Set is still being replicated (nats-server's "in process" check), and a direct
// get may be answered by a replica that has not applied it. So the others read until they
// find it, for at most createWait, and store their own when the subject turns out empty.
func (s *KV) Create(ctx context.Context, user string) (Set, error) {
	set, err := NewSet()
	if err != nil {
		return Set{}, err
	}
	deadline := time.Now().Add(createWait)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		err = s.put(ctx, user, set, 0)
		if err == nil {
			return set, nil
		}
		if !errors.Is(err, ErrConflict) {
			return Set{}, err
		}
		stored, err := s.Get(ctx, user)
		if !errors.Is(err, ErrNotFound) || time.Now().After(deadline) {
			return stored, err
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Set{}, ctx.Err()
		}
	}
}

// Rotate implements Store.
func (s *KV) Rotate(ctx context.Context, user string) (Set, error) {
	set, rev, err := s.get(ctx, user)
	if err != nil {
		return Set{}, err
	}
	next, err := set.Rotated()
	if err != nil {
		return Set{}, err
	}
	if err := s.put(ctx, user, next, rev); err != nil {
		return Set{}, err
	}
	return next, nil
}

// Destroy implements Store with a purge of the key's subject in the bucket's stream: every
// revision goes, and no marker is written.
func (s *KV) Destroy(ctx context.Context, user string) error {
	req, err := json.Marshal(struct {
		Filter string `json:"filter"`
	}{subject(user)})
	if err != nil {
		return err
	}
	m, err := s.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+kvStream, req)
	if err != nil {
		return fmt.Errorf("destroy data keys: %w", err)
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return fmt.Errorf("destroy data keys: purge answer: %w", err)
	}
	if resp.Error != nil {
		return fmt.Errorf("destroy data keys: %d %s", resp.Error.Code, resp.Error.Description)
	}
	if !resp.Success {
		return errors.New("destroy data keys: purge not confirmed")
	}
	return nil
}

// Default returns the services' ring: the KV store on js behind the default cache.
func Default(js jetstream.JetStream) *Ring {
	r, _ := NewRing(NewKV(js)) // an error only for a nil store
	return r
}
