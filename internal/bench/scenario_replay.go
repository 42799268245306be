package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/procstat"
	"github.com/engram-memory/engram/internal/replay"
	"github.com/engram-memory/engram/internal/stream"
)

func init() {
	scenarios[ScenarioReplay] = replayScenario
}

// groupReplay is the tenant group of the events the replay scenario adds to the stream.
const groupReplay = "rl"

// replayScenario: rebuilding the graph from the stream with internal/replay (memctl replay).
// A whole-stream replay needs an empty database and Community Neo4j has one user database, so
// the driver starts a scratch Neo4j of its own (the same launcher as make neo4j-start, on a
// free port, data in the run's temporary directory), publishes ReplayEvents events of the mix
// (the stream then holds them and whatever earlier scenarios left), replays the whole stream
// into the scratch database with replay.Run's defaults (memctl replay's) and stops it. The
// shared database is never touched.
func replayScenario(ctx context.Context, r *runner) error {
	if r.cfg.Endpoints.NATSURL != "" && !r.cfg.Endpoints.NATSPrivate {
		return fmt.Errorf("%w: the stream belongs to a running stack: replaying it whole would read every tenant's events", ErrUnavailable)
	}
	if r.cfg.RepoDir == "" {
		return fmt.Errorf("%w: the scratch Neo4j is started from the repository (deploy/neo4j)", ErrUnavailable)
	}
	// The live projector must not run: replay refuses while one pulls (and it would compete).
	r.quiesceProjector(ctx)
	n := r.cfg.ReplayEvents
	if n == 0 {
		n = r.cfg.Events
	}
	evs := Mix(r.tenants, groupReplay, n, time.Now().UTC().Add(-4*time.Hour))
	r.written.used(groupReplay, MixUsers(n))
	if err := r.publishAll(ctx, evs); err != nil {
		return err
	}
	scratch, scratchPID, stop, err := r.scratchNeo4j(ctx)
	if err != nil {
		return err
	}
	defer stop()
	r.log.Info("replaying the stream into the scratch neo4j")
	before, err := consumerNames(ctx, r.stack.JS)
	if err != nil {
		return err
	}
	// replay.Run reads through an ordered (ephemeral) consumer that the server would remove
	// only after minutes of inactivity; the run removes it at once.
	defer func() {
		after, _ := consumerNames(context.Background(), r.stack.JS)
		for name := range after {
			if !before[name] {
				_ = r.stack.JS.DeleteConsumer(context.Background(), stream.MemoryStream, name)
			}
		}
	}()
	// As memctl replay and memctl verify do.
	restoreGC := replay.BulkGC()
	cpu0, self0, busy0 := procstat.CPU(scratchPID), procstat.CPU(os.Getpid()), procstat.MachineBusy()
	st, err := replay.Run(ctx, scratch, r.stack.JS, replay.Options{
		Group: r.tenants.OwnerPrefix() + "replay", LiveGroup: r.stack.ProjectorGroup, Force: true,
		MultiTenant: true,
	})
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	neoCPU, selfCPU, busy := procstat.CPU(scratchPID)-cpu0, procstat.CPU(os.Getpid())-self0, procstat.MachineBusy()-busy0
	restoreGC()
	res := Result{Scenario: ScenarioReplay, Variant: fmt.Sprintf("%d events", st.Applied+st.Skipped), Metric: "events/s",
		Value: st.EventsPer, Count: st.Applied, Errors: st.Skipped,
		Target: fmt.Sprintf("≥ %.0f events/s", targetReplayRate)}
	res.Status = met(st.EventsPer >= targetReplayRate)
	res = withNote(res, fmt.Sprintf("replay.Run (memctl replay) of the whole stream, the 8 partitions in parallel, batches of %d, %d transactions at a time, GOGC %d unless set (replay.BulkGC, as memctl replay), into an empty scratch Neo4j started by the driver (heap %s, page cache %s); %d of them the mix added here, the rest left by earlier scenarios; %.1f s",
		replay.DefaultBatchSize, replay.DefaultWriters, replay.BulkGCPercent, scratchHeap, scratchPageCache, n, st.Duration.Seconds()))
	if events := float64(max(1, st.Applied+st.Skipped)); neoCPU > 0 {
		res = withNote(res, fmt.Sprintf("CPU during the replay: the scratch Neo4j %.0f s (%.0f µs per event, its JIT compiler's warm-up included), the driver (reading, decoding, deciding; NATS in-process when the driver started it) %.0f s (%.0f µs per event), other processes %.0f s, of %.0f s the machine's %d cores had",
			neoCPU, neoCPU*1e6/events, selfCPU, selfCPU*1e6/events, max(0, busy-neoCPU-selfCPU), st.Duration.Seconds()*float64(runtime.NumCPU()), runtime.NumCPU()))
	}
	if n < 1_000_000 {
		res = withNote(res, fmt.Sprintf("scaled down from the issue's 1M events to %d (-replay-events) to fit the default run", st.Applied+st.Skipped))
	}
	r.report.Add(res)
	r.log.Info("measured", "row", res.Name(), "events_per_s", int(res.Value))
	return nil
}

// publishAll publishes events asynchronously and waits for every acknowledgement.
func (r *runner) publishAll(ctx context.Context, evs []*events.Event) error {
	var mu sync.Mutex
	var pubErrs []error
	js, err := jetstream.New(r.stack.NC, jetstream.WithPublishAsyncMaxPending(AsyncWindow),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			mu.Lock()
			pubErrs = append(pubErrs, err)
			mu.Unlock()
		}))
	if err != nil {
		return err
	}
	errs := func() error {
		mu.Lock()
		defer mu.Unlock()
		return errors.Join(pubErrs...)
	}
	for _, e := range evs {
		m, err := events.Encode(e)
		if err != nil {
			return err
		}
		if _, err := js.PublishMsgAsync(m, jetstream.WithExpectStream(stream.MemoryStream), jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	return errs()
}

// The scratch Neo4j's memory: the shared one's heap, and a page cache that holds the store
// and indexes of a 1M-event graph (about 1 GB) instead of the shared one's 512 MB; the
// machines these runs are made on have the memory.
const (
	scratchHeap      = "2g"
	scratchPageCache = "1g"
)

// scratchNeo4j starts a Neo4j of the run's own, empty, on a free port, and returns a driver,
// its process id and the function that stops it and closes the driver.
func (r *runner) scratchNeo4j(ctx context.Context) (neo4j.DriverWithContext, int, func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, nil, err
	}
	target := filepath.Join(r.cfg.RepoDir, "deploy", "neo4j", "target")
	jar := filepath.Join(target, "engram-neo4j-1.0.0.jar")
	if _, err := os.Stat(jar); err != nil {
		return nil, 0, nil, fmt.Errorf("%w: %s is not built (make neo4j-start builds it)", ErrUnavailable, jar)
	}
	dir := filepath.Join(r.stack.Dir, "neo4j-scratch")
	logf, err := os.Create(filepath.Join(r.stack.Dir, "log", "neo4j-scratch.log"))
	if err != nil {
		return nil, 0, nil, err
	}
	password := "bench-" + r.stack.RunID
	cmd := exec.Command("java", "-Xms512m", "-Xmx"+scratchHeap, "-XX:+UseG1GC", "-cp", jar+string(os.PathListSeparator)+filepath.Join(target, "lib", "*"), "dev.engram.neo4j.Launcher")
	cmd.Env = append(os.Environ(), "NEO4J_BOLT_HOST=127.0.0.1", fmt.Sprintf("NEO4J_BOLT_PORT=%d", port),
		"NEO4J_DATA_DIR="+dir, "NEO4J_USER=neo4j", "NEO4J_PASSWORD="+password, "NEO4J_PAGECACHE="+scratchPageCache)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, 0, nil, fmt.Errorf("start scratch neo4j: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	kill := func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	// Stopped with the stack too, should the scenario not get to it (Ctrl-C).
	r.stack.closers = append(r.stack.closers, func(context.Context) error { kill(); return nil })
	cfg := graph.Config{URI: fmt.Sprintf("bolt://127.0.0.1:%d", port), User: "neo4j", Password: password}
	deadline := time.Now().Add(3 * time.Minute)
	var d neo4j.DriverWithContext
	for {
		select {
		case <-done:
			return nil, 0, nil, fmt.Errorf("scratch neo4j exited; last lines of its log:\n%s", tail(logf.Name(), 20))
		default:
		}
		octx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err = graph.Open(octx, cfg)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			kill()
			return nil, 0, nil, errors.Join(fmt.Errorf("scratch neo4j not ready within 3 minutes"), err, ctx.Err())
		}
		sleepCtx(ctx, time.Second)
	}
	r.log.Info("scratch neo4j ready", "uri", cfg.URI)
	if err := graph.ApplySchema(ctx, d, ""); err != nil {
		_ = d.Close(context.Background())
		kill()
		return nil, 0, nil, err
	}
	return d, cmd.Process.Pid, func() { _ = d.Close(context.Background()); kill() }, nil
}

// consumerNames lists the consumers of the memory stream.
func consumerNames(ctx context.Context, js jetstream.JetStream) (map[string]bool, error) {
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	names := s.ConsumerNames(ctx)
	for n := range names.Name() {
		out[n] = true
	}
	return out, names.Err()
}
