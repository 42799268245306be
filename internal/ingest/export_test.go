package ingest

import "context"

// OnBatchOpen makes h call f while each batch holds its slots of the fair share, before it
// publishes: a test holds batches open with it.
func OnBatchOpen(h *Handler, f func(context.Context)) { h.onBatchOpen = f }
