package app_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/natsdev"
	"github.com/engram-memory/engram/internal/testenv"
)

// service is an fx app of app.Module (plus opts) as a main assembles it, logging to logs.
type service struct {
	addr string
	logs *testenv.SyncBuffer
	app  *fxtest.App
}

func newService(t *testing.T, env map[string]string, opts ...fx.Option) *service {
	t.Helper()
	s := &service{addr: freeAddr(t), logs: &testenv.SyncBuffer{}}
	var c app.Common
	f := app.NewFlags(flag.NewFlagSet("test", flag.ContinueOnError), func(k string) string {
		if k == "HTTP_ADDR" {
			return s.addr
		}
		return env[k]
	})
	app.BindCommon(f, &c, "test", "127.0.0.1:0")
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	logger := app.NewLogger(s.logs, c)
	s.app = fxtest.New(t, append([]fx.Option{
		app.Module(c),
		fx.Decorate(func() *slog.Logger { return logger }),
		app.Timeouts(c),
		fx.NopLogger,
	}, opts...)...)
	return s
}

// readyz returns /readyz's status code and body.
func (s *service) readyz(t *testing.T) (int, readiness) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + s.addr + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var r readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode /readyz: %v", err)
	}
	return resp.StatusCode, r
}

type readiness struct {
	Status string            `json:"status"`
	Checks []string          `json:"checks"`
	Failed map[string]string `json:"failed"`
}

// TestStartsBeforeNATS: a service started while NATS is not up yet waits for it, saying so,
// and starts once NATS answers, instead of failing.
func TestStartsBeforeNATS(t *testing.T) {
	t.Parallel()
	natsAddr := freeAddr(t)
	_, port, _ := net.SplitHostPort(natsAddr)
	s := newService(t, map[string]string{"NATS_URL": "nats://" + natsAddr})
	started := make(chan error, 1)
	go func() { started <- s.app.Start(t.Context()) }()
	eventually(t, "the service logs that it waits for nats", func() bool {
		return strings.Contains(s.logs.String(), `msg="waiting for nats"`)
	})
	var p int
	_, _ = fmt.Sscan(port, &p)
	srv, err := natsdev.Start(natsdev.Options{Port: p, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if err := <-started; err != nil {
		t.Fatalf("start after NATS came up: %v\n%s", err, s.logs)
	}
	defer s.app.RequireStop()
	if code, r := s.readyz(t); code != http.StatusOK {
		t.Fatalf("/readyz: %d %+v", code, r)
	}
}

// TestNeo4jModuleWaitsForNeo4j is a fresh start of the stack with a cold Neo4j: three
// services with the graph start while Neo4j is down. Each starts at once, logs that it waits
// for Neo4j and reports neo4j unready; once Neo4j answers, all three apply the schema to the
// empty database at about the same moment (the race the schema must tolerate) and become
// ready, and the schema is complete.
func TestNeo4jModuleWaitsForNeo4j(t *testing.T) {
	t.Parallel()
	srv, _, _ := testenv.NATS(t)
	neo := testenv.StartNeo4jProcess(t) // creates the store; the schema is not applied
	neo.Kill()
	env := map[string]string{"NATS_URL": srv.ClientURL(), "NEO4J_URI": neo.URI, "NEO4J_USER": neo.User, "NEO4J_PASSWORD": neo.Password}
	var services []*service
	for range 3 {
		var driver neo4j.DriverWithContext
		s := newService(t, env, app.Neo4jModule(), fx.Populate(&driver))
		s.app.RequireStart()
		defer s.app.RequireStop()
		if driver == nil {
			t.Fatal("no driver provided")
		}
		services = append(services, s)
	}
	for i, s := range services {
		code, r := s.readyz(t)
		if code != http.StatusServiceUnavailable || !strings.Contains(r.Failed["neo4j"], "waiting for neo4j") || r.Failed["nats"] != "" {
			t.Errorf("service %d, Neo4j down: /readyz %d %+v, want 503 naming neo4j only", i, code, r)
		}
		eventually(t, "the service logs that it waits for neo4j", func() bool {
			return strings.Contains(s.logs.String(), `msg="waiting for neo4j"`)
		})
	}
	neo.Start()
	for i, s := range services {
		eventually(t, fmt.Sprintf("service %d is ready", i), func() bool {
			code, _ := s.readyz(t)
			return code == http.StatusOK
		})
		if strings.Contains(s.logs.String(), "level=ERROR") {
			t.Errorf("service %d logged an error:\n%s", i, s.logs)
		}
	}
	d := neo.Driver(t)
	have := map[string]bool{}
	for _, show := range []string{"SHOW CONSTRAINTS YIELD name", "SHOW INDEXES YIELD name"} {
		res, err := neo4j.ExecuteQuery(t.Context(), d, show, nil, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range res.Records {
			have[rec.Values[0].(string)] = true
		}
	}
	for _, n := range graph.SchemaNames() {
		if !have[n] {
			t.Errorf("rule %s missing", n)
		}
	}
}

// eventually polls cond until it holds, failing the test after a deadline generous enough for
// a loaded machine (Neo4j's first start of a store takes a while there).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting until %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddr returns a local address nothing listens on (it was free a moment ago).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
