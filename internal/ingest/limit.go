package ingest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// ErrTooManyBatches means the caller already has as many batches publishing as
// Config.MaxOpenBatches allows; it is answered 429 with Retry-After.
var ErrTooManyBatches = errors.New("too many batches in flight")

// RetryAfterBatchSeconds is the Retry-After of a 429: a batch publishes in well under a second.
const RetryAfterBatchSeconds = 1

// batchLimiter is the fair share of the stream's atomic-batch slots: the stream admits
// stream.MaxOpenAtomicBatches open batches for all tenants together, so each principal, and
// each tenant, may hold only a few at once on this ingestor.
type batchLimiter struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

func newBatchLimiter(maxOpen int) *batchLimiter {
	return &batchLimiter{max: maxOpen, open: map[string]int{}}
}

// acquire takes one slot of every key, or none when one of them is full; release gives them
// back.
func (l *batchLimiter) acquire(keys []string) (release func(), err error) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if l.open[k] >= l.max {
			return nil, fmt.Errorf("%w: %s has %d batches publishing, at most %d at once: retry when one is answered", ErrTooManyBatches, k, l.open[k], l.max)
		}
	}
	for _, k := range keys {
		l.open[k]++
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, k := range keys {
			if l.open[k]--; l.open[k] <= 0 {
				delete(l.open, k)
			}
		}
	}, nil
}
