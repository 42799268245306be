package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
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
	group := fs.String("projector-group", envOr(getenv, "PROJECTOR_GROUP", "projector"), "the live projector group, whose dead letters and checkpoint give each event's FATE")
	noGraph := fs.Bool("no-graph", false, "do not read the projector's checkpoint from Neo4j: FATE is dead_lettered, erased or stored, never applied or pending")
	var n neo4jFlags
	n.bind(fs, getenv, "neo4j-", "NEO4J_")
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
	var cp audit.Checkpoint
	if !*noGraph {
		if cp, err = readCheckpoint(ctx, n, *group, *user); err != nil {
			return fmt.Errorf("%w (--no-graph audits from the log alone)", err)
		}
	}
	if err := audit.MarkFates(ctx, js, *user, *group, cp, entries); err != nil {
		return err
	}
	return printAudit(out, entries, *asJSON)
}

// readCheckpoint reads how far group's projector has come in the user's partition.
func readCheckpoint(ctx context.Context, n neo4jFlags, group, user string) (audit.Checkpoint, error) {
	tok, err := events.TenantToken(user)
	if err != nil {
		return audit.Checkpoint{}, err
	}
	d, err := n.open(ctx)
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("read the projector's checkpoint: %w", err)
	}
	defer d.Close(context.WithoutCancel(ctx))
	name := group + "-p" + strconv.Itoa(events.Partition(tok, natsdeploy.Partitions))
	res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (c:EngramCheckpoint {name: $name}) RETURN c.stream_seq AS seq",
		map[string]any{"name": name}, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(n.database),
		neo4j.ExecuteQueryWithReadersRouting())
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("read the projector's checkpoint %s: %w", name, err)
	}
	if len(res.Records) == 0 {
		return audit.Checkpoint{Known: true}, nil // the group has projected nothing there yet
	}
	seq, _ := res.Records[0].Values[0].(int64)
	return audit.Checkpoint{Sequence: uint64(max(seq, 0)), Known: true}, nil
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
	// FATE says what became of the event: applied, pending, dead_lettered:<reason> (it took no
	// effect), erased, or stored (--no-graph).
	fmt.Fprintln(tw, "SEQ\tRECORDED\tTIME\tKIND\tSOURCE\tACTOR\tVOUCH\tFATE\tDATA")
	for _, e := range entries {
		data, _ := json.Marshal(e.Data)
		if e.Error != "" {
			data = []byte("undecodable: " + e.Error)
		}
		fate := e.Fate
		if e.Reason != "" {
			fate += ":" + e.Reason
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Sequence, e.Recorded.Format(time.RFC3339Nano),
			e.Time.Format(time.RFC3339Nano), e.Kind, e.Source, e.Actor, e.Vouch, fate, data)
	}
	if len(entries) == 0 {
		fmt.Fprintln(tw, "(no events)")
	}
	return tw.Flush()
}
