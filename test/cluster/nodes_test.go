package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// serverModule is the nats-server module go.mod requires; the test builds its binary.
const serverModule = "github.com/nats-io/nats-server/v2"

var (
	serverOnce sync.Once
	serverBin  string
	serverErr  error
)

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// natsServerBinary builds nats-server from the module go.mod requires (the module cache has
// it) once, into var/bin/nats-server-<version>, and reuses that binary in later runs.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	serverOnce.Do(func() {
		root := moduleRoot()
		// The version go.mod requires names the cached binary.
		mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err != nil {
			serverErr = err
			return
		}
		version := ""
		for line := range strings.Lines(string(mod)) {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == serverModule {
				version = f[1]
			}
		}
		if version == "" {
			serverErr = fmt.Errorf("go.mod does not require %s", serverModule)
			return
		}
		serverBin = filepath.Join(root, "var", "bin", "nats-server-"+version)
		if _, err := os.Stat(serverBin); err == nil {
			return
		}
		if serverErr = os.MkdirAll(filepath.Dir(serverBin), 0o755); serverErr != nil {
			return
		}
		tmp := fmt.Sprintf("%s.%d", serverBin, os.Getpid())
		cmd := exec.Command("go", "build", "-o", tmp, serverModule)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			serverErr = fmt.Errorf("go build %s: %w\n%s", serverModule, err, out)
			return
		}
		serverErr = os.Rename(tmp, serverBin)
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return serverBin
}

// node is one nats-server process of the cluster.
type node struct {
	name                   string // server_name: nats-1, nats-2, nats-3 (as the shipped routes name them)
	client, route, monitor int
	conf, log              string
	cmd                    *exec.Cmd
	done                   chan struct{}
}

// cluster is three nats-server processes running deploy/production/nats-server.conf (with
// deploy/nats/accounts.conf), each node's file derived from the shipped one by rewriting only
// its name, addresses and store directory.
type cluster struct {
	t     *testing.T
	bin   string
	pc    *testenv.ProductionConfig
	nodes []*node
}

// freePorts asks the OS for n distinct free TCP ports on the loopback interface.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// rewrite replaces each old string of the shipped configuration, which must occur exactly
// once: a shipped file that changed shape fails the test instead of running another config.
func rewrite(t *testing.T, conf string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if n := strings.Count(conf, pairs[i]); n != 1 {
			t.Fatalf("deploy/production/nats-server.conf holds %q %d times, want once: update the cluster test's rewrite", pairs[i], n)
		}
		conf = strings.Replace(conf, pairs[i], pairs[i+1], 1)
	}
	return conf
}

// startCluster writes three node configurations beside the copy of the shipped file (its
// include of ../nats/accounts.conf resolves as in the repository) and starts the servers.
// The service users' password hashes are in the environment (CopyProductionConfig), which
// the server processes inherit.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: natsServerBinary(t), pc: testenv.CopyProductionConfig(t)}
	shipped, err := os.ReadFile(c.pc.File)
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 9)
	for i := range 3 {
		c.nodes = append(c.nodes, &node{name: "nats-" + strconv.Itoa(i+1), client: ports[3*i], route: ports[3*i+1], monitor: ports[3*i+2]})
	}
	logs := t.TempDir()
	for i, n := range c.nodes {
		pairs := []string{
			"server_name: nats-1", "server_name: " + n.name,
			"listen: 0.0.0.0:4222", "listen: 127.0.0.1:" + strconv.Itoa(n.client),
			"http: 127.0.0.1:8222", "http: 127.0.0.1:" + strconv.Itoa(n.monitor),
			"store_dir: /data/jetstream", "store_dir: " + strconv.Quote(filepath.Join(t.TempDir(), "jetstream")),
			"listen: 0.0.0.0:6222", "listen: 127.0.0.1:" + strconv.Itoa(n.route),
		}
		for _, m := range c.nodes {
			pairs = append(pairs, "nats-route://"+m.name+":6222", "nats-route://127.0.0.1:"+strconv.Itoa(m.route))
		}
		n.conf = filepath.Join(filepath.Dir(c.pc.File), n.name+".conf")
		if err := os.WriteFile(n.conf, []byte(rewrite(t, string(shipped), pairs...)), 0o600); err != nil {
			t.Fatal(err)
		}
		n.log = filepath.Join(logs, fmt.Sprintf("nats-%d.log", i+1))
	}
	for _, n := range c.nodes {
		c.start(n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			c.kill(n)
		}
	})
	for _, n := range c.nodes {
		c.waitHealthy(n)
	}
	return c
}

// start runs a node's process (again, after a kill: same store directory).
func (c *cluster) start(n *node) {
	c.t.Helper()
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", n.conf)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", n.name, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		_ = f.Close()
		close(done)
	}(n.done)
}

// kill ends a node with SIGKILL and waits for it.
func (c *cluster) kill(n *node) {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.cmd = nil
}

// lameDuck puts a node in lame-duck mode (SIGUSR2, nats-server --signal ldm) and waits for it
// to exit: it hands its leaderships over, then closes its clients over lame_duck_duration.
func (c *cluster) lameDuck(n *node) {
	c.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		c.t.Fatalf("lame-duck %s: %v", n.name, err)
	}
	select {
	case <-n.done:
	case <-time.After(90 * time.Second):
		c.t.Fatalf("%s still running 90s after entering lame-duck mode; log:\n%s", n.name, tail(n.log))
	}
	n.cmd = nil
}

// waitHealthy waits until the node's monitoring endpoint says the server and its JetStream
// are healthy (/healthz: routes up, the meta group and its stream replicas current).
func (c *cluster) waitHealthy(n *node) {
	c.t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.monitor)
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	c.t.Fatalf("%s not healthy within 90s; log:\n%s", n.name, tail(n.log))
}

// byName returns the node whose server_name is name.
func (c *cluster) byName(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node %q", name)
	return nil
}

// URL is the NATS_URL of a service's user: every node, comma-separated, as in production.
func (c *cluster) URL(service string) string {
	var urls []string
	for _, n := range c.nodes {
		u := url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(n.client), User: url.UserPassword("engram-"+service, c.pc.Passwords[service])}
		urls = append(urls, u.String())
	}
	return strings.Join(urls, ",")
}

// admin connects as engram-admin (memctl's user) to the whole cluster.
func (c *cluster) admin() (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	nc, err := nats.Connect(c.URL("admin"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return nc, js
}

// applyStreams applies MEM and MEM_DLQ at three replicas as the admin, retrying while the
// cluster elects its meta leader.
func (c *cluster) applyStreams(js jetstream.JetStream) {
	c.t.Helper()
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(c.t.Context(), 10*time.Second)
		err = stream.EnsureReplicas(ctx, js, 2*time.Minute, 3)
		cancel()
		if err == nil {
			return
		}
	}
	c.t.Fatalf("apply the streams at three replicas: %v", err)
}

// streamState is the memory stream's cluster as the admin sees it: the leader's server name
// ("" while there is none or the request fails) and whether every replica is current.
func streamState(ctx context.Context, js jetstream.JetStream, name string) (leader string, current bool, replicas int) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return "", false, 0
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		return "", false, info.Config.Replicas
	}
	current = len(info.Cluster.Replicas) == info.Config.Replicas-1
	for _, r := range info.Cluster.Replicas {
		current = current && r.Current && !r.Offline
	}
	return info.Cluster.Leader, current, info.Config.Replicas
}

// waitCurrent waits until both streams have a leader and every replica is current: a
// restarted node has caught up.
func (c *cluster) waitCurrent(js jetstream.JetStream) {
	c.t.Helper()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ok := true
		for _, name := range []string{stream.MemoryStream, stream.DeadLetterStream} {
			leader, current, _ := streamState(c.t.Context(), js, name)
			ok = ok && leader != "" && current
		}
		if ok {
			return
		}
	}
	c.t.Fatal("the streams' replicas not current within 90s")
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
