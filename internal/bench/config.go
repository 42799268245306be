package bench

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/engram-memory/engram/internal/graph"
)

// The scenarios, in the order they run.
const (
	ScenarioIngestHTTP  = "ingest-http"  // single-command HTTP requests vs raw sync publish
	ScenarioIngestBatch = "ingest-batch" // the batch endpoint vs raw async publish
	ScenarioPublish     = "publish"      // the Go async publisher straight to NATS vs raw async publish
	ScenarioProjection  = "projection"   // sustained projection vs raw Neo4j UNWIND writes, and lag
	ScenarioFreshness   = "freshness"    // write acknowledged -> visible in a query
	ScenarioFailover    = "failover"     // SIGKILL of the projector holding a partition -> applied again
	ScenarioReads       = "reads"        // GetPreferencesFor over a seeded graph
	ScenarioReplay      = "replay"       // rebuilding the graph from the stream
	ScenarioFootprint   = "footprint"    // peak RSS of the ingestor and the projector
)

// Scenarios lists every scenario in run order.
var Scenarios = []string{
	ScenarioIngestHTTP, ScenarioIngestBatch, ScenarioPublish, ScenarioProjection,
	ScenarioFreshness, ScenarioFailover, ScenarioReads, ScenarioEntityReads, ScenarioReplay, ScenarioDurability, ScenarioEncryption, ScenarioFootprint,
}

// Limits on parameters: beyond them a run is a mistake, not a benchmark.
const (
	MaxConcurrency = 4096
	MaxBatchSize   = 1000 // the ingestor's and JetStream's atomic batch limit
	MaxPrefs       = 1000
	MaxKills       = 1000
)

// Endpoints says which parts of the stack already run. Empty fields are started by the driver:
// NATS embedded in-process, the services as subprocesses built from ./cmd/..., Neo4j with
// `make neo4j-start` when it does not answer.
type Endpoints struct {
	NATSURL      string       // NATS_URL
	Neo4j        graph.Config // NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE
	IngestorURL  string       // INGESTOR_URL, e.g. http://127.0.0.1:8080
	QueryURL     string       // QUERY_URL, e.g. http://127.0.0.1:8081
	ProjectorURL string       // PROJECTOR_URL (metrics), e.g. http://127.0.0.1:8082
	// NATSPrivate says the NATS at NATSURL serves this run alone (a test's embedded server),
	// so the driver may start a projector of its own on it.
	NATSPrivate bool
	// ProjectorGroup is the running projector's group (PROJECTOR_GROUP, default projector): its
	// checkpoints are <group>-p<n>. Unused when the driver starts the projector.
	ProjectorGroup string
}

// Config is one benchmark run.
type Config struct {
	Scenarios    []string      // subset of Scenarios; run in Scenarios order
	Duration     time.Duration // length of each timed step (one concurrency level, one read variant)
	Warmup       time.Duration // unmeasured load before each timed step
	Events       int           // events projected (projection scenario) and published (publish)
	Concurrency  []int         // concurrency levels of the ingest scenarios
	BatchSize    int           // commands per batch request and events per raw async window unit
	Rate         float64       // offered events/s of the freshness scenario
	Users        int           // users seeded for the reads scenario
	PrefsPerUser int           // preferences per seeded user
	ReadWorkers  int           // concurrent readers in the reads scenario
	UnwindBatch  int           // rows per UNWIND batch of raw Neo4j writes and of the seeding
	ReplayEvents int           // events in the stream for the replay scenario (0: reuse the projection's)
	Out          string        // markdown file to write (docs/BENCHMARKS.md); "" writes none
	JSON         string        // JSON file to write; "" writes none
	Render       string        // memctl bench -render: a JSON file to render instead of running
	Profile      bool          // take CPU profiles where a target is missed
	ProfileDir   string        // where profiles go (default: a directory under the system temp dir)
	LogDir       string        // where the service subprocesses' logs are kept ("": not kept)
	RepoDir      string        // module root, for go build ./cmd/... and make neo4j-start
	Command      string        // the command line, for the report
	Endpoints    Endpoints

	// FailoverKills is the number of SIGKILLs of the projector holding a partition while a
	// second one runs; FailoverRestarts the number of SIGKILLs of a single projector
	// restarted at once (failover scenario).
	FailoverKills, FailoverRestarts int
}

// DefaultConfig is the profile `make bench` runs: it finishes within about 15 minutes on a
// 2-core machine. Numbers scaled down from the issue are reported as such (see Report.Notes).
func DefaultConfig() Config {
	return Config{
		Scenarios:    slices.Clone(Scenarios),
		Duration:     8 * time.Second,
		Warmup:       2 * time.Second,
		Events:       100_000,
		Concurrency:  []int{1, 8, 32},
		BatchSize:    100,
		Rate:         2000,
		Users:        100_000,
		PrefsPerUser: 10,
		ReadWorkers:  4,
		UnwindBatch:  500,

		FailoverKills: 20, FailoverRestarts: 5,
		Endpoints: Endpoints{Neo4j: graph.Config{
			URI: "bolt://127.0.0.1:7687", User: "neo4j", Password: "engram-dev-password",
		}},
	}
}

// ErrInvalidConfig wraps every parameter problem, so callers can tell bad input from a failed
// run.
var ErrInvalidConfig = errors.New("invalid benchmark parameters")

// Validate reports every problem at once, each naming its flag.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Scenarios) == 0 {
		bad("-scenarios: empty: want %s or all", strings.Join(Scenarios, ","))
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios, s) {
			bad("-scenarios: unknown scenario %q: want one of %s, or all", s, strings.Join(Scenarios, ","))
		}
	}
	if c.Duration <= 0 {
		bad("-duration %s: must be positive", c.Duration)
	}
	if c.Warmup < 0 {
		bad("-warmup %s: must not be negative", c.Warmup)
	}
	if c.Events <= 0 {
		bad("-events %d: must be positive", c.Events)
	}
	if len(c.Concurrency) == 0 {
		bad("-concurrency: empty: want levels such as 1,8,32")
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > MaxConcurrency {
			bad("-concurrency %d: want 1 to %d", n, MaxConcurrency)
		}
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		bad("-batch-size %d: want 1 to %d", c.BatchSize, MaxBatchSize)
	}
	switch {
	case c.Rate < 0:
		bad("-rate %g: must not be negative", c.Rate)
	case c.Rate == 0 || c.Rate != c.Rate: // NaN too
		bad("-rate %g: must be positive (events/s offered in the freshness scenario)", c.Rate)
	case c.Rate > 1e6:
		bad("-rate %g: at most 1e6 events/s", c.Rate)
	}
	if c.Users <= 0 {
		bad("-users %d: must be positive", c.Users)
	}
	if c.PrefsPerUser <= 0 || c.PrefsPerUser > MaxPrefs {
		bad("-prefs-per-user %d: want 1 to %d", c.PrefsPerUser, MaxPrefs)
	}
	if c.ReadWorkers < 1 || c.ReadWorkers > MaxConcurrency {
		bad("-read-workers %d: want 1 to %d", c.ReadWorkers, MaxConcurrency)
	}
	if c.UnwindBatch < 1 || c.UnwindBatch > 100_000 {
		bad("-unwind-batch %d: want 1 to 100000", c.UnwindBatch)
	}
	if c.ReplayEvents < 0 {
		bad("-replay-events %d: must not be negative", c.ReplayEvents)
	}
	if c.Has(ScenarioFailover) {
		if c.FailoverKills < 1 || c.FailoverKills > MaxKills {
			bad("-failover-kills %d: want 1 to %d", c.FailoverKills, MaxKills)
		}
		if c.FailoverRestarts < 0 || c.FailoverRestarts > MaxKills {
			bad("-failover-restarts %d: want 0 to %d", c.FailoverRestarts, MaxKills)
		}
	}
	if c.Out != "" && c.Out == c.JSON {
		bad("-out and -json name the same file %q", c.Out)
	}
	if c.Endpoints.Neo4j.URI == "" {
		bad("NEO4J_URI: required")
	}
	if c.Endpoints.NATSURL == "" {
		for name, u := range map[string]string{"INGESTOR_URL": c.Endpoints.IngestorURL, "QUERY_URL": c.Endpoints.QueryURL, "PROJECTOR_URL": c.Endpoints.ProjectorURL} {
			if u != "" {
				bad("%s is set but NATS_URL is not: a running service belongs to a running NATS; set NATS_URL too, or neither", name)
			}
		}
	}
	if c.Endpoints.ProjectorURL != "" && c.Endpoints.ProjectorGroup == "" {
		bad("PROJECTOR_GROUP: required with PROJECTOR_URL (the running projector's group, usually projector)")
	}
	for name, u := range map[string]string{"INGESTOR_URL": c.Endpoints.IngestorURL, "QUERY_URL": c.Endpoints.QueryURL, "PROJECTOR_URL": c.Endpoints.ProjectorURL} {
		if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			bad("%s %q: want an http:// or https:// URL", name, u)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// Has reports whether the run includes scenario s.
func (c Config) Has(s string) bool { return slices.Contains(c.Scenarios, s) }

// ParseScenarios reads a comma-separated scenario list; "all" selects every scenario. Unknown
// names are kept for Validate to report.
func ParseScenarios(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
		case f == "all":
			out = append(out, Scenarios...)
		case !slices.Contains(out, f):
			out = append(out, f)
		}
	}
	// Run order is the catalogue's, whatever order the list gave.
	slices.SortStableFunc(out, func(a, b string) int { return order(a) - order(b) })
	return slices.Compact(out)
}

func order(s string) int {
	if i := slices.Index(Scenarios, s); i >= 0 {
		return i
	}
	return len(Scenarios)
}

// ParseInts reads a comma-separated list of integers, e.g. concurrency levels "1,8,32".
func ParseInts(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%w: -%s: %q is not an integer", ErrInvalidConfig, flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}
