package testenv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
)

// Stack is Engram running as in production: the ingestor, projector and query binaries as
// separate processes, on a JetStream server of the test's own and the shared local Neo4j.
type Stack struct {
	NATSURL      string
	IngestorURL  string
	QueryURL     string
	ProjectorURL string
	Group        string // the projector group: checkpoint names are <Group>-p<n>
	procs        map[string]*exec.Cmd
	env          []string
	serviceEnv   map[string][]string
	bin          string
	t            testing.TB
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries builds cmd/ingestor, cmd/projector, cmd/query and cmd/memctl once per test process
// and returns the directory holding them.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "engram-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+string(os.PathSeparator), "./cmd/...")
		cmd.Dir = moduleRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/...: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// StartStack starts the three services against a fresh embedded JetStream and the local
// Neo4j, waits until each answers /readyz, and stops them when the test ends. extraEnv
// (KEY=VALUE) is passed to every service.
func StartStack(t testing.TB, extraEnv ...string) *Stack {
	t.Helper()
	return StartStackWith(t, StackOptions{Env: extraEnv})
}

// StackOptions configure StartStackWith.
type StackOptions struct {
	// NATSURL is the JetStream server the services use; empty: a fresh embedded one with the
	// streams applied. Stack.NATSURL is this URL.
	NATSURL string
	// Env (KEY=VALUE) is passed to every service; ServiceEnv to one service (by binary name)
	// after Env, so it wins: each service's own NATS user, for instance.
	Env        []string
	ServiceEnv map[string][]string
}

// StartStackWith is StartStack with a NATS server of the caller's and settings per service.
func StartStackWith(t testing.TB, o StackOptions) *Stack {
	t.Helper()
	if o.NATSURL == "" {
		srv, _, _ := NATS(t)
		o.NATSURL = srv.ClientURL()
	}
	n := Neo4jSettings()
	s := &Stack{
		NATSURL:    o.NATSURL,
		Group:      "e2e-" + events.NewID()[24:],
		procs:      map[string]*exec.Cmd{},
		serviceEnv: o.ServiceEnv,
		bin:        Binaries(t),
		t:          t,
	}
	s.env = append(os.Environ(),
		"NATS_URL="+s.NATSURL, "NEO4J_URI="+n.URI, "NEO4J_USER="+n.User, "NEO4J_PASSWORD="+n.Password,
		"PROJECTOR_GROUP="+s.Group, "HTTP_ADDR=127.0.0.1:0", "LOG_FORMAT=text", "LOG_LEVEL=info",
		"PROJECTOR_BATCH_WAIT=5ms",
		// Tests share two cores with Neo4j and each other: let read-your-writes and reads wait
		// longer.
		"CONSISTENCY_WAIT=30s", "READ_TIMEOUT=30s")
	s.env = append(s.env, o.Env...)
	s.IngestorURL = s.Start("ingestor")
	s.ProjectorURL = s.Start("projector")
	s.QueryURL = s.Start("query")
	t.Cleanup(func() {
		d := Neo4j(t)
		_, _ = neo4j.ExecuteQuery(context.Background(), d,
			"MATCH (c:EngramCheckpoint) WHERE c.name STARTS WITH $prefix DELETE c",
			map[string]any{"prefix": s.Group + "-"}, neo4j.EagerResultTransformer)
	})
	return s
}

var listening = regexp.MustCompile(`addr=http://(127\.0\.0\.1:\d+)`)

// Start runs one service binary and returns its base URL once it is ready.
func (s *Stack) Start(name string) string {
	s.t.Helper()
	return s.StartAs(name, name)
}

// StartAs runs the service binary (with binary's ServiceEnv) as the instance name, so that a
// stack can run several of one service: StartAs("projector-2", "projector"). Stop and Kill
// take the instance name.
func (s *Stack) StartAs(name, binary string) string {
	t := s.t
	t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, binary))
	cmd.Env = append(slices.Clip(s.env), s.serviceEnv[binary]...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	s.procs[name] = cmd
	t.Cleanup(func() { s.Stop(name) })
	addr := make(chan string, 1)
	var logMu sync.Mutex
	var logTail []string
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			logTail = append(logTail, line)
			if len(logTail) > 50 {
				logTail = logTail[1:]
			}
			logMu.Unlock()
			if m := listening.FindStringSubmatch(line); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
	}()
	tail := func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Join(logTail, "\n")
	}
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not listen within 60s; log:\n%s", name, tail())
	}
	// Services start without waiting for Neo4j and report it on /readyz until it answers,
	// the schema is applied and they are warmed up: on a loaded machine that takes a while.
	const readyWithin = 3 * time.Minute
	deadline := time.Now().Add(readyWithin)
	var last string
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
			last = strings.TrimSpace(string(body))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s within %s (last /readyz: %s); log:\n%s", name, base, readyWithin, last, tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends a service gracefully (SIGTERM), killing it after 20 s.
func (s *Stack) Stop(name string) {
	cmd := s.procs[name]
	if cmd == nil || cmd.Process == nil {
		return
	}
	delete(s.procs, name)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Kill ends a service with SIGKILL, as a crash would, and waits for it.
func (s *Stack) Kill(name string) {
	cmd := s.procs[name]
	if cmd == nil || cmd.Process == nil {
		return
	}
	delete(s.procs, name)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Cleanup deletes every node the given users own from the shared Neo4j.
func Cleanup(t testing.TB, d neo4j.DriverWithContext, users ...string) {
	t.Helper()
	for _, u := range users {
		tok, err := events.TenantToken(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, label := range graph.OwnedLabels {
			for {
				res, err := neo4j.ExecuteQuery(context.Background(), d,
					"MATCH (n:"+label+" {owner: $owner}) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS deleted",
					map[string]any{"owner": tok}, neo4j.EagerResultTransformer)
				if err != nil {
					t.Errorf("cleanup %s: %v", u, err)
					return
				}
				if n, _ := res.Records[0].Get("deleted"); n.(int64) == 0 {
					break
				}
			}
		}
	}
}
