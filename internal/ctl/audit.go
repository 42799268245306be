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
	"github.com/engram-memory/engram/internal/stream"
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
	keyFile := fs.String("signing-key-file", getenv("INGEST_SIGNING_KEY_FILE"), "the ingestors' key file: verify their vouches (VOUCH ingestor or claimed; without it unchecked)")
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
	var entries []audit.Entry
	if *keyFile != "" {
		keys, kerr := stream.LoadKeys(*keyFile)
		if kerr != nil {
			return fmt.Errorf("--signing-key-file: %w", kerr)
		}
		entries, err = audit.ReadVerified(ctx, js, keys, *user, kinds...)
	} else {
		entries, err = audit.Read(ctx, js, *user, kinds...)
	}
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
	// VOUCH says whether SOURCE and ACTOR are the ingestor's word (ingestor) or only what the
	// publisher claimed (claimed; unchecked without the ingestors' keys).
	fmt.Fprintln(tw, "SEQ\tRECORDED\tTIME\tKIND\tSOURCE\tACTOR\tVOUCH\tDATA")
	for _, e := range entries {
		data, _ := json.Marshal(e.Data)
		if e.Error != "" {
			data = []byte("undecodable: " + e.Error)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Sequence, e.Recorded.Format(time.RFC3339Nano),
			e.Time.Format(time.RFC3339Nano), e.Kind, e.Source, e.Actor, e.Vouch, data)
	}
	if len(entries) == 0 {
		fmt.Fprintln(tw, "(no events)")
	}
	return tw.Flush()
}
