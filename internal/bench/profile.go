package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/query"
	"github.com/engram-memory/engram/internal/stream"
)

// The services do not expose net/http/pprof, so where a target is missed the driver runs the
// same code in its own process and takes a CPU profile of that: the ingest handler on a
// loopback listener (the driver's HTTP client and the embedded NATS server, when the driver
// runs it, are in the same profile, which shows the whole path on this machine's CPUs).

// profileDuration bounds a profiling run.
const profileDuration = 10 * time.Second

// missedIn reports whether a row of scenario missed its target.
func (r *runner) missedIn(scenario string) bool {
	for _, res := range r.report.Results {
		if res.Scenario == scenario && res.Status == StatusMissed {
			return true
		}
	}
	return false
}

// profileIngest profiles the ingest handler in-process under the load of the highest
// concurrency level (single commands, or batches of BatchSize), when a row of scenario missed
// its target.
func (r *runner) profileIngest(ctx context.Context, scenario string, batch bool) error {
	if !r.missedIn(scenario) {
		return nil
	}
	cfg := ingest.Config{MaxBatch: ingest.DefaultMaxBatch, MaxBodyBytes: ingest.DefaultMaxBodyBytes, Source: ingest.DefaultSource,
		MaxOpenBatches: ingest.DefaultMaxOpenBatches}
	cfg.Common.MultiTenant = true
	h, err := ingest.NewHandler(stream.NewPublisher(r.stack.JS, 5*time.Second), cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	c := slices.Max(r.cfg.Concurrency)
	w := &writer{base: "http://" + ln.Addr().String(), client: httpClient(c)}
	group := groupIngestHTTP
	if batch {
		group = groupIngestBatch
	}
	src := newEventSource(r.tenants, group, ingestPool, &r.written)
	d := min(r.cfg.Duration, profileDuration)
	what := fmt.Sprintf("ingest handler in the driver's process, c=%d", c)
	if batch {
		what += fmt.Sprintf(", batches of %d", r.cfg.BatchSize)
	}
	defer func() { _ = r.purge(context.Background(), group) }()
	return r.cpuProfile(ctx, scenario, what, func(ctx context.Context) {
		closedLoop(ctx, c, 0, d, func(ctx context.Context) (int, error) {
			if batch {
				cmds := make([]ingest.Command, r.cfg.BatchSize)
				for i := range cmds {
					cmd, err := Command(src.Next())
					if err != nil {
						return 0, err
					}
					cmds[i] = cmd
				}
				_, err := w.batch(ctx, cmds)
				return len(cmds), err
			}
			cmd, err := Command(src.Next())
			if err != nil {
				return 0, err
			}
			_, err = w.send(ctx, cmd)
			return 1, err
		})
	})
}

// cpuProfile records a CPU profile of the driver's process while load runs, and adds its top
// functions to the report.
func (r *runner) cpuProfile(ctx context.Context, scenario, process string, load func(context.Context)) error {
	dir := r.cfg.ProfileDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "engram-bench-profiles")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	file := filepath.Join(dir, fmt.Sprintf("%s-%s.pprof", scenario, r.stack.RunID))
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return err
	}
	load(ctx)
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return err
	}
	top, err := pprofTop(ctx, file, 25)
	if err != nil {
		return err
	}
	r.report.Profiles = append(r.report.Profiles, Profile{Scenario: scenario, Process: process, File: file, Top: top})
	return nil
}

// pprofTop runs `go tool pprof -top` on a profile and returns its table of functions by
// cumulative time.
func pprofTop(ctx context.Context, file string, n int) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-cum", fmt.Sprintf("-nodecount=%d", n), file)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("go tool pprof: %w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("go tool pprof: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	// Keep the header lines that say how much was sampled and the table.
	var keep []string
	for _, l := range lines {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return keep, nil
}

// profileReads profiles the query handler in-process on the seeded graph, under the read
// variant with the worst p99, when a reads row missed its target.
func (r *runner) profileReads(ctx context.Context, v readVariant, users int) error {
	reader, err := query.NewReader(r.stack.Neo4j, r.stack.Neo4jDB, query.WithCheckpointGroup(r.stack.ProjectorGroup),
		query.WithPartitionLog(query.NewStreamLog(r.stack.JS)))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	query.NewHandler(reader, 5*time.Second, query.DefaultMaxLimit, slog.New(slog.DiscardHandler), nil).Register(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	client := httpClient(r.cfg.ReadWorkers)
	base := "http://" + ln.Addr().String()
	d := min(r.cfg.Duration, profileDuration)
	what := fmt.Sprintf("query handler in the driver's process, GetPreferencesFor %s, workers=%d (Neo4j's own time is in its JVM, not here)", v.name, r.cfg.ReadWorkers)
	return r.cpuProfile(ctx, ScenarioReads, what, func(ctx context.Context) {
		closedLoop(ctx, r.cfg.ReadWorkers, 0, d, func(ctx context.Context) (int, error) {
			return 1, get(ctx, client, readURL(base, r.tenants, users, v))
		})
	})
}
