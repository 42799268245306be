package app

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Delays between the attempts of a wait for a dependency: short at first (a server started
// alongside answers within a second), then every few seconds, so a long wait logs a line
// every few seconds instead of a flood.
const (
	firstRetry = 250 * time.Millisecond
	maxRetry   = 5 * time.Second
)

// Retry runs try until it succeeds or ctx ends. Each failure is logged as msg (a constant
// such as "waiting for neo4j") with attrs, the attempt, the delay before the next one and the
// error, so that a service that waits says what for and why.
func Retry(ctx context.Context, logger *slog.Logger, msg string, attrs []any, try func(context.Context) error) error {
	delay := firstRetry
	for attempt := 1; ; attempt++ {
		err := try(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil {
			logger.Warn(msg, append(slices.Clone(attrs), "attempt", attempt, "retry_in", delay, "err", err)...)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
				delay = min(delay*2, maxRetry)
				continue
			}
		}
		return fmt.Errorf("%w after %d attempts, last error: %w", ctx.Err(), attempt, err)
	}
}
