package keys

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/engram-memory/engram/internal/events"
)

// Cache bounds of a Ring.
const (
	// CacheTTL is how long a Ring uses a user's keys without reading the store again: the
	// bound on how long a process that did not see an erasure keeps an erased user's keys.
	// The erasing ingestor forgets them at once, and so does every reader when it decodes
	// the tombstone.
	CacheTTL = 30 * time.Second
	// CacheSize bounds the users a Ring holds keys of; the least recently used go first.
	CacheSize = 10000
	// deadIDs bounds the destroyed key set ids a Ring remembers (an id never comes back).
	deadIDs = 10000
)

// Ring is the services' Keyring (events.Keyring): the Store behind a bounded cache.
type Ring struct {
	store   Store
	ttl     time.Duration
	size    int
	now     func() time.Time
	created func(ctx context.Context, user string) error

	mu    sync.Mutex
	byKey map[string]*list.Element // user → element of lru (*cached)
	lru   *list.List
	dead  map[string]struct{} // set ids known destroyed
	order []string            // dead in insertion order, to bound it
}

type cached struct {
	user string
	set  Set
	at   time.Time
}

// RingOption configures a Ring.
type RingOption func(*Ring) error

// WithCache sets the cache's time to live and size (both positive).
func WithCache(ttl time.Duration, size int) RingOption {
	return func(r *Ring) error {
		if ttl <= 0 || size <= 0 {
			return errors.New("keys: cache ttl and size must be positive")
		}
		r.ttl, r.size = ttl, size
		return nil
	}
}

// WithCreated runs fn after the Ring created a user's keys (their first write, or the first
// of a new life): the ingestor checks there that the user was not erased meanwhile, and an
// error of fn destroys the keys just made and is SealKey's error.
func WithCreated(fn func(ctx context.Context, user string) error) RingOption {
	return func(r *Ring) error { r.created = fn; return nil }
}

// NewRing returns a Ring over store.
func NewRing(store Store, opts ...RingOption) (*Ring, error) {
	if store == nil {
		return nil, errors.New("keys: nil store")
	}
	r := &Ring{store: store, ttl: CacheTTL, size: CacheSize, now: time.Now,
		byKey: map[string]*list.Element{}, lru: list.New(), dead: map[string]struct{}{}}
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Store returns the ring's store.
func (r *Ring) Store() Store { return r.store }

func (r *Ring) lookup(user string) (Set, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	el, ok := r.byKey[user]
	if !ok {
		return Set{}, false
	}
	c := el.Value.(*cached)
	if r.now().Sub(c.at) >= r.ttl {
		r.lru.Remove(el)
		delete(r.byKey, user)
		return Set{}, false
	}
	r.lru.MoveToFront(el)
	return c.set, true
}

func (r *Ring) keep(user string, set Set) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byKey[user]; ok {
		el.Value = &cached{user: user, set: set, at: r.now()}
		r.lru.MoveToFront(el)
		return
	}
	r.byKey[user] = r.lru.PushFront(&cached{user: user, set: set, at: r.now()})
	for r.lru.Len() > r.size {
		old := r.lru.Back()
		r.lru.Remove(old)
		delete(r.byKey, old.Value.(*cached).user)
	}
}

func (r *Ring) markDead(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.dead[id]; ok {
		return
	}
	r.dead[id] = struct{}{}
	r.order = append(r.order, id)
	if len(r.order) > deadIDs {
		delete(r.dead, r.order[0])
		r.order = r.order[1:]
	}
}

func (r *Ring) isDead(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.dead[id]
	return ok
}

// Forget drops the user's keys from the cache (events.Forgetter): the next use reads the
// store.
func (r *Ring) Forget(user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.byKey[user]; ok {
		r.lru.Remove(el)
		delete(r.byKey, user)
	}
}

// SealKey implements events.Keyring: the user's current key, their keys created on their
// first write (Store.Create: concurrent first writes share one set).
func (r *Ring) SealKey(ctx context.Context, user string) (events.KeyRef, []byte, error) {
	set, ok := r.lookup(user)
	if !ok {
		var err error
		set, err = r.store.Get(ctx, user)
		if errors.Is(err, ErrNotFound) {
			set, err = r.create(ctx, user)
		}
		if err != nil {
			return events.KeyRef{}, nil, err
		}
		r.keep(user, set)
	}
	v, k := set.Current()
	return events.KeyRef{ID: set.ID, Version: v}, k, nil
}

func (r *Ring) create(ctx context.Context, user string) (Set, error) {
	set, err := r.store.Create(ctx, user)
	if err != nil || r.created == nil {
		return set, err
	}
	if err := r.created(ctx, user); err != nil {
		if derr := r.store.Destroy(ctx, user); derr != nil {
			return Set{}, errors.Join(err, derr)
		}
		return Set{}, err
	}
	return set, nil
}

// OpenKey implements events.Keyring: ref's key, read again from the store when the cache
// does not have it (a new life, a rotation); events.ErrShredded when it is destroyed.
func (r *Ring) OpenKey(ctx context.Context, user string, ref events.KeyRef) ([]byte, error) {
	if set, ok := r.lookup(user); ok && set.ID == ref.ID {
		if k, ok := set.Key(ref.Version); ok {
			return k, nil
		}
	}
	if r.isDead(ref.ID) {
		return nil, events.ErrShredded
	}
	set, err := r.store.Get(ctx, user)
	if errors.Is(err, ErrNotFound) {
		r.markDead(ref.ID)
		return nil, events.ErrShredded
	}
	if err != nil {
		return nil, err
	}
	r.keep(user, set)
	if set.ID != ref.ID {
		// Another life's keys: ref's were destroyed with an erasure.
		r.markDead(ref.ID)
		return nil, events.ErrShredded
	}
	k, ok := set.Key(ref.Version)
	if !ok {
		return nil, fmt.Errorf("%w: key version %d of %d", events.ErrUndecodable, ref.Version, len(set.Keys))
	}
	return k, nil
}

// Destroy destroys the user's keys in the store and forgets them.
func (r *Ring) Destroy(ctx context.Context, user string) error {
	r.Forget(user)
	return r.store.Destroy(ctx, user)
}

// Rotate adds a version to the user's keys; new events are sealed with it (by this process
// at once, by others within CacheTTL), older ones still open with theirs.
func (r *Ring) Rotate(ctx context.Context, user string) (Set, error) {
	set, err := r.store.Rotate(ctx, user)
	if err != nil {
		return Set{}, err
	}
	r.keep(user, set)
	return set, nil
}
