package ingest

import (
	"context"
	"sync/atomic"

	"github.com/engram-memory/engram/internal/stream"
)

// OnBatchOpen makes h call f while each batch holds its slots of the fair share, before it
// publishes: a test holds batches open with it.
func OnBatchOpen(h *Handler, f func(context.Context)) { h.onBatchOpen = f }

// WithoutErasureCheck makes h skip the look-up of its users' erasures (every user is taken
// as never erased): the benchmark's baseline.
func WithoutErasureCheck(h *Handler) {
	h.erasureOf = func(context.Context, string) (stream.Erasure, error) { return stream.Erasure{}, nil }
}

// CountErasureReads makes h count its reads of users' erasures from the log.
func CountErasureReads(h *Handler) *atomic.Int64 {
	var n atomic.Int64
	read := h.erasureOf
	h.erasureOf = func(ctx context.Context, user string) (stream.Erasure, error) {
		n.Add(1)
		return read(ctx, user)
	}
	return &n
}

// WithoutErasureCache makes h read its users' erasures from the log at every write, as it
// did before it remembered them.
func WithoutErasureCache(h *Handler) { h.erasures = nil }
