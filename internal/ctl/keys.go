package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
)

func init() {
	register("keys", "a user's data keys (crypto-shredding): show | rotate --user U", runKeys)
}

// runKeys shows a user's data keys (the set id and its versions, never a key) or rotates them:
// a new version seals the user's new events, the older ones still open theirs.
func runKeys(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "show" && args[0] != "rotate" {
		fmt.Fprintln(errOut, "usage: memctl keys show --user U | rotate --user U")
		return errUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(errOut)
	user := fs.String("user", "", "the user identifier (required)")
	natsURL := fs.String("nats-url", envOr(getenv, "NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *user == "" {
		return errors.New("--user is required")
	}
	if err := events.ValidateIdentifier(*user); err != nil {
		return fmt.Errorf("--user: %w", err)
	}
	nc, js, err := connectJS(*natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	store := keys.NewKV(js)
	var set keys.Set
	if sub == "rotate" {
		set, err = store.Rotate(ctx, *user)
	} else {
		set, err = store.Get(ctx, *user)
	}
	if errors.Is(err, keys.ErrNotFound) {
		return errors.New("the user has no data keys: never written for through the ingestor, or erased")
	}
	if err != nil {
		return err
	}
	v, _ := set.Current()
	fmt.Fprintf(out, "keys: set %s, %d version(s), new events sealed with %s\n", set.ID, len(set.Keys), events.KeyRef{ID: set.ID, Version: v})
	return nil
}
