package app

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/engram-memory/engram/internal/graph"
)

// Common is the configuration every service shares.
type Common struct {
	Service        string
	NATSURL        string
	Neo4j          graph.Config
	HTTPAddr       string
	HTTP           HTTPServerConfig // the HTTP server's limits (HTTP_*_TIMEOUT, HTTP_MAX_HEADER_BYTES)
	LogLevel       string
	LogFormat      string
	MultiTenant    bool
	Duplicates     time.Duration // JetStream duplicate window of the memory stream
	StreamReplicas int           // num_replicas of MEM and MEM_DLQ (NATS_STREAM_REPLICAS): 1 on one server, 3 on the production cluster
	PublishTimeout time.Duration
	// PublishLeaderWait is how long beyond PublishTimeout a write keeps trying while the
	// stream has no leader (stream.WithLeaderWait).
	PublishLeaderWait time.Duration
	StartTimeout      time.Duration // how long start-up waits for NATS; Neo4j is not waited for (Neo4jModule)
	ShutdownTimeout   time.Duration
	// CPUProfileDir, when set, holds a CPU profile of the process from start to stop
	// (<service>-<pid>.pprof): how `memctl bench` and an operator see where a service's time
	// goes without opening a profiling endpoint on its HTTP port.
	CPUProfileDir string
}

// Validate reports every problem at once.
func (c Common) Validate() error {
	var errs []error
	if c.NATSURL == "" {
		errs = append(errs, errors.New("NATS_URL is required"))
	}
	if err := c.Neo4j.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("HTTP_ADDR %q: %w", c.HTTPAddr, err))
	}
	if err := c.HTTP.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT %q: want text or json", c.LogFormat))
	}
	if c.Duplicates < 2*time.Minute {
		errs = append(errs, fmt.Errorf("NATS_DUPLICATE_WINDOW %s: at least 2m so a retried publish is stored once", c.Duplicates))
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("NATS_STREAM_REPLICAS %d: want 1 (one server) to 5 (JetStream's maximum), 3 on a three-node cluster", c.StreamReplicas))
	}
	if c.PublishLeaderWait < 0 || c.PublishLeaderWait > 5*time.Minute {
		errs = append(errs, fmt.Errorf("PUBLISH_LEADER_WAIT %s: want 0 to 5m", c.PublishLeaderWait))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("PUBLISH_TIMEOUT %s: must be positive", c.PublishTimeout))
	}
	if c.StartTimeout <= 0 {
		errs = append(errs, fmt.Errorf("START_TIMEOUT %s: must be positive", c.StartTimeout))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_TIMEOUT %s: must be positive", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// Flags binds settings to a flag set whose defaults come from the environment, so each
// setting can be given as -flag or as ENV. Parse errors of environment values are collected
// and reported by Err, together with the flag set's own.
type Flags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   []error
}

// NewFlags returns Flags over fs reading the environment through getenv (os.Getenv in main).
func NewFlags(fs *flag.FlagSet, getenv func(string) string) *Flags {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &Flags{fs: fs, getenv: getenv}
}

// String binds a string setting.
func (f *Flags) String(p *string, name, env, def, usage string) {
	if v := f.getenv(env); v != "" {
		def = v
	}
	f.fs.StringVar(p, name, def, usage+" (env "+env+")")
}

// Bool binds a boolean setting.
func (f *Flags) Bool(p *bool, name, env string, def bool, usage string) {
	if v := f.getenv(env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s %q: not a boolean", env, v))
		} else {
			def = b
		}
	}
	f.fs.BoolVar(p, name, def, usage+" (env "+env+")")
}

// Int binds an integer setting.
func (f *Flags) Int(p *int, name, env string, def int, usage string) {
	if v := f.getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s %q: not an integer", env, v))
		} else {
			def = n
		}
	}
	f.fs.IntVar(p, name, def, usage+" (env "+env+")")
}

// Duration binds a duration setting (Go syntax: 500ms, 2m).
func (f *Flags) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v := f.getenv(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s %q: not a duration (e.g. 500ms, 2m)", env, v))
		} else {
			def = d
		}
	}
	f.fs.DurationVar(p, name, def, usage+" (env "+env+")")
}

// Parse parses args and returns every error met so far, joined. Callers join it with their
// config's Validate so that one error lists every bad setting.
func (f *Flags) Parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		f.errs = append(f.errs, err)
	}
	return errors.Join(f.errs...)
}

// BindCommon binds the shared settings with the dev stack's defaults.
func BindCommon(f *Flags, c *Common, service, defaultHTTP string) {
	c.Service = service
	f.String(&c.NATSURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL")
	f.String(&c.Neo4j.URI, "neo4j-uri", "NEO4J_URI", "bolt://127.0.0.1:7687", "Neo4j Bolt URI")
	f.String(&c.Neo4j.User, "neo4j-user", "NEO4J_USER", "neo4j", "Neo4j user")
	f.String(&c.Neo4j.Password, "neo4j-password", "NEO4J_PASSWORD", "engram-dev-password", "Neo4j password")
	f.String(&c.Neo4j.Database, "neo4j-database", "NEO4J_DATABASE", "", "Neo4j database (empty: the server's default)")
	f.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", defaultHTTP, "HTTP listen address")
	bindHTTPServer(f, &c.HTTP)
	f.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	f.String(&c.LogFormat, "log-format", "LOG_FORMAT", "text", "text or json")
	f.Bool(&c.MultiTenant, "multi-tenant", "MULTI_TENANT", true, "require a user on every write")
	f.Duration(&c.Duplicates, "nats-duplicate-window", "NATS_DUPLICATE_WINDOW", 2*time.Minute, "JetStream duplicate window of the memory stream")
	f.Int(&c.StreamReplicas, "nats-stream-replicas", "NATS_STREAM_REPLICAS", 1, "replicas of the memory and dead-letter streams (3 on a three-node JetStream cluster; every service the same)")
	f.Duration(&c.PublishTimeout, "publish-timeout", "PUBLISH_TIMEOUT", 5*time.Second, "how long a publish waits for JetStream's acknowledgement")
	f.Duration(&c.PublishLeaderWait, "publish-leader-wait", "PUBLISH_LEADER_WAIT", 10*time.Second, "how long beyond PUBLISH_TIMEOUT a write rides through the stream's leader election (tried again while no server answers for the stream) before it is refused; 0: refused at once")
	f.Duration(&c.StartTimeout, "start-timeout", "START_TIMEOUT", 5*time.Minute, "how long start-up waits for NATS before it gives up")
	f.Duration(&c.ShutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 15*time.Second, "graceful shutdown limit")
	f.String(&c.CPUProfileDir, "cpu-profile-dir", "CPU_PROFILE_DIR", "", "directory to write a CPU profile of the process to, from start to stop (<service>-<pid>.pprof); empty: none")
}
