package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"golang.org/x/crypto/bcrypt"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

// ServiceUsers are the NATS users of deploy/nats/accounts.conf's ENGRAM account, by service,
// with the environment variable their password (a bcrypt hash) comes from.
var ServiceUsers = map[string]string{
	"admin":     "ENGRAM_NATS_ADMIN_PASSWORD",
	"ingestor":  "ENGRAM_NATS_INGESTOR_PASSWORD",
	"projector": "ENGRAM_NATS_PROJECTOR_PASSWORD",
	"query":     "ENGRAM_NATS_QUERY_PASSWORD",
}

// ProductionConfig is a copy of the shipped production NATS configuration in a temporary
// directory, laid out as in the repository (production/nats-server.conf includes
// ../nats/accounts.conf, which includes agents.conf), with an agents.conf of the given
// tenants' agents written by natsdeploy.AgentUserConf, as `memctl nats-user` does. The
// service users' passwords are set in the environment as bcrypt hashes (t.Setenv: the test
// cannot be parallel).
type ProductionConfig struct {
	File      string                   // production/nats-server.conf in the copy
	Dir       string                   // the copy's root
	Passwords map[string]string        // service ("admin", "ingestor", ...) -> plain password
	Agents    map[string]nkeys.KeyPair // user identifier -> its agent's key pair
}

// CopyProductionConfig copies deploy/production/nats-server.conf and deploy/nats/accounts.conf
// byte for byte; only agents.conf is the test's.
func CopyProductionConfig(t testing.TB, tenants ...string) *ProductionConfig {
	t.Helper()
	root := moduleRoot()
	dir := t.TempDir()
	pc := &ProductionConfig{Dir: dir, File: filepath.Join(dir, "production", "nats-server.conf"),
		Passwords: map[string]string{}, Agents: map[string]nkeys.KeyPair{}}
	var users strings.Builder
	users.WriteString("users: [\n")
	for _, id := range tenants {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		entry, err := natsdeploy.AgentUserConf(id, pub)
		if err != nil {
			t.Fatal(err)
		}
		users.WriteString(entry)
		pc.Agents[id] = kp
	}
	users.WriteString("]\n")
	for _, f := range []struct{ from, to, content string }{
		{from: "deploy/production/nats-server.conf", to: "production/nats-server.conf"},
		{from: "deploy/nats/accounts.conf", to: "nats/accounts.conf"},
		{to: "nats/agents.conf", content: users.String()},
	} {
		content := []byte(f.content)
		if f.from != "" {
			var err error
			if content, err = os.ReadFile(filepath.Join(root, f.from)); err != nil {
				t.Fatal(err)
			}
		}
		to := filepath.Join(dir, f.to)
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for svc, env := range ServiceUsers {
		pw := "engram-" + svc + "-" + events.NewID()
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		pc.Passwords[svc] = pw
		t.Setenv(env, string(h))
	}
	return pc
}

// Options parses the copied configuration, as nats-server does at start.
func (pc *ProductionConfig) Options(t testing.TB) *server.Options {
	t.Helper()
	o, err := server.ProcessConfigFile(pc.File)
	if err != nil {
		t.Fatalf("production nats configuration: %v", err)
	}
	return o
}

// SecuredNATS is a JetStream server running the production configuration.
type SecuredNATS struct {
	*ProductionConfig
	Server *server.Server
	log    *violationLog
}

// Violations returns the server's log lines of permission and authorization violations so
// far: a client refused a publish or a subscription its user lacks.
func (s *SecuredNATS) Violations() []string {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	return slices.Clone(s.log.lines)
}

// violationLog is the embedded server's logger: it keeps the violations, drops the rest.
type violationLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *violationLog) keep(format string, v ...any) {
	if line := fmt.Sprintf(format, v...); strings.Contains(line, "Violation") {
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
	}
}

func (l *violationLog) Noticef(format string, v ...any) { l.keep(format, v...) }
func (l *violationLog) Warnf(format string, v ...any)   { l.keep(format, v...) }
func (l *violationLog) Fatalf(format string, v ...any)  { l.keep(format, v...) }
func (l *violationLog) Errorf(format string, v ...any)  { l.keep(format, v...) }
func (l *violationLog) Debugf(string, ...any)           {}
func (l *violationLog) Tracef(string, ...any)           {}

// StartProductionNATS runs one node of the production configuration: everything as the files
// say, but the addresses (client port and monitoring on 127.0.0.1 with ports from the OS), the
// store directory, and without the cluster block (a single node has no routes). The streams
// are applied as engram-admin, as memctl does.
func StartProductionNATS(t testing.TB, tenants ...string) *SecuredNATS {
	t.Helper()
	pc := CopyProductionConfig(t, tenants...)
	o := pc.Options(t)
	o.Host, o.Port = "127.0.0.1", -1
	if o.HTTPPort != 0 {
		o.HTTPHost, o.HTTPPort = "127.0.0.1", -1
	}
	o.StoreDir = t.TempDir()
	o.Cluster = server.ClusterOpts{}
	o.Routes, o.RoutesStr = nil, ""
	o.NoSigs = true
	srv, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("production nats: %v", err)
	}
	log := &violationLog{}
	srv.SetLoggerV2(log, false, false, false)
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("production nats not ready within 10s")
	}
	s := &SecuredNATS{ProductionConfig: pc, Server: srv, log: log}
	_, js := s.Connect(t, "admin")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := stream.Ensure(ctx, js, 2*time.Minute); err != nil {
		t.Fatalf("admin applies the streams: %v", err)
	}
	return s
}

// URL is the NATS_URL of a service's own user: nats://engram-<service>:<password>@host:port.
func (s *SecuredNATS) URL(service string) string {
	u, _ := url.Parse(s.Server.ClientURL())
	u.User = url.UserPassword("engram-"+service, s.Passwords[service])
	return u.String()
}

// Connect connects as a service's user (the admin keeps the default inbox prefix).
func (s *SecuredNATS) Connect(t testing.TB, service string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	if service != "admin" {
		opts = append(opts, nats.CustomInboxPrefix("_INBOX_"+service))
	}
	return connect(t, s.URL(service), opts...)
}

// OpenDoor opens the agents' door as the ingestor's user, as every ingestor does
// (stream.Door): without one, agents' events reach no stream (their publishes find no
// responders).
func (s *SecuredNATS) OpenDoor(t testing.TB) {
	t.Helper()
	nc, _ := s.Connect(t, "ingestor")
	d, err := stream.OpenDoor(nc, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatalf("open the agents' door: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
}

// ConnectAgent connects as a tenant's agent: its nkey and its inbox prefix.
func (s *SecuredNATS) ConnectAgent(t testing.TB, identifier string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	kp, ok := s.Agents[identifier]
	if !ok {
		t.Fatalf("no agent of %s in agents.conf", identifier)
	}
	p, err := natsdeploy.Agent(identifier)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	return connect(t, s.Server.ClientURL(), nats.Nkey(pub, kp.Sign), nats.CustomInboxPrefix(p.InboxPrefix))
}

func connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// MonitorAddr is the host:port the server's monitoring endpoint listens on, "" without one.
func MonitorAddr(o *server.Options) string {
	if o.HTTPPort == 0 && o.HTTPSPort == 0 {
		return ""
	}
	port := o.HTTPPort
	if port == 0 {
		port = o.HTTPSPort
	}
	return net.JoinHostPort(o.HTTPHost, strconv.Itoa(port))
}
