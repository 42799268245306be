package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/bench"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(c *bench.Config)
		wantErr error
		naming  []string // the message names these flags
	}{
		{name: "defaults", mutate: func(*bench.Config) {}},
		{name: "zero duration", mutate: func(c *bench.Config) { c.Duration = 0 }, wantErr: bench.ErrInvalidConfig, naming: []string{"-duration"}},
		{name: "negative duration", mutate: func(c *bench.Config) { c.Duration = -time.Second }, wantErr: bench.ErrInvalidConfig, naming: []string{"-duration"}},
		{name: "negative rate", mutate: func(c *bench.Config) { c.Rate = -5 }, wantErr: bench.ErrInvalidConfig, naming: []string{"-rate", "negative"}},
		{name: "zero rate", mutate: func(c *bench.Config) { c.Rate = 0 }, wantErr: bench.ErrInvalidConfig, naming: []string{"-rate"}},
		{name: "zero events", mutate: func(c *bench.Config) { c.Events = 0 }, wantErr: bench.ErrInvalidConfig, naming: []string{"-events"}},
		{name: "bad concurrency", mutate: func(c *bench.Config) { c.Concurrency = []int{1, 0, -3} }, wantErr: bench.ErrInvalidConfig, naming: []string{"-concurrency 0", "-concurrency -3"}},
		{name: "no concurrency", mutate: func(c *bench.Config) { c.Concurrency = nil }, wantErr: bench.ErrInvalidConfig, naming: []string{"-concurrency"}},
		{name: "unknown scenario", mutate: func(c *bench.Config) { c.Scenarios = []string{"reads", "nope"} }, wantErr: bench.ErrInvalidConfig, naming: []string{`"nope"`}},
		{name: "batch too large", mutate: func(c *bench.Config) { c.BatchSize = 5000 }, wantErr: bench.ErrInvalidConfig, naming: []string{"-batch-size"}},
		{name: "no failover kills", mutate: func(c *bench.Config) { c.FailoverKills, c.FailoverRestarts = 0, -1 }, wantErr: bench.ErrInvalidConfig, naming: []string{"-failover-kills", "-failover-restarts"}},
		{name: "users and prefs", mutate: func(c *bench.Config) { c.Users, c.PrefsPerUser = -1, 0 }, wantErr: bench.ErrInvalidConfig, naming: []string{"-users", "-prefs-per-user"}},
		{name: "service without nats", mutate: func(c *bench.Config) { c.Endpoints.IngestorURL = "http://127.0.0.1:8080" }, wantErr: bench.ErrInvalidConfig, naming: []string{"INGESTOR_URL", "NATS_URL"}},
		{name: "bad service url", mutate: func(c *bench.Config) {
			c.Endpoints.NATSURL, c.Endpoints.QueryURL = "nats://127.0.0.1:4222", "127.0.0.1:8081"
		}, wantErr: bench.ErrInvalidConfig, naming: []string{"QUERY_URL"}},
		{name: "every problem at once", mutate: func(c *bench.Config) { c.Duration, c.Rate, c.Events = 0, -1, -1 },
			wantErr: bench.ErrInvalidConfig, naming: []string{"-duration", "-rate", "-events"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := bench.DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			for _, n := range tt.naming {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error does not name %s: %v", n, err)
				}
			}
		})
	}
}

func TestParseScenarios(t *testing.T) {
	t.Parallel()
	if got := bench.ParseScenarios("all"); !slices.Equal(got, bench.Scenarios) {
		t.Errorf("all = %v", got)
	}
	if got, want := bench.ParseScenarios(" reads,ingest-http,reads,"), []string{"ingest-http", "reads"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v (run order, no duplicates)", got, want)
	}
	if _, err := bench.ParseInts("concurrency", "1,x"); !errors.Is(err, bench.ErrInvalidConfig) {
		t.Errorf("ParseInts error %v", err)
	}
}

// tinyConfig is a run of every scenario small enough for a test: 200 projected events.
func tinyConfig(t *testing.T, natsURL string) bench.Config {
	t.Helper()
	n := testenv.Neo4jSettings()
	c := bench.DefaultConfig()
	c.Duration, c.Warmup = 300*time.Millisecond, 200*time.Millisecond
	c.Events, c.Concurrency, c.BatchSize, c.Rate = 200, []int{1, 2}, 10, 50
	c.Users, c.PrefsPerUser, c.ReadWorkers, c.ReplayEvents = 20, 3, 2, 200
	c.FailoverKills, c.FailoverRestarts = 2, 1
	c.Profile = false
	c.RepoDir = repoRoot(t)
	c.Command = "go test (tiny run)"
	c.Endpoints = bench.Endpoints{NATSURL: natsURL, NATSPrivate: true, Neo4j: graph.Config{URI: n.URI, User: n.User, Password: n.Password}}
	dir := t.TempDir()
	c.Out, c.JSON = filepath.Join(dir, "BENCHMARKS.md"), filepath.Join(dir, "bench.json")
	return c
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestTinyRun runs every scenario against a private embedded JetStream and the local Neo4j,
// and checks that the output has every row, that the run's data are gone afterwards, and that
// no service subprocess outlives the run. It asserts no figure.
func TestTinyRun(t *testing.T) {
	t.Parallel()
	srv, _, js := testenv.NATS(t)
	driver := testenv.Neo4j(t)
	c := tinyConfig(t, srv.ClientURL())
	var out bytes.Buffer
	rep, err := bench.Run(t.Context(), c, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := []string{
		"baseline jetstream sync publish in-process c=1", "baseline jetstream sync publish c=1", "baseline http relay c=1", "ingest-http c=1",
		"baseline jetstream sync publish c=2", "baseline http relay c=2", "ingest-http c=2",
		"baseline jetstream async publish in-flight=4096", "ingest-batch c=1 batch=10", "ingest-batch c=2 batch=10",
		"publish async in-flight=4096",
		"baseline raw neo4j UNWIND batch=500 writers=2", "projection 200 events",
		"freshness offered 50 events/s: writes", "freshness offered 50 events/s: ack→visible",
		"failover two projectors: SIGKILL of the holder → applied (2 kills)", "failover exactly once, in per-tenant order",
		"baseline seed 20 users × 3 preferences",
		"reads GetPreferencesFor active workers=2", "reads GetPreferencesFor applies_to workers=2", "reads GetPreferencesFor as_of workers=2",
		"replay", "durability sync_interval default (2m) c=1", "durability sync_interval always c=2",
		"encryption ingest encryption off c=2", "encryption ingest encryption on c=2",
		"encryption projection encryption off", "encryption projection encryption on",
		"footprint ingestor peak RSS", "footprint projector peak RSS",
	}
	for _, name := range want {
		res, ok := findPrefix(rep, name)
		if !ok {
			t.Errorf("no row %q in the report", name)
			continue
		}
		if res.Status == bench.StatusError || res.Status == bench.StatusNA {
			t.Errorf("row %q: %s: %s", name, res.Status, res.Note)
		}
		if !strings.Contains(out.String(), res.Variant) {
			t.Errorf("row %q not in the printed table", name)
		}
	}
	// The single-command rows compare with publishes from a process of their own (memctl
	// bench-publish), and name the relay's and the in-process publishes' figures beside.
	for _, c := range []string{"1", "2"} {
		res, _ := rep.Find("ingest-http c=" + c)
		if res.Baseline != "baseline jetstream sync publish c="+c || !strings.Contains(res.Note, "the HTTP relay") || !strings.Contains(res.Note, "in-process") {
			t.Errorf("ingest-http c=%s: baseline %q, note %q; want the out-of-process publishes as baseline and the relay and in-process ratios noted", c, res.Baseline, res.Note)
		}
		if base, _ := rep.Find("baseline jetstream sync publish c=" + c); base.Count == 0 || !strings.Contains(base.Note, "memctl bench-publish") {
			t.Errorf("out-of-process baseline c=%s: %+v; want publishes counted by the child process", c, base)
		}
	}
	if res, _ := findPrefix(rep, "replay"); res.Count < 200 {
		t.Errorf("replay row %+v: want at least the 200 events it added", res)
	}
	if res, _ := rep.Find("projection 200 events"); res.Count != 200 || res.Ratio == 0 {
		t.Errorf("projection row %+v: want 200 events and a ratio to its baseline", res)
	}

	md, err := os.ReadFile(c.Out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{bench.BeginGenerated, bench.EndGenerated, "| ingest-http | c=1 |", "Projection lag over time", "nproc"} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("markdown lacks %q", s)
		}
	}
	var fromJSON bench.Report
	if b, err := os.ReadFile(c.JSON); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &fromJSON); err != nil {
		t.Fatalf("json: %v", err)
	}
	if len(fromJSON.Results) != len(rep.Results) || fromJSON.RunID != rep.RunID {
		t.Errorf("json holds %d results of run %q, want %d of %q", len(fromJSON.Results), fromJSON.RunID, len(rep.Results), rep.RunID)
	}

	// Cleaned up: no node, tool or checkpoint of the run in Neo4j; nothing of it in the
	// stream, no baseline stream, no consumer of its projector.
	prefix := bench.Tenants{RunID: rep.RunID}.OwnerPrefix()
	if n, err := bench.CountGraph(context.Background(), driver, "", prefix); err != nil || n != 0 {
		t.Errorf("%d nodes of the run left in Neo4j (%v)", n, err)
	}
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 0 {
		info, _ := s.Info(t.Context(), jetstream.WithSubjectFilter(">"))
		t.Errorf("%d messages left in the memory stream: %v", n, info.State.Subjects)
	}
	if n := s.CachedInfo().State.Consumers; n != 0 {
		t.Errorf("%d consumers left on the memory stream", n)
	}
	if kv, err := js.Stream(t.Context(), "KV_"+keys.Bucket); err != nil {
		t.Error(err)
	} else if info, err := kv.Info(t.Context()); err != nil || info.State.Msgs != 0 {
		t.Errorf("data keys left in the bucket: %v, %v", info, err)
	}
	for name := range js.StreamNames(t.Context()).Name() {
		if name != stream.MemoryStream && name != stream.DeadLetterStream && name != "KV_"+keys.Bucket {
			t.Errorf("stream %s left behind", name)
		}
	}
	assertStopped(t, rep)
}

// TestInterruptedRunStopsEverything cancels a run as soon as its first scenario starts (what
// Ctrl-C does through memctl's signal context) and checks that every subprocess is gone and
// the run's data too.
func TestInterruptedRunStopsEverything(t *testing.T) {
	t.Parallel()
	srv, _, _ := testenv.NATS(t)
	driver := testenv.Neo4j(t)
	c := tinyConfig(t, srv.ClientURL())
	c.Duration = time.Minute // long: the cancel ends it
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := slog.New(cancelOn{msg: "scenario", cancel: cancel})
	var out bytes.Buffer
	rep, err := bench.Run(ctx, c, &out, log)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("run returned %v, want context.Canceled", err)
	}
	if _, statErr := os.Stat(c.Out); !os.IsNotExist(statErr) {
		t.Errorf("an interrupted run wrote %s", c.Out)
	}
	if len(rep.Processes) == 0 {
		t.Fatal("the report lists no service subprocess")
	}
	assertStopped(t, rep)
	if n, err := bench.CountGraph(context.Background(), driver, "", bench.Tenants{RunID: rep.RunID}.OwnerPrefix()); err != nil || n != 0 {
		t.Errorf("%d nodes of the run left in Neo4j (%v)", n, err)
	}
}

func TestRunRefusesNonsense(t *testing.T) {
	t.Parallel()
	c := bench.DefaultConfig()
	c.Duration, c.Rate = 0, -1
	_, err := bench.Run(t.Context(), c, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, bench.ErrInvalidConfig) {
		t.Fatalf("Run = %v, want ErrInvalidConfig before anything starts", err)
	}
}

// findPrefix returns the first row whose name starts with prefix.
func findPrefix(rep *bench.Report, prefix string) (bench.Result, bool) {
	for _, res := range rep.Results {
		if strings.HasPrefix(res.Name(), prefix) {
			return res, true
		}
	}
	return bench.Result{}, false
}

// assertStopped checks that no subprocess of the run still exists.
func assertStopped(t *testing.T, rep *bench.Report) {
	t.Helper()
	for _, p := range rep.Processes {
		if err := syscall.Kill(p.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after the run: %v", p.Name, p.PID, err)
		}
	}
}

// cancelOn is a slog handler that cancels when a record with message msg is logged.
type cancelOn struct {
	msg    string
	cancel context.CancelFunc
}

func (h cancelOn) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelOn) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.cancel()
	}
	return nil
}
func (h cancelOn) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h cancelOn) WithGroup(string) slog.Handler      { return h }
