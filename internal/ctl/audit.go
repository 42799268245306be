package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/engram-memory/engram/internal/audit"
	"github.com/engram-memory/engram/internal/events"
)

func init() {
	register("audit", "print a user's preference history from the log itself (--all: every event)", runAudit)
}

func runAudit(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(errOut)
	user := fs.String("user", "", "the user identifier (required)")
	natsURL := fs.String("nats-url", envOr(getenv, "NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	all := fs.Bool("all", false, "every event of the user, not only preferences")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := fs.Parse(args); err != nil {
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
	kinds := audit.PreferenceKinds
	if *all {
		kinds = nil
	}
	entries, err := audit.Read(ctx, js, *user, kinds...)
	if err != nil {
		return err
	}
	return printAudit(out, entries, *asJSON)
}

func printAudit(out io.Writer, entries []audit.Entry, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tRECORDED\tTIME\tKIND\tSOURCE\tACTOR\tDATA")
	for _, e := range entries {
		data, _ := json.Marshal(e.Data)
		if e.Error != "" {
			data = []byte("undecodable: " + e.Error)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Sequence, e.Recorded.Format(time.RFC3339Nano),
			e.Time.Format(time.RFC3339Nano), e.Kind, e.Source, e.Actor, data)
	}
	if len(entries) == 0 {
		fmt.Fprintln(tw, "(no events)")
	}
	return tw.Flush()
}
