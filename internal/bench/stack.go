package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/natsdev"
	"github.com/engram-memory/engram/internal/stream"
)

// The services of the stack, by their ./cmd name.
const (
	ServiceIngestor  = "ingestor"
	ServiceProjector = "projector"
	ServiceQuery     = "query"
	// ServiceProjector2 is a second process of ./cmd/projector in the run's projector group
	// (the failover scenario's competitor). It is not started with the stack: the failover
	// scenario starts it, so that no other scenario runs with two projectors.
	ServiceProjector2 = "projector-2"
)

// binaryOf is the ./cmd package a service runs.
func binaryOf(name string) string {
	if name == ServiceProjector2 {
		return ServiceProjector
	}
	return name
}

// Service is one Engram service the scenarios talk to: given by URL, or started here.
type Service struct {
	Name string
	URL  string
	Proc *Process // nil when the service was given by URL
}

// ErrUnavailable is returned when a scenario's dependency is not part of this stack (not in
// the tree yet, or it failed to build or start); the scenario reports n/a with the reason.
var ErrUnavailable = errors.New("not available")

// Stack is what the scenarios run against. Close stops everything the driver started and
// removes its temporary files.
type Stack struct {
	RunID   string // unique per run; every tenant, tool name and checkpoint of the run carries it
	Dir     string // temporary directory: binaries, logs, the embedded NATS store
	NATSURL string
	NC      *nats.Conn
	JS      jetstream.JetStream
	Neo4j   neo4j.DriverWithContext
	Neo4jDB string
	// ProjectorGroup names the projector's consumers and checkpoints: the run's own
	// (bench-<run>) when the driver starts the projector, else PROJECTOR_GROUP.
	ProjectorGroup string

	Described []string // what runs where, for the report

	cfg      Config
	log      *slog.Logger
	natsSrv  *server.Server
	services map[string]*Service
	missing  map[string]error
	closers  []func(context.Context) error
}

// servicesFor lists the services the selected scenarios need.
func servicesFor(c Config) []string {
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	if c.Has(ScenarioIngestHTTP) || c.Has(ScenarioIngestBatch) {
		add(ServiceIngestor)
	}
	if c.Has(ScenarioProjection) || c.Has(ScenarioReplay) || c.Has(ScenarioEncryption) {
		add(ServiceProjector)
	}
	if c.Has(ScenarioFreshness) {
		add(ServiceIngestor, ServiceProjector, ServiceQuery)
	}
	if c.Has(ScenarioReads) || c.Has(ScenarioEntityReads) {
		add(ServiceQuery)
	}
	if c.Has(ScenarioFailover) {
		add(ServiceProjector) // ServiceProjector2 is started by the scenario itself
	}
	if c.Has(ScenarioFootprint) {
		add(ServiceIngestor, ServiceProjector)
	}
	return out
}

// StartStack connects to what runs and starts the rest. On error everything started so far
// is stopped again.
func StartStack(ctx context.Context, c Config, log *slog.Logger) (s *Stack, err error) {
	s = &Stack{cfg: c, log: log, RunID: newRunID(), services: map[string]*Service{}, missing: map[string]error{},
		Neo4jDB: c.Endpoints.Neo4j.Database}
	s.ProjectorGroup = c.Endpoints.ProjectorGroup
	if c.Endpoints.ProjectorURL == "" {
		s.ProjectorGroup = "bench-" + s.RunID
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
			s = nil
		}
	}()
	s.Dir, err = os.MkdirTemp("", "engram-bench-"+s.RunID+"-")
	if err != nil {
		return s, err
	}
	s.closers = append(s.closers, func(context.Context) error {
		if c.LogDir != "" {
			// The services' logs outlive the run's temporary directory.
			if err := os.MkdirAll(c.LogDir, 0o755); err == nil {
				logs, _ := filepath.Glob(filepath.Join(s.Dir, "log", "*.log"))
				for _, l := range logs {
					if b, err := os.ReadFile(l); err == nil {
						_ = os.WriteFile(filepath.Join(c.LogDir, filepath.Base(l)), b, 0o644)
					}
				}
			}
		}
		return os.RemoveAll(s.Dir)
	})
	for _, d := range []string{"bin", "log", "nats"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return s, err
		}
	}
	if err := s.startNeo4j(ctx); err != nil {
		return s, err
	}
	if err := s.startNATS(ctx); err != nil {
		return s, err
	}
	for _, name := range servicesFor(c) {
		if err := s.startService(ctx, name); err != nil {
			if ctx.Err() != nil {
				return s, ctx.Err()
			}
			s.missing[name] = err
			log.Warn("service unavailable; its scenarios report n/a", "service", name, "err", err)
		}
	}
	return s, nil
}

func newRunID() string {
	b := make([]byte, 4)
	f, err := os.Open("/dev/urandom")
	if err == nil {
		_, _ = f.Read(b)
		f.Close()
	} else {
		t := time.Now().UnixNano()
		for i := range b {
			b[i] = byte(t >> (8 * i))
		}
	}
	return fmt.Sprintf("%x", b)
}

func (s *Stack) startNeo4j(ctx context.Context) error {
	cfg := s.cfg.Endpoints.Neo4j
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	d, err := graph.Open(octx, cfg)
	cancel()
	if err != nil {
		if !isLoopback(cfg.URI) || s.cfg.RepoDir == "" {
			return fmt.Errorf("neo4j at %s does not answer and is not local, so the driver cannot start it: %w", cfg.URI, err)
		}
		s.log.Info("neo4j does not answer; starting it", "cmd", "make neo4j-start")
		cmd := exec.CommandContext(ctx, "make", "neo4j-start")
		cmd.Dir = s.cfg.RepoDir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("make neo4j-start: %w\n%s", err, out)
		}
		s.closers = append(s.closers, func(ctx context.Context) error {
			cmd := exec.CommandContext(ctx, "make", "neo4j-stop")
			cmd.Dir = s.cfg.RepoDir
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("make neo4j-stop: %w\n%s", err, out)
			}
			return nil
		})
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		d, err = graph.Open(octx, cfg)
		cancel()
		if err != nil {
			return err
		}
		s.Described = append(s.Described, "Neo4j: started by the driver (make neo4j-start) at "+cfg.URI+", stopped at the end")
	} else {
		s.Described = append(s.Described, "Neo4j: the running server at "+cfg.URI+" (shared; the driver's data are isolated by owner and removed at the end)")
	}
	s.Neo4j = d
	s.closers = append(s.closers, func(ctx context.Context) error { return d.Close(ctx) })
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return graph.ApplySchema(sctx, d, s.Neo4jDB)
}

func isLoopback(uri string) bool {
	u, err := url.Parse(uri)
	if err != nil {
		return false
	}
	h := u.Hostname()
	return h == "127.0.0.1" || h == "localhost" || h == "::1"
}

func (s *Stack) startNATS(ctx context.Context) error {
	s.NATSURL = s.cfg.Endpoints.NATSURL
	if s.NATSURL == "" {
		srv, err := natsdev.Start(natsdev.Options{Port: -1, StoreDir: filepath.Join(s.Dir, "nats")})
		if err != nil {
			return err
		}
		s.natsSrv = srv
		s.closers = append(s.closers, func(context.Context) error {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil
		})
		s.NATSURL = srv.ClientURL()
		s.Described = append(s.Described, "NATS: embedded nats-server (JetStream, file storage in a temporary directory) in the driver's process at "+s.NATSURL)
	} else {
		s.Described = append(s.Described, "NATS: the running server at "+s.NATSURL+" (the driver purges its tenants' subjects at the end)")
	}
	nc, err := nats.Connect(s.NATSURL, nats.Name("memctl-bench"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to nats at %s: %w", stream.RedactURL(s.NATSURL), err)
	}
	// Registered before the server's shutdown, so it runs first (closers run in reverse).
	s.closers = append(s.closers, func(context.Context) error { nc.Close(); return nil })
	s.NC = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	s.JS = js
	ectx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return stream.Ensure(ectx, js, 2*time.Minute)
}

// envURL is the environment name of a service's URL.
func envURL(name string) string {
	return map[string]string{ServiceIngestor: "INGESTOR_URL", ServiceQuery: "QUERY_URL", ServiceProjector: "PROJECTOR_URL"}[name]
}

func (s *Stack) givenURL(name string) string {
	switch name {
	case ServiceIngestor:
		return s.cfg.Endpoints.IngestorURL
	case ServiceQuery:
		return s.cfg.Endpoints.QueryURL
	case ServiceProjector:
		return s.cfg.Endpoints.ProjectorURL
	}
	return ""
}

func (s *Stack) startService(ctx context.Context, name string) error {
	if name == ServiceProjector2 && s.givenURL(ServiceProjector) != "" {
		return fmt.Errorf("%w: the projector runs outside the driver (PROJECTOR_URL): a second process of its group is not the driver's to start and kill", ErrUnavailable)
	}
	if binaryOf(name) == ServiceProjector && s.cfg.Endpoints.NATSURL != "" && !s.cfg.Endpoints.NATSPrivate && s.givenURL(name) == "" {
		// A projector of the run's own group would project the whole stream of a running
		// stack, every tenant's events, into the shared graph.
		return fmt.Errorf("%w: with NATS_URL set, give the running projector's PROJECTOR_URL (and PROJECTOR_GROUP): a projector started here would project the whole stream of that server", ErrUnavailable)
	}
	if u := s.givenURL(name); u != "" {
		s.services[name] = &Service{Name: name, URL: strings.TrimRight(u, "/")}
		s.Described = append(s.Described, fmt.Sprintf("%s: the running service at %s (%s)", name, u, envURL(name)))
		return nil
	}
	if s.cfg.RepoDir == "" {
		return fmt.Errorf("%w: %s: set %s or run from the repository", ErrUnavailable, name, envURL(name))
	}
	bin := binaryOf(name)
	if _, err := os.Stat(filepath.Join(s.Dir, "bin", bin)); err != nil { // not built yet in this run
		bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		exists, err := buildService(bctx, s.cfg.RepoDir, filepath.Join(s.Dir, "bin"), bin)
		cancel()
		switch {
		case !exists:
			return fmt.Errorf("%w: ./cmd/%s is not in the tree", ErrUnavailable, bin)
		case err != nil:
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	p := &Process{
		Name: name,
		URL:  fmt.Sprintf("http://127.0.0.1:%d", port),
		Log:  filepath.Join(s.Dir, "log", name+".log"),
		bin:  filepath.Join(s.Dir, "bin", bin),
		env:  s.serviceEnv(name, port),
	}
	if err := p.start(ctx, 2*time.Minute); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	s.closers = append(s.closers, func(context.Context) error { return p.stop() })
	s.services[name] = &Service{Name: name, URL: p.URL, Proc: p}
	s.Described = append(s.Described, fmt.Sprintf("%s: subprocess built from ./cmd/%s, listening on %s", name, bin, p.URL))
	return nil
}

// serviceEnv is the environment of a service subprocess: the driver's, with the stack's
// endpoints and the run's own names.
func (s *Stack) serviceEnv(name string, port int) []string {
	n := s.cfg.Endpoints.Neo4j
	set := map[string]string{
		"NATS_URL":       s.NATSURL,
		"NEO4J_URI":      n.URI,
		"NEO4J_USER":     n.User,
		"NEO4J_PASSWORD": n.Password,
		"NEO4J_DATABASE": n.Database,
		"HTTP_ADDR":      fmt.Sprintf("127.0.0.1:%d", port),
		"LOG_LEVEL":      serviceLogLevel(), // the logs are kept (LogDir) for when a figure needs explaining
		"LOG_FORMAT":     "text",
		"MULTI_TENANT":   "true",
	}
	for k, v := range serviceExtraEnv(s, name) {
		set[k] = v
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// Service returns a running service, or ErrUnavailable with the reason.
func (s *Stack) Service(name string) (*Service, error) {
	if svc, ok := s.services[name]; ok {
		if svc.Proc != nil {
			if err := svc.Proc.Alive(); err != nil {
				return nil, err
			}
		}
		return svc, nil
	}
	if err, ok := s.missing[name]; ok {
		return nil, err
	}
	return nil, fmt.Errorf("%w: %s was not started for the selected scenarios", ErrUnavailable, name)
}

// Restart stops a service subprocess and starts it again with the same settings, e.g. to
// measure the projector catching up from a standing start.
func (s *Stack) Restart(ctx context.Context, name string) error {
	svc, err := s.Service(name)
	if err != nil {
		return err
	}
	if svc.Proc == nil {
		return fmt.Errorf("%w: %s runs outside the driver", ErrUnavailable, name)
	}
	if err := svc.Proc.stop(); err != nil {
		return err
	}
	return svc.Proc.start(ctx, 2*time.Minute)
}

// Stop stops a service subprocess (it stays registered; Start starts it again).
func (s *Stack) Stop(name string) error {
	svc, ok := s.services[name]
	if !ok || svc.Proc == nil {
		return fmt.Errorf("%w: %s is not a subprocess of the driver", ErrUnavailable, name)
	}
	return svc.Proc.stop()
}

// Start starts a stopped service subprocess again.
func (s *Stack) Start(ctx context.Context, name string) error {
	svc, ok := s.services[name]
	if !ok || svc.Proc == nil {
		return fmt.Errorf("%w: %s is not a subprocess of the driver", ErrUnavailable, name)
	}
	return svc.Proc.start(ctx, 2*time.Minute)
}

// Processes lists the service subprocesses the driver started.
func (s *Stack) Processes() []*Process {
	var out []*Process
	for _, n := range []string{ServiceIngestor, ServiceProjector, ServiceProjector2, ServiceQuery} {
		if svc, ok := s.services[n]; ok && svc.Proc != nil {
			out = append(out, svc.Proc)
		}
	}
	return out
}

// Close stops what the driver started, in reverse order, and reports every failure.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}

// serviceExtraEnv is a service's own settings for a run: names that keep the run's state
// apart from every other user of the shared Neo4j. The projector's group names its durable
// consumers and its checkpoints (<group>-p<n>), so the run's checkpoints start with the run's
// owner prefix and cleanup removes them with the rest.
func serviceExtraEnv(s *Stack, name string) map[string]string {
	switch name {
	case ServiceIngestor:
		// The driver is one unauthenticated caller standing for many agents, so the fair share
		// of open atomic batches (INGEST_MAX_OPEN_BATCHES, per principal or, without
		// authentication, per tenant named; docs/events.md) would turn the batch scenario's
		// concurrency into 429s. It measures throughput: the share is set to its most, below the
		// stream's 50 open batches.
		return map[string]string{"INGEST_MAX_OPEN_BATCHES": "49"}
	case ServiceProjector, ServiceProjector2:
		return map[string]string{"PROJECTOR_GROUP": s.ProjectorGroup}
	case ServiceQuery:
		// The query service waits on the same checkpoints for read-your-writes.
		return map[string]string{"PROJECTOR_GROUP": s.ProjectorGroup, "CHECKPOINT_GROUP": s.ProjectorGroup}
	}
	return nil
}

// Neo4jVersion names the Neo4j server the run writes to, e.g. "Neo4j Kernel 5.26.1 community".
func (s *Stack) Neo4jVersion(ctx context.Context) string {
	res, err := neo4j.ExecuteQuery(ctx, s.Neo4j,
		"CALL dbms.components() YIELD name, versions, edition RETURN name + ' ' + versions[0] + ' ' + edition AS v",
		nil, neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(s.Neo4jDB))
	if err != nil || len(res.Records) == 0 {
		return "unknown"
	}
	v, _ := res.Records[0].Get("v")
	if str, ok := v.(string); ok {
		return str
	}
	return "unknown"
}

// serviceLogLevel is the services' log level: BENCH_SERVICE_LOG_LEVEL (debug shows every
// batch the projector commits), info by default.
func serviceLogLevel() string {
	if l := os.Getenv("BENCH_SERVICE_LOG_LEVEL"); l != "" {
		return l
	}
	return "info"
}

// Memctl returns a memctl binary built from the repository for the run (the raw publish
// baseline's process, `memctl bench-publish`), building it at the first call.
func (s *Stack) Memctl(ctx context.Context) (string, error) {
	bin := filepath.Join(s.Dir, "bin", "memctl")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if s.cfg.RepoDir == "" {
		return "", fmt.Errorf("%w: memctl: run from the repository", ErrUnavailable)
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if _, err := buildService(bctx, s.cfg.RepoDir, filepath.Join(s.Dir, "bin"), "memctl"); err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return bin, nil
}
