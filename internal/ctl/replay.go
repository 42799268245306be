package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/replay"
)

func init() {
	register("replay", "rebuild the graph from the stream (whole, or one tenant with --user)", runReplay)
	register("verify", "replay into a scratch Neo4j and compare its fingerprint with the live graph", runVerify)
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type neo4jFlags struct{ uri, user, password, database string }

func (n *neo4jFlags) bind(fs *flag.FlagSet, getenv func(string) string, prefix, envPrefix string) {
	fs.StringVar(&n.uri, prefix+"uri", envOr(getenv, envPrefix+"URI", "bolt://127.0.0.1:7687"), "Neo4j Bolt URI")
	fs.StringVar(&n.user, prefix+"user", envOr(getenv, envPrefix+"USER", "neo4j"), "Neo4j user")
	fs.StringVar(&n.password, prefix+"password", envOr(getenv, envPrefix+"PASSWORD", "engram-dev-password"), "Neo4j password")
	fs.StringVar(&n.database, prefix+"database", getenv(envPrefix+"DATABASE"), "Neo4j database (empty: default)")
}

func (n *neo4jFlags) open(ctx context.Context) (neo4j.DriverWithContext, error) {
	return graph.Open(ctx, graph.Config{URI: n.uri, User: n.user, Password: n.password, Database: n.database})
}

func runReplay(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var n neo4jFlags
	n.bind(fs, getenv, "neo4j-", "NEO4J_")
	natsURL := fs.String("nats-url", envOr(getenv, "NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	var o replay.Options
	fs.StringVar(&o.User, "user", "", "replay only this user's tenant (deleting its subgraph first)")
	fs.BoolVar(&o.Shared, "shared", false, "replay only the shared tenant")
	fs.BoolVar(&o.Wipe, "wipe", false, "delete the whole graph before a whole-stream replay")
	fs.BoolVar(&o.Force, "force", false, "replay even while a projector of the live group is running")
	fs.StringVar(&o.LiveGroup, "projector-group", envOr(getenv, "PROJECTOR_GROUP", "projector"), "live projector group")
	fs.IntVar(&o.BatchSize, "batch-size", replay.DefaultBatchSize, "events per transaction")
	fs.IntVar(&o.Writers, "writers", replay.DefaultWriters, "transactions at once (the stream's partitions are replayed in parallel)")
	fs.IntVar(&o.MemoryNodes, "memory-nodes", replay.DefaultMemoryNodes, "nodes per partition a whole-stream replay remembers instead of looking them up (-1: none)")
	multi := fs.String("multi-tenant", envOr(getenv, "MULTI_TENANT", "true"), "the multi-tenant guardrail (true/false)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.BatchSize <= 0 || o.BatchSize > 10000 {
		return fmt.Errorf("--batch-size %d: want 1 to 10000", o.BatchSize)
	}
	if err := checkReplayFlags(o); err != nil {
		return err
	}
	if o.User != "" && o.Shared {
		return errors.New("--user and --shared exclude each other")
	}
	if o.Wipe && (o.User != "" || o.Shared) {
		return errors.New("--wipe is for a whole-stream replay; a tenant replay deletes only that tenant's subgraph")
	}
	o.MultiTenant = *multi != "false"
	o.Database, o.Progress = n.database, errOut
	d, err := n.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close(context.Background())
	if err := graph.ApplySchema(ctx, d, n.database); err != nil {
		return err
	}
	nc, js, err := connectJS(*natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	defer replay.BulkGC()()
	st, err := replay.Run(ctx, d, js, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "replay: applied %d events, skipped %d (dead letters, erased; %d shredded), stream sequence %d..%d, %s (%.0f events/s)%s\n",
		st.Applied, st.Skipped, st.Shredded, st.FirstSeq, st.LastSeq, st.Duration.Round(1e6), st.EventsPer, map[bool]string{true: ", resumed", false: ""}[st.Resumed])
	return nil
}

// checkReplayFlags refuses nonsense --writers and --memory-nodes.
func checkReplayFlags(o replay.Options) error {
	if o.Writers <= 0 || o.Writers > 64 {
		return fmt.Errorf("--writers %d: want 1 to 64", o.Writers)
	}
	if o.MemoryNodes == 0 {
		return errors.New("--memory-nodes 0: want a positive number, or -1 for none")
	}
	return nil
}

func runVerify(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var live, scratch neo4jFlags
	live.bind(fs, getenv, "neo4j-", "NEO4J_")
	scratch.bind(fs, getenv, "scratch-", "SCRATCH_NEO4J_")
	natsURL := fs.String("nats-url", envOr(getenv, "NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	var users stringList
	fs.Var(&users, "user", "compare only this user's tenant (repeatable); default: every owner")
	maxDiff := fs.Int("max-diff", 20, "differences to print")
	ro := replay.Options{Progress: errOut}
	fs.IntVar(&ro.BatchSize, "batch-size", replay.DefaultBatchSize, "events per transaction of the replay")
	fs.IntVar(&ro.Writers, "writers", replay.DefaultWriters, "transactions at once of the replay")
	fs.IntVar(&ro.MemoryNodes, "memory-nodes", replay.DefaultMemoryNodes, "nodes per partition the replay remembers instead of looking them up (-1: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if ro.BatchSize <= 0 || ro.BatchSize > 10000 {
		return fmt.Errorf("--batch-size %d: want 1 to 10000", ro.BatchSize)
	}
	if err := checkReplayFlags(ro); err != nil {
		return err
	}
	if scratch.uri == "" || scratch.uri == live.uri && scratch.database == live.database {
		return fmt.Errorf("--scratch-uri %q: a second, disposable Neo4j is required (it is wiped); e.g. NEO4J_BOLT_PORT=7688 NEO4J_DATA_DIR=var/neo4j-scratch NEO4J_INSTANCE=scratch deploy/neo4j/neo4j.sh start", scratch.uri)
	}
	ld, err := live.open(ctx)
	if err != nil {
		return err
	}
	defer ld.Close(context.Background())
	sd, err := scratch.open(ctx)
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	defer sd.Close(context.Background())
	nc, js, err := connectJS(*natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	defer replay.BulkGC()()
	v, err := replay.Verify(ctx, ld, sd, js, replay.VerifyOptions{Users: users, MultiTenant: envOr(getenv, "MULTI_TENANT", "true") != "false",
		MaxDiff: *maxDiff, Progress: ro})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "live:     %s\nreplayed: %s\n", v.Live, v.Replayed)
	if v.Equal {
		fmt.Fprintln(out, "verify: equal")
		return nil
	}
	fmt.Fprintf(out, "verify: DIFFERENT; first differences:\n%s\n", v.Diff)
	return errors.New("the live graph differs from a replay of the stream")
}
