package ingest

import (
	"context"

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
