// Package keys holds each user's data keys for crypto-shredding: the ingestor seals a user's
// events with the user's current key, every reader opens them with the version they name, and
// an erasure destroys every version, so whatever copy of the events survives (stream blocks,
// replicas, backups, dead letters) can no longer be read. Store is the key store (a JetStream
// KV bucket by default, open to a KMS); Ring caches it for the services.
package keys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the size of a data key: AES-256.
const KeySize = 32

// Sentinel errors of a Store.
var (
	// ErrNotFound: the user has no keys — never written for, or erased (Destroy).
	ErrNotFound = errors.New("no data key for the user")
	// ErrConflict: another process changed the user's keys at the same time (Rotate); retry.
	ErrConflict = errors.New("data keys changed concurrently")
)

// Set is the data keys of one life of a user: a random ID, new with every Create (so a user
// re-created after an erasure never opens the events of the erased life), and the versions,
// Keys[v-1] being version v. The last version seals; every version opens.
type Set struct {
	ID   string   `json:"id"`
	Keys [][]byte `json:"keys"`
}

// Current returns the version that seals and its key.
func (s Set) Current() (int, []byte) { return len(s.Keys), s.Keys[len(s.Keys)-1] }

// Key returns version v's key.
func (s Set) Key(v int) ([]byte, bool) {
	if v < 1 || v > len(s.Keys) {
		return nil, false
	}
	return s.Keys[v-1], true
}

func (s Set) validate() error {
	if len(s.ID) != 16 || len(s.Keys) == 0 {
		return errors.New("malformed key set")
	}
	for _, k := range s.Keys {
		if len(k) != KeySize {
			return errors.New("malformed key set: a key is not 32 bytes")
		}
	}
	return nil
}

// NewSet returns a new life's keys: a random ID and one random version.
func NewSet() (Set, error) {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return Set{}, err
	}
	k, err := newKey()
	if err != nil {
		return Set{}, err
	}
	return Set{ID: hex.EncodeToString(id), Keys: [][]byte{k}}, nil
}

// Rotated returns s with one more version.
func (s Set) Rotated() (Set, error) {
	k, err := newKey()
	if err != nil {
		return Set{}, err
	}
	return Set{ID: s.ID, Keys: append(append(make([][]byte, 0, len(s.Keys)+1), s.Keys...), k)}, nil
}

func newKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("new data key: %w", err)
	}
	return k, nil
}

// Store keeps the users' key sets. Users are named by identifier; an implementation stores
// them under a name of its own (KV: the user id). Every method is safe for concurrent use
// by many processes.
type Store interface {
	// Get returns the user's keys, or ErrNotFound.
	Get(ctx context.Context, user string) (Set, error)
	// Create stores a new Set for the user unless they have one, and returns the one stored:
	// of two processes creating at once, both get the same Set.
	Create(ctx context.Context, user string) (Set, error)
	// Rotate adds a version to the user's keys (ErrNotFound when they have none, ErrConflict
	// when another process changed them meanwhile).
	Rotate(ctx context.Context, user string) (Set, error)
	// Destroy removes every version of the user's keys with their history; destroying keys
	// that do not exist is not an error.
	Destroy(ctx context.Context, user string) error
}
