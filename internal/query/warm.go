package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/engram-memory/engram/internal/events"
)

// warmUpUser is the made-up user Warm reads about: .invalid is never a real domain, and
// nothing is ever written for it.
const warmUpUser = "engram-warm-up@engram.invalid"

// Warm has Neo4j plan every read once, so that the first reads after a start — the demo's on
// a cold stack, a consistency read counting against its wait — do not wait for the planner.
// Neo4j caches a plan per query text, so reading about a user who does not exist is enough.
func (r *Reader) Warm(ctx context.Context) error {
	at := time.Unix(0, 0)
	reads := []struct {
		op   string
		read func() error
	}{
		{"checkpoint", func() error { _, err := r.checkpoint(ctx, r.group+"-p0"); return err }},
		{"user", func() error { _, err := r.User(ctx, warmUpUser); return err }},
		{"preferences", func() error { _, err := r.PreferencesFor(ctx, warmUpUser); return err }},
		{"preferences as of", func() error {
			_, err := r.PreferencesFor(ctx, warmUpUser, AppliesTo(events.EntityRef{Name: "n", Type: "t"}),
				ActiveOnly(false), AsOf(at), KnownAt(at))
			return err
		}},
		{"preference history", func() error { _, err := r.PreferenceHistory(ctx, warmUpUser); return err }},
		{"conversations", func() error { _, err := r.Conversations(ctx, warmUpUser, 0); return err }},
		{"messages", func() error { _, err := r.Messages(ctx, warmUpUser, "s", MessageQuery{}); return err }},
		{"messages newest first", func() error {
			_, err := r.Messages(ctx, warmUpUser, "s", MessageQuery{Order: NewestFirst})
			return err
		}},
		{"traces", func() error { _, err := r.Traces(ctx, warmUpUser, TraceQuery{}); return err }},
		{"trace", func() error { _, err := r.Trace(ctx, warmUpUser, "t"); return err }},
		{"tool stats", func() error { _, err := r.ToolStats(ctx, warmUpUser, ToolQuery{}); return err }},
		{"global tool stats", func() error { _, err := r.GlobalToolStats(ctx, ToolQuery{Limit: 1}); return err }},
		{"global tool stats by name", func() error {
			_, err := r.GlobalToolStats(ctx, ToolQuery{ToolName: "engram-warm-up", Limit: 1})
			return err
		}},
		{"users", func() error { _, err := r.ListUsers(ctx, UserQuery{Limit: 1}); return err }},
		{"search messages", func() error {
			_, err := r.SearchMessages(ctx, warmUpUser, MessageSearch{Text: "warm", SessionID: "s"})
			return err
		}},
		{"search preferences", func() error {
			_, err := r.SearchPreferences(ctx, warmUpUser, PreferenceSearch{Text: "warm"})
			return err
		}},
		{"search entities", func() error { _, err := r.SearchEntities(ctx, warmUpUser, EntitySearch{Text: "warm"}); return err }},
		{"search steps", func() error { _, err := r.SearchSteps(ctx, warmUpUser, StepSearch{Text: "warm"}); return err }},
		{"entity", func() error { _, err := r.GetEntity(ctx, warmUpUser, "e"); return err }},
		{"entities", func() error { _, err := r.Entities(ctx, warmUpUser, EntityQuery{}); return err }},
		{"related entities", func() error { _, err := r.RelatedEntities(ctx, warmUpUser, "e", RelatedQuery{}); return err }},
		{"facts", func() error { _, err := r.Facts(ctx, warmUpUser, FactQuery{}); return err }},
	}
	for _, x := range reads {
		if err := x.read(); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("warm up %s: %w", x.op, err)
		}
	}
	return nil
}
