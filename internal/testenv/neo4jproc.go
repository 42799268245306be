package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// Neo4jProcess is a Neo4j server of the test's own, for tests that must stop and start the
// database (an outage) without disturbing the shared one. It runs the dev stack's launcher
// (deploy/neo4j, built by `make neo4j-start`) on a free port with its data under t.TempDir().
type Neo4jProcess struct {
	URI      string
	User     string
	Password string

	t       testing.TB
	root    string
	dataDir string
	port    int
	logPath string

	env []string // added to the launcher's environment

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// neo4jStartTimeout bounds one start of a test's Neo4j (a first start creates the store).
const neo4jStartTimeout = 3 * time.Minute

// StartNeo4jProcess starts a private Neo4j for t and stops it when t ends. env (NAME=value)
// is added to the launcher's environment: its settings (deploy/neo4j).
func StartNeo4jProcess(t testing.TB, env ...string) *Neo4jProcess {
	t.Helper()
	root := launcherRoot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir := t.TempDir()
	p := &Neo4jProcess{
		URI: "bolt://127.0.0.1:" + strconv.Itoa(port), User: "neo4j", Password: "engram-test-password",
		t: t, root: root, dataDir: filepath.Join(dir, "data"), port: port, logPath: filepath.Join(dir, "neo4j.log"),
		env: env,
	}
	t.Cleanup(p.Stop)
	p.Start()
	return p
}

// Start starts the server (again, on the same port and data) and waits until it answers.
func (p *Neo4jProcess) Start() {
	p.t.Helper()
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		p.t.Fatal("neo4j process already running")
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		p.t.Fatal(err)
	}
	cmd := launcherCommand(p.root, append([]string{
		"NEO4J_BOLT_HOST=127.0.0.1", "NEO4J_BOLT_PORT=" + strconv.Itoa(p.port), "NEO4J_DATA_DIR=" + p.dataDir,
		"NEO4J_USER=" + p.User, "NEO4J_PASSWORD=" + p.Password, "NEO4J_PAGECACHE=64m"}, p.env...))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		_ = logFile.Close()
		p.t.Fatalf("start neo4j: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()

	deadline := time.Now().Add(neo4jStartTimeout)
	for {
		err := p.ping()
		if err == nil {
			return
		}
		select {
		case <-done:
			p.t.Fatalf("neo4j on port %d exited while starting; log: %s", p.port, p.tail())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("neo4j on port %d not ready within %s (%v); log: %s", p.port, neo4jStartTimeout, err, p.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// LauncherCommand is deploy/neo4j's launcher as the tests run it (a small heap, C1 only: a
// test's Neo4j lives for seconds), in the repository's root, with env (NAME=value) added to
// the test's environment; for tests of the launcher itself.
func LauncherCommand(t testing.TB, env ...string) *exec.Cmd {
	t.Helper()
	return launcherCommand(launcherRoot(t), env)
}

func launcherCommand(root string, env []string) *exec.Cmd {
	cmd := exec.Command("java", "-Xms256m", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-cp", "deploy/neo4j/target/engram-neo4j-1.0.0.jar:deploy/neo4j/target/lib/*",
		"dev.engram.neo4j.Launcher")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// launcherRoot is the repository's root once the launcher is known to be built and java found.
func launcherRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	jar := filepath.Join(root, "deploy/neo4j/target/engram-neo4j-1.0.0.jar")
	if _, err := os.Stat(jar); err != nil {
		t.Fatalf("the Neo4j launcher is not built (%v): run `make neo4j-start` once, which builds it", err)
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Fatalf("java not found: install a JDK 17 or 21 to run Neo4j")
	}
	return root
}

func (p *Neo4jProcess) ping() error {
	d, err := neo4j.NewDriverWithContext(p.URI, neo4j.BasicAuth(p.User, p.Password, ""))
	if err != nil {
		return err
	}
	defer func() { _ = d.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return d.VerifyConnectivity(ctx)
}

// Kill ends the server with SIGKILL (a crash) and waits until it is gone.
func (p *Neo4jProcess) Kill() { p.signal(syscall.SIGKILL) }

// Stop shuts the server down (SIGTERM, then SIGKILL after a minute) and waits until it is gone.
func (p *Neo4jProcess) Stop() { p.signal(syscall.SIGTERM) }

func (p *Neo4jProcess) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd, p.done = nil, nil
}

// Driver returns a driver for the server, closed when the test ends.
func (p *Neo4jProcess) Driver(t testing.TB) neo4j.DriverWithContext {
	t.Helper()
	d, err := neo4j.NewDriverWithContext(p.URI, neo4j.BasicAuth(p.User, p.Password, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

func (p *Neo4jProcess) tail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// repoRoot is the module's root directory, found from this file's location.
func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the repository")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("repository root %s: %w", root, err)
	}
	return root, nil
}

// DevNeo4jPID is the process id of the development Neo4j that `make neo4j-start` runs
// (deploy/neo4j writes var/run/neo4j.pid), or 0 when there is none to find; benchmarks read
// its CPU time.
func DevNeo4jPID() int {
	root, err := repoRoot()
	if err != nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(root, "var", "run", "neo4j.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
