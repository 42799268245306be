package ingest

import "context"

type actorKey struct{}

// WithActor returns a context naming the principal that writes; the HTTP handler puts it in
// every event's "actor" extension. Authentication middleware sets it; without one every write
// is by AnonymousActor.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the principal WithActor stored, or AnonymousActor.
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return AnonymousActor
}
