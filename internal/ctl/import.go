package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/migrate"
	"github.com/engram-memory/engram/internal/stream"
)

func init() {
	register("import", "publish a neo4j-agent-memory graph into the log as Engram events (--dry-run first)", runImport)
}

func runImport(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var from neo4jFlags
	fs.StringVar(&from.uri, "from", getenv("IMPORT_FROM_URI"), "the library's Neo4j, e.g. bolt://host:7687 (required; read only)")
	fs.StringVar(&from.user, "from-user", envOr(getenv, "IMPORT_FROM_USER", "neo4j"), "user of the library's Neo4j")
	fs.StringVar(&from.password, "from-password", getenv("IMPORT_FROM_PASSWORD"), "password of the library's Neo4j (or IMPORT_FROM_PASSWORD)")
	fs.StringVar(&from.database, "from-database", getenv("IMPORT_FROM_DATABASE"), "database of the library's graph (empty: the server's default)")
	var live neo4jFlags
	live.bind(fs, getenv, "neo4j-", "NEO4J_")
	natsURL := fs.String("nats-url", envOr(getenv, "NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	var users stringList
	fs.Var(&users, "user", "import only this user (repeatable); default: every user")
	dry := fs.Bool("dry-run", false, "count what would be imported and report what cannot be, publish nothing")
	verbose := fs.Bool("v", false, "counts per user, and every issue's ids")
	batch := fs.Int("batch-size", migrate.DefaultBatchSize, "events per atomic batch")
	timeout := fs.Duration("publish-timeout", 30*time.Second, "how long one batch may wait for JetStream")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if from.uri == "" {
		return errors.New("--from is required: the Bolt URI of the neo4j-agent-memory database to import")
	}
	if *batch <= 0 || *batch > stream.MaxAtomicBatch {
		return fmt.Errorf("--batch-size %d: want 1 to %d", *batch, stream.MaxAtomicBatch)
	}
	for _, u := range users {
		if err := events.ValidateIdentifier(u); err != nil {
			return fmt.Errorf("--user %q: %w", u, err)
		}
	}
	sd, err := from.open(ctx)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer sd.Close(context.Background())
	ld, err := graph.Open(ctx, graph.Config{URI: live.uri, User: live.user, Password: live.password, Database: live.database})
	if err != nil {
		return fmt.Errorf("Engram's Neo4j (needed to make sure the source is not it): %w", err)
	}
	defer ld.Close(context.Background())
	src := migrate.NewSource(sd, from.database)
	if err := src.CheckNotEngram(ctx, ld, live.database); err != nil {
		return err
	}
	o := migrate.Options{Users: users, DryRun: *dry, BatchSize: *batch}
	if !*dry {
		o.Progress = errOut
	}
	var res *migrate.Result
	if *dry {
		res, err = migrate.Run(ctx, src, nil, nil, o)
	} else {
		nc, js, cerr := connectJS(*natsURL)
		if cerr != nil {
			return cerr
		}
		defer nc.Close()
		res, err = migrate.Run(ctx, src, js, stream.NewPublisher(js, *timeout), o)
	}
	if res != nil {
		printImport(out, res, *dry, *verbose)
	}
	if err != nil {
		return fmt.Errorf("%w (run the same command again: it publishes only what the log does not hold yet)", err)
	}
	return nil
}

func printImport(out io.Writer, res *migrate.Result, dry, verbose bool) {
	head := "import"
	if dry {
		head = "import --dry-run (nothing published)"
	}
	fmt.Fprintf(out, "%s: source %s, %d users\n", head, res.SourceID, len(res.Users))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	planned := res.Planned()
	fmt.Fprintln(tw, "KIND\tEVENTS\t")
	for _, k := range events.Kinds {
		if n := planned[k]; n > 0 {
			fmt.Fprintf(tw, "%s\t%d\t\n", k, n)
		}
	}
	_ = tw.Flush()
	if verbose {
		fmt.Fprintln(out, "per user:")
		for _, u := range res.Users {
			fmt.Fprintf(out, "  %s:", u.User)
			for _, k := range slices.Sorted(maps.Keys(u.Planned)) {
				fmt.Fprintf(out, " %s=%d", k, u.Planned[k])
			}
			if !dry {
				fmt.Fprintf(out, " (published %d, already in the log %d)", u.Published, u.Logged)
			}
			fmt.Fprintln(out)
		}
	}
	if !dry {
		p, l := res.Published()
		fmt.Fprintf(out, "published %d events, %d already in the log (skipped), in %s\n", p, l, res.Duration.Round(time.Millisecond))
	}
	if len(res.Issues) == 0 {
		fmt.Fprintln(out, "not imported: nothing")
		return
	}
	fmt.Fprintf(out, "not imported as the library holds it (%d; see docs/migration.md):\n", len(res.Issues))
	limit := 10
	if verbose {
		limit = 0
	}
	migrate.WriteIssues(out, res.Issues, limit)
}
