package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/stream"
)

func init() {
	register("erase", "forget a user: publish the erasure tombstone and purge their events (idempotent)", runErase)
}

func runErase(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("erase", flag.ContinueOnError)
	fs.SetOutput(errOut)
	user := fs.String("user", "", "the user identifier (required)")
	reason := fs.String("reason", "", "why (kept in the tombstone)")
	natsURL := fs.String("nats-url", envOr(getenv, "NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("--user is required")
	}
	ev, _, err := ingest.Build(&ingest.EraseUser{Identifier: *user, Reason: *reason},
		ingest.Settings{MultiTenant: true, Source: "/engram/memctl", Actor: "memctl"})
	if err != nil {
		return err
	}
	nc, js, err := connectJS(*natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	// As the ingestor erases: the data keys destroyed first (every copy of the user's sealed
	// events unreadable at once), then the tombstone and the purge, then the keys again (one a
	// racing write made meanwhile).
	store := keys.NewKV(js)
	if err := store.Destroy(ctx, *user); err != nil {
		return fmt.Errorf("destroying the user's data keys failed (run erase again): %w", err)
	}
	st, err := stream.NewPublisher(js, 10*time.Second).Publish(ctx, ev)
	if err != nil {
		return err
	}
	if err := stream.PurgeTenant(ctx, js, *user, st.Sequence); err != nil {
		return fmt.Errorf("tombstone stored at sequence %d, but the purge failed (run erase again): %w", st.Sequence, err)
	}
	if err := store.Destroy(ctx, *user); err != nil {
		return fmt.Errorf("tombstone stored at sequence %d, but destroying the user's data keys failed (run erase again): %w", st.Sequence, err)
	}
	fmt.Fprintf(out, "erase: tombstone %s stored at sequence %d; the user's data keys are destroyed, their earlier events and dead letters purged; the projector deletes their graph when it applies the tombstone\n", ev.ID, st.Sequence)
	return nil
}
