package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ScenarioDurability measures the durability setting of deploy/production/nats-server.conf.
const ScenarioDurability = "durability" // sync_interval: always vs nats-server's default, R3

func init() {
	scenarios[ScenarioDurability] = durability
}

// durability: what `sync_interval: always` (deploy/production/nats-server.conf; every
// write fsynced before it counts, on each replica) costs the ingest path's store, next to
// nats-server's default (fsync every two minutes, which loses acknowledged writes when a
// quorum of nodes loses power at once). Two private three-node JetStream clusters run
// in-process on loopback (file storage in the run's directory), one per setting, each with
// the raw publisher's copy of the memory stream at three replicas; at each concurrency level
// synchronous publishes of Engram events run against them in the order default, always,
// always, default (so that a drift of the machine's load falls on both alike), and each row
// is the mean of its two steps; the always row is divided by the default's. The HTTP and
// validation work of an ingestor is the same under both settings, so the ratio is the
// store's share only: the cost on POST throughput is at most this.
func durability(ctx context.Context, r *runner) error {
	settings := []struct {
		name   string
		always bool
	}{{"sync_interval default (2m)", false}, {"sync_interval always", true}}
	pubs := make([]*rawPublisher, len(settings))
	for i, v := range settings {
		p, stop, err := durabilityCluster(ctx, r, v.always)
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		defer stop()
		pubs[i] = p
	}
	for _, c := range r.cfg.Concurrency {
		var rows [2]Result
		for step, i := range []int{0, 1, 1, 0} {
			rate, sum := pubs[i].sync(ctx, c, r.cfg.Warmup, r.cfg.Duration)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if step < 2 {
				rows[i] = latencyResult(ScenarioDurability, fmt.Sprintf("%s c=%d", settings[i].name, c), "events/s", rate, sum)
				continue
			}
			// The second step of the setting: the row is the mean of both.
			res := rows[i]
			res.Value = (res.Value + rate) / 2
			res.Count += sum.Count
			res.Errors += sum.Errors
			if sum.P50 > 0 {
				res.P50, res.P99 = (res.P50+ms(sum.P50))/2, (res.P99+ms(sum.P99))/2
			}
			rows[i] = res
		}
		note := fmt.Sprintf("sync publish of %d-byte Engram messages, 3-node cluster in-process, R3; mean of 2 steps (ABBA)", pubs[0].avgSize)
		rows[0] = withNote(rows[0], note)
		rows[1] = ratioTo(withNote(rows[1], note), rows[0], 0)
		for _, res := range rows {
			r.report.Add(res)
			r.log.Info("measured", "row", res.Name(), "events_per_s", int(res.Value), "ratio", fmt.Sprintf("%.2f", res.Ratio))
		}
	}
	return nil
}

// durabilityCluster starts a cluster with the setting and the raw publisher's stream on it
// at three replicas; stop shuts the cluster down and removes its store.
func durabilityCluster(ctx context.Context, r *runner, always bool) (*rawPublisher, func(), error) {
	dir, err := os.MkdirTemp(r.stack.Dir, "durability-")
	if err != nil {
		return nil, nil, err
	}
	urls, stopServers, err := startBenchCluster(dir, always)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	nc, err := nats.Connect(strings.Join(urls, ","))
	stop := func() {
		if nc != nil {
			nc.Close()
		}
		stopServers()
		_ = os.RemoveAll(dir)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	p, err := durabilityStream(ctx, r, nc)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return p, stop, nil
}

// durabilityStream creates the raw publisher's stream on nc's cluster at three replicas.
func durabilityStream(ctx context.Context, r *runner, nc *nats.Conn) (*rawPublisher, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	sample := Mix(r.tenants, groupRawPublish, 2*EventsPerUser*16, time.Now().UTC())
	var raw *rawPublisher
	// The cluster elects its meta leader first: stream creation waits for it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		raw, err = newRawPublisher(ctx, &Stack{JS: js, RunID: r.stack.RunID}, sample)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, raw.stream)
	if err != nil {
		return nil, err
	}
	cfg := s.CachedInfo().Config
	cfg.Replicas = 3
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("scale the stream to three replicas: %w", err)
	}
	if err := waitReplicas(ctx, js, raw.stream); err != nil {
		return nil, err
	}
	return raw, nil
}

// waitReplicas waits until the stream has a leader and both followers are current.
func waitReplicas(ctx context.Context, js jetstream.JetStream, name string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		s, err := js.Stream(ctx, name)
		if err != nil {
			continue
		}
		ci := s.CachedInfo().Cluster
		if ci == nil || ci.Leader == "" || len(ci.Replicas) != 2 {
			continue
		}
		ok := true
		for _, p := range ci.Replicas {
			ok = ok && p.Current
		}
		if ok {
			return nil
		}
	}
	return errors.New("stream replicas not current within 30s")
}

// startBenchCluster runs three JetStream servers in-process, routed to each other on
// loopback, with the store under dir and every write fsynced when always is set. It returns
// their client URLs and a function that shuts them down.
func startBenchCluster(dir string, always bool) ([]string, func(), error) {
	var ls []net.Listener
	var routes []int
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ls = append(ls, l)
		routes = append(routes, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	var srvs []*server.Server
	stop := func() {
		for _, s := range srvs {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
	var urls []string
	for i := range 3 {
		o := &server.Options{
			ServerName: "bench-" + strconv.Itoa(i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: filepath.Join(dir, strconv.Itoa(i+1)), NoSigs: true,
			SyncAlways: always,
			Cluster:    server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: routes[i]},
		}
		for _, p := range routes {
			o.Routes = append(o.Routes, server.RoutesFromStr("nats-route://127.0.0.1:"+strconv.Itoa(p))...)
		}
		s, err := server.NewServer(o)
		if err != nil {
			stop()
			return nil, nil, err
		}
		go s.Start()
		srvs = append(srvs, s)
		if !s.ReadyForConnections(10 * time.Second) {
			stop()
			return nil, nil, fmt.Errorf("bench cluster node %d not ready within 10s", i+1)
		}
		urls = append(urls, s.ClientURL())
	}
	return urls, stop, nil
}
