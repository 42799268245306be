package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/engram-memory/engram/internal/bench"
)

func init() {
	register("bench", "run the load benchmarks against a running stack or one started here (make bench)", runBench)
}

func runBench(ctx context.Context, args []string, out, errOut io.Writer, getenv func(string) string) error {
	c, err := benchConfig(args, errOut, getenv)
	if err != nil {
		return err
	}
	if c.Render != "" {
		// Re-render the table and the markdown of a recorded run: nothing runs.
		rep, err := bench.ReadReport(c.Render)
		if err != nil {
			return err
		}
		if err := rep.WriteTable(out); err != nil {
			return err
		}
		if c.Out != "" {
			return rep.WriteMarkdown(c.Out)
		}
		return nil
	}
	// Every way out goes through the driver's cleanup: a closed terminal (SIGHUP) cancels the run
	// like Ctrl-C, and a closed output pipe (| head) turns writes into errors instead of killing
	// the process before it stopped its servers and removed its data.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: benchLogLevel(getenv)})).With("component", "bench")
	rep, err := bench.Run(ctx, c, out, log)
	if err != nil {
		return err
	}
	if missed := rep.Missed(); len(missed) > 0 {
		// Targets are goals, not assertions: report them, exit 0.
		fmt.Fprintf(errOut, "bench: %d target(s) missed (see the table)\n", len(missed))
	}
	return nil
}

// benchConfig parses memctl bench's flags over the defaults of `make bench`; the stack's
// endpoints come from the environment.
func benchConfig(args []string, errOut io.Writer, getenv func(string) string) (bench.Config, error) {
	c := bench.DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	scen := fs.String("scenarios", "all", "comma-separated scenarios to run, or all: "+strings.Join(bench.Scenarios, ","))
	fs.DurationVar(&c.Duration, "duration", c.Duration, "length of each timed step (one concurrency level, one read variant)")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "unmeasured load before each timed step")
	fs.IntVar(&c.Events, "events", c.Events, "events projected in the projection scenario (at least 100000 for the issue's figure)")
	conc := fs.String("concurrency", joinInts(c.Concurrency), "comma-separated concurrency levels of the ingest scenarios")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "commands per request of the batch endpoint")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "offered events/s of the freshness scenario")
	fs.IntVar(&c.Users, "users", c.Users, "users seeded for the reads scenario")
	fs.IntVar(&c.PrefsPerUser, "prefs-per-user", c.PrefsPerUser, "preferences per seeded user")
	fs.IntVar(&c.ReadWorkers, "read-workers", c.ReadWorkers, "concurrent readers of the reads scenario")
	fs.IntVar(&c.UnwindBatch, "unwind-batch", c.UnwindBatch, "rows per UNWIND batch of the raw Neo4j baseline and of seeding")
	fs.IntVar(&c.ReplayEvents, "replay-events", c.ReplayEvents, "events to replay (0: those the projection scenario wrote)")
	fs.IntVar(&c.FailoverKills, "failover-kills", c.FailoverKills, "SIGKILLs of the projector holding a partition, a second projector running (failover scenario)")
	fs.IntVar(&c.FailoverRestarts, "failover-restarts", c.FailoverRestarts, "SIGKILLs of a single projector restarted at once (failover scenario; 0: none)")
	fs.StringVar(&c.Out, "out", "", "markdown file whose generated section to (re)write, e.g. docs/BENCHMARKS.md")
	fs.StringVar(&c.JSON, "json", "", "JSON file to write the results to")
	fs.StringVar(&c.Render, "render", "", "render the table (and -out) from the JSON file of an earlier run instead of running")
	fs.BoolVar(&c.Profile, "profile", true, "take CPU profiles where a target is missed")
	fs.StringVar(&c.ProfileDir, "profile-dir", "", "where CPU profiles go (default: var/bench/profiles under the repository, else a temp dir)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q", bench.ErrInvalidConfig, fs.Args())
	}
	c.Scenarios = bench.ParseScenarios(*scen)
	levels, err := bench.ParseInts("concurrency", *conc)
	if err != nil {
		return c, err
	}
	c.Concurrency = levels
	c.Endpoints = bench.Endpoints{
		NATSURL:      getenv("NATS_URL"),
		IngestorURL:  getenv("INGESTOR_URL"),
		QueryURL:     getenv("QUERY_URL"),
		ProjectorURL: getenv("PROJECTOR_URL"),
	}
	if c.Endpoints.ProjectorURL != "" {
		c.Endpoints.ProjectorGroup = envOr(getenv, "PROJECTOR_GROUP", "projector")
	}
	c.Endpoints.Neo4j.URI = envOr(getenv, "NEO4J_URI", "bolt://127.0.0.1:7687")
	c.Endpoints.Neo4j.User = envOr(getenv, "NEO4J_USER", "neo4j")
	c.Endpoints.Neo4j.Password = envOr(getenv, "NEO4J_PASSWORD", "engram-dev-password")
	c.Endpoints.Neo4j.Database = getenv("NEO4J_DATABASE")
	c.RepoDir = findRepo()
	if c.ProfileDir == "" && c.RepoDir != "" {
		c.ProfileDir = filepath.Join(c.RepoDir, "var", "bench", "profiles")
	}
	if c.RepoDir != "" {
		c.LogDir = filepath.Join(c.RepoDir, "var", "bench", "logs")
	}
	c.Command = "memctl bench " + strings.Join(args, " ")
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

// findRepo returns the module root above the working directory, "" when not in the repository.
func findRepo() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module github.com/engram-memory/engram")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// benchLogLevel is LOG_LEVEL (debug shows every failed probe and request), info by default.
func benchLogLevel(getenv func(string) string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(getenv("LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

func init() {
	register("bench-publish", "(run by memctl bench) raw JetStream publishes from a process of their own, the ingest baseline", runBenchPublish)
}

// runBenchPublish is the child of memctl bench's raw publish baseline: it reads the spec the
// driver wrote, publishes, and prints the result as JSON.
func runBenchPublish(ctx context.Context, args []string, out, errOut io.Writer, _ func(string) string) error {
	fs := flag.NewFlagSet("bench-publish", flag.ContinueOnError)
	fs.SetOutput(errOut)
	specFile := fs.String("spec", "", "JSON file of the publishes to make (written by memctl bench)")
	relay := fs.String("relay", "", "serve the HTTP relay baseline on this address instead (every POST's body published as it is) until stopped")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *specFile == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	b, err := os.ReadFile(*specFile)
	if err != nil {
		return err
	}
	var spec bench.RawPublishSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("spec %s: %w", *specFile, err)
	}
	if *relay != "" {
		return bench.RunRelay(ctx, spec, *relay)
	}
	res, err := bench.RunRawPublish(ctx, spec)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(res)
}
