package projection

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// projectorBinary builds cmd/projector once per test run.
func projectorBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "engram-projector-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "projector")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/engram-memory/engram/cmd/projector").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/projector: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// process is a projector running as a child process.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	logPath string
}

// startProcess runs the projector binary against nats with group's settings.
func startProcess(t *testing.T, natsURL, group string, n int, extraEnv ...string) *process {
	t.Helper()
	n4j := testenv.Neo4jSettings()
	logPath := filepath.Join(t.TempDir(), fmt.Sprintf("projector-%d.log", n))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(projectorBinary(t))
	cmd.Env = append(os.Environ(),
		"NATS_URL="+natsURL, "NEO4J_URI="+n4j.URI, "NEO4J_USER="+n4j.User, "NEO4J_PASSWORD="+n4j.Password,
		"HTTP_ADDR=127.0.0.1:0", "PROJECTOR_GROUP="+group, "MULTI_TENANT=true", "LOG_LEVEL=info",
		"PROJECTOR_PIN_TIMEOUT=2s", "PROJECTOR_ACK_WAIT=3s", "PROJECTOR_RETRY_MIN=20ms", "PROJECTOR_RETRY_MAX=500ms",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start projector: %v", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill ends the process with SIGKILL and waits for it.
func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// terminate asks the process to stop (SIGTERM) and waits; it reports whether it exited 0.
func (p *process) terminate(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("projector did not stop within 30s of SIGTERM")
		p.kill()
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("projector exited %d after SIGTERM; log:\n%s", code, p.log())
	}
}

func (p *process) log() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// waitReady waits until the process answers /readyz with 200 (started, warmed up).
func (p *process) waitReady(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(p.logPath)
		m := listenLine.FindSubmatch(b)
		if m == nil {
			continue
		}
		resp, err := http.Get(string(m[1]) + "/readyz")
		if err != nil {
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return
		}
	}
	t.Fatalf("projector not ready within 2 minutes; log:\n%s", p.log())
}

var listenLine = regexp.MustCompile(`msg="http listening".* addr=(http://[0-9.:]+)`)

// metrics returns a counter's sum from the process's /metrics.
func (p *process) metric(t *testing.T, name string) float64 {
	t.Helper()
	b, _ := os.ReadFile(p.logPath)
	m := listenLine.FindSubmatch(b)
	if m == nil {
		return -1
	}
	resp, err := http.Get(string(m[1]) + "/metrics")
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err == nil {
				sum += f
			}
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return sum
}

// progress sums group's checkpoints.
func progress(ctx context.Context, t testing.TB, d neo4j.DriverWithContext, group string) uint64 {
	t.Helper()
	var sum uint64
	for part := range 8 {
		seq, err := ReadCheckpoint(ctx, d, "", CheckpointName(group, part))
		if err == nil {
			sum += seq
		}
	}
	return sum
}

// caughtUp reports whether group's checkpoints cover everything published so far.
func caughtUp(ctx context.Context, d neo4j.DriverWithContext, group string, pub *published) bool {
	for part, seq := range pub.snapshot() {
		got, err := ReadCheckpoint(ctx, d, "", CheckpointName(group, part))
		if err != nil || got < seq {
			return false
		}
	}
	return true
}

// publishInBackground publishes evs in chunks with short pauses, as a load arriving over time.
func publishInBackground(ctx context.Context, t *testing.T, js jetstream.JetStream, pub *published, evs []*events.Event) <-chan struct{} {
	return publishPaced(ctx, t, js, pub, evs, 30*time.Millisecond)
}

// publishPaced publishes evs in chunks of 100 with a pause after each.
func publishPaced(ctx context.Context, t *testing.T, js jetstream.JetStream, pub *published, evs []*events.Event, pause time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := stream.NewPublisher(js, 10*time.Second)
		for i, ev := range evs {
			st, err := p.Publish(ctx, ev)
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			tok, _ := events.TenantToken(ev.User)
			pub.add(tok, st.Sequence)
			if i%100 == 99 {
				time.Sleep(pause)
			}
		}
	}()
	return done
}

// TestCrashSIGKILL kills the projector process with SIGKILL at random moments of a load of
// thousands of mixed events, restarts it each time, and compares the final graph with a
// clean projection of the same events: exactly-once effects across crashes.
func TestCrashSIGKILL(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _, js := testenv.NATS(t)
	d := testNeo4j(t)
	var sc scope
	var tenants []tenant
	for i := range 30 {
		tenants = append(tenants, newTenant(t, fmt.Sprintf("crash-%d", i)))
	}
	sc.add(tenants...)
	sc.tools = []string{"crash-a-" + events.NewID(), "crash-b-" + events.NewID(), "crash-c-" + events.NewID()}
	cleanupScope(t, d, &sc)
	group := testGroup(t, "crash")
	cleanupCheckpoints(t, d, group)

	evs := genLoad(tenants, sc.tools, 3000, uint64(time.Now().UnixNano()), loadOptions{erase: true})
	pub := newPublished()
	// Slow enough (about 8 s) that the kills fall while events still arrive: the projector
	// applies them faster than they come.
	published := publishPaced(ctx, t, js, pub, evs, 250*time.Millisecond)

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const kills = 5
	var killedMidway int
	for i := range kills {
		p := startProcess(t, s.ClientURL(), group, i)
		before := progress(ctx, t, d, group)
		// Half the kills come once the process has applied something, the others at any
		// moment (start-up included).
		if i%2 == 0 {
			for deadline := time.Now().Add(20 * time.Second); progress(ctx, t, d, group) == before && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
		}
		time.Sleep(time.Duration(100+rnd.IntN(900)) * time.Millisecond)
		select {
		case <-published:
			if !caughtUp(ctx, d, group, pub) {
				killedMidway++
			}
		default:
			killedMidway++
		}
		p.kill()
		t.Logf("kill %d: checkpoints sum %d -> %d", i+1, before, progress(ctx, t, d, group))
	}
	<-published
	last := startProcess(t, s.ClientURL(), group, kills)
	waitCaughtUp(ctx, t, d, group, pub, 4*time.Minute)
	last.terminate(t)
	if killedMidway < 3 {
		t.Errorf("only %d of %d kills hit an unfinished projection", killedMidway, kills)
	}

	crashed := fingerprintOf(ctx, t, d, sc)
	clean := cleanProjection(t, sc, d, js, pub)
	if err := fingerprint.Compare(clean, crashed, 30); err != nil {
		t.Fatalf("crashed projection differs from a clean one: %v", err)
	}
	t.Logf("%d events, graph %s", len(evs), crashed)
}

// TestScaleOutTwoProcesses runs two projector processes of one group over interleaved events
// of many tenants: each tenant's messages chain in stored order, and the graph equals the one
// a single projector builds.
func TestScaleOutTwoProcesses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _, js := testenv.NATS(t)
	d := testNeo4j(t)
	var sc scope
	var tenants []tenant
	for i := range 60 {
		tenants = append(tenants, newTenant(t, fmt.Sprintf("scale-%d", i)))
	}
	sc.add(tenants...)
	sc.tools = []string{"scale-a-" + events.NewID(), "scale-b-" + events.NewID()}
	cleanupScope(t, d, &sc)
	group := testGroup(t, "scale")
	cleanupCheckpoints(t, d, group)

	procs := []*process{startProcess(t, s.ClientURL(), group, 0), startProcess(t, s.ClientURL(), group, 1)}
	evs := genLoad(tenants, sc.tools, 2500, 11, loadOptions{erase: true})
	pub := newPublished()
	<-publishInBackground(ctx, t, js, pub, evs)
	waitCaughtUp(ctx, t, d, group, pub, 4*time.Minute)
	for i, p := range procs {
		t.Logf("process %d applied %v events", i, p.metric(t, "engram_projector_events_applied_total"))
	}
	for _, p := range procs {
		p.terminate(t)
	}

	// Per-tenant order: every conversation is one chain in stored (publish) order. What a
	// tenant writes after its erasure and before its re-creation is dropped (erased.go).
	want := map[string][]string{}
	convs := map[string][]string{} // user -> conversations
	erased := map[string]bool{}
	for _, ev := range evs {
		switch d := ev.Data.(type) {
		case events.MessageAdded:
			if erased[ev.User] {
				continue
			}
			if len(want[d.ConversationID]) == 0 {
				convs[ev.User] = append(convs[ev.User], d.ConversationID)
			}
			want[d.ConversationID] = append(want[d.ConversationID], d.MessageID)
		case events.UserErased:
			for _, c := range convs[ev.User] {
				delete(want, c)
			}
			convs[ev.User] = nil
			erased[ev.User] = true
		case events.UserRecreated:
			erased[ev.User] = false
		}
	}
	recs := query(ctx, t, d, `UNWIND $owners AS o
		MATCH (c:Conversation {owner: o})-[:FIRST_MESSAGE]->(f)
		MATCH p = (f)-[:NEXT_MESSAGE*0..]->(m) WHERE NOT (m)-[:NEXT_MESSAGE]->()
		RETURN c.id AS conv, [n IN nodes(p) | n.id] AS ids`, map[string]any{"owners": toAnySlice(sc.owners)})
	if len(recs) != len(want) {
		t.Errorf("%d chains, want %d conversations", len(recs), len(want))
	}
	for _, rec := range recs {
		conv, _ := rec.Get("conv")
		ids, _ := rec.Get("ids")
		if fmt.Sprint(ids) != fmt.Sprint(want[conv.(string)]) {
			t.Errorf("conversation %s: chain %v, want %v", conv, ids, want[conv.(string)])
		}
	}

	two := fingerprintOf(ctx, t, d, sc)
	one := cleanProjection(t, sc, d, js, pub)
	if err := fingerprint.Compare(one, two, 30); err != nil {
		t.Fatalf("two processes differ from one: %v", err)
	}
}

// TestNeo4jOutage kills a private Neo4j in the middle of a load: the projector retries (never
// dead-letters), catches up once Neo4j is back, and the graph equals a clean projection.
func TestNeo4jOutage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, _, js := testenv.NATS(t)
	start := time.Now()
	neo := testenv.StartNeo4jProcess(t)
	d := neo.Driver(t)
	if err := graph.ApplySchema(ctx, d, ""); err != nil {
		t.Fatal(err)
	}
	t.Logf("private neo4j ready after %s", time.Since(start))
	var sc scope
	var tenants []tenant
	for i := range 20 {
		tenants = append(tenants, newTenant(t, fmt.Sprintf("outage-%d", i)))
	}
	sc.add(tenants...)
	sc.tools = []string{"outage-a", "outage-b"}
	group := testGroup(t, "outage")
	cfg := testConfig(group)
	cfg.RetryMax = time.Second
	_, reg, stop := startProjector(t, cfg, d, js)

	evs := genLoad(tenants, sc.tools, 1000, 5, loadOptions{erase: true})
	pub := newPublished()
	published := publishInBackground(ctx, t, js, pub, evs)
	// A fresh private Neo4j plans every statement at its first use: on a loaded machine the
	// first commits take a while.
	for deadline := time.Now().Add(90 * time.Second); progress(ctx, t, d, group) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("nothing applied within 90s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("killing neo4j at checkpoints sum %d", progress(ctx, t, d, group))
	neo.Kill()
	for deadline := time.Now().Add(30 * time.Second); counter(t, reg, "engram_projector_retries_total", map[string]string{"cause": retryNeo4j}) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no retry within 30s of the outage")
		}
		time.Sleep(50 * time.Millisecond)
	}
	<-published
	t.Logf("outage noticed after %s", time.Since(start))
	neo.Start()
	t.Logf("neo4j back after %s", time.Since(start))
	waitCaughtUp(ctx, t, d, group, pub, 4*time.Minute)
	t.Logf("caught up after %s", time.Since(start))
	stop()
	if n := counter(t, reg, "engram_projector_dead_lettered_total", nil); n != 0 {
		t.Errorf("%v events dead-lettered during the outage", n)
	}
	t.Logf("retries: %v", counter(t, reg, "engram_projector_retries_total", nil))

	survived := fingerprintOf(ctx, t, d, sc)
	clean := cleanProjection(t, sc, d, js, pub)
	t.Logf("clean projection done after %s", time.Since(start))
	if err := fingerprint.Compare(clean, survived, 30); err != nil {
		t.Fatalf("projection through the outage differs from a clean one: %v", err)
	}
}
