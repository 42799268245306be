package projection

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/prometheus/client_golang/prometheus"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/stream"
)

// ErrNotRunning is what Ready reports before Start and after Stop.
var ErrNotRunning = errors.New("projector not running")

// Projector consumes the memory stream's partitions and applies them to the graph: one worker
// per partition of Config.Partitions, each competing with the other processes of its group
// for the partition's pinned consumer.
type Projector struct {
	cfg     Config
	driver  neo4j.DriverWithContext
	js      jetstream.JetStream
	log     *slog.Logger
	reg     prometheus.Registerer
	metrics *Metrics
	dlq     *DeadLetters

	warm       *warmer
	progress   *lagCollector
	graphReady <-chan struct{} // closed once the schema is applied (nil: not waited for)

	mu         sync.Mutex // serializes Start and Stop
	running    atomic.Bool
	warmed     atomic.Bool // the first warm-up finished: the workers pull
	stop, hard context.CancelFunc
	workers    []*worker
	done       sync.WaitGroup
}

// Option configures a Projector.
type Option func(*Projector) error

// WithLogger logs through l (default: nothing is logged).
func WithLogger(l *slog.Logger) Option {
	return func(p *Projector) error {
		if l == nil {
			return errors.New("projection: nil logger")
		}
		p.log = l
		return nil
	}
}

// WithRegisterer registers the metrics on r (default: a registry of the Projector's own).
func WithRegisterer(r prometheus.Registerer) Option {
	return func(p *Projector) error {
		if r == nil {
			return errors.New("projection: nil registerer")
		}
		p.reg = r
		return nil
	}
}

// WithGraphReady makes the projector wait, before its warm-up, until ready is closed: the
// schema is applied (app.Neo4j.Connected), so the warm-up plans the statements against the
// indexes they will use.
func WithGraphReady(ready <-chan struct{}) Option {
	return func(p *Projector) error {
		if ready == nil {
			return errors.New("projection: nil graph-ready channel")
		}
		p.graphReady = ready
		return nil
	}
}

// New returns a Projector of cfg over the Neo4j driver and JetStream; Start runs it.
func New(cfg Config, driver neo4j.DriverWithContext, js jetstream.JetStream, opts ...Option) (*Projector, error) {
	if err := cfg.validateOwn(); err != nil {
		return nil, err
	}
	if driver == nil || js == nil {
		return nil, errors.New("projection: a Neo4j driver and a JetStream handle are required")
	}
	p := &Projector{cfg: cfg, driver: driver, js: js,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), reg: prometheus.NewRegistry()}
	for _, o := range opts {
		if err := o(p); err != nil {
			return nil, err
		}
	}
	// instance tells the processes (and in-process projectors) of one group apart in logs.
	instance := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	p.log = p.log.With("component", "projector", "group", cfg.Group, "instance", instance)
	m, err := NewMetrics(p.reg)
	if err != nil {
		return nil, fmt.Errorf("projection metrics: %w", err)
	}
	p.metrics = m
	timeout := cfg.Common.PublishTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	p.dlq = NewDeadLetters(js, cfg.Group, timeout)
	p.warm = &warmer{driver: driver, database: cfg.Common.Neo4j.Database, cold: true}
	p.progress = newLagCollector(cfg.Group, cfg.Partitions, driver, cfg.Common.Neo4j.Database, js.Conn())
	if err := m.register(p.progress); err != nil {
		return nil, fmt.Errorf("projection metrics: %w", err)
	}
	return p, nil
}

// warmer runs Warm once at start and again after Neo4j was unreachable (a restarted server
// has an empty plan cache): one worker plans the statements while the others wait, instead of
// every partition planning them at once.
type warmer struct {
	driver   neo4j.DriverWithContext
	database string

	mu   sync.Mutex
	cold bool
}

func (w *warmer) markCold() {
	w.mu.Lock()
	w.cold = true
	w.mu.Unlock()
}

func (w *warmer) ensure(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.cold {
		return nil
	}
	if err := Warm(ctx, w.driver, w.database); err != nil {
		return err
	}
	w.cold = false
	return nil
}

// ConsumerConfig is the durable consumer of a group's partition: deploy/nats's definition,
// named "<group>-p<partition>", with the configured ack wait and pin timeout.
func ConsumerConfig(cfg Config, partition int) (jetstream.ConsumerConfig, error) {
	c, err := natsdeploy.ProjectorConsumer(partition)
	if err != nil {
		return c, err
	}
	c.Durable = CheckpointName(cfg.Group, partition)
	c.Name = ""
	c.Description = fmt.Sprintf("Engram projector group %s, partition %d: applies events to Neo4j in stored order.", cfg.Group, partition)
	if cfg.AckWait > 0 {
		c.AckWait = cfg.AckWait
	}
	if cfg.PinTimeout > 0 {
		c.PinnedTTL = cfg.PinTimeout
	}
	if len(c.PriorityGroups) != 1 || c.PriorityPolicy != jetstream.PriorityPolicyPinned {
		return c, fmt.Errorf("consumer-projector.json: want one priority group with the pinned_client policy")
	}
	return c, nil
}

// Start creates or updates the consumers of the configured partitions (a failure fails
// start-up) and starts one worker per partition.
func (p *Projector) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running.Load() {
		return errors.New("projection: already started")
	}
	mem, err := p.js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return fmt.Errorf("projector: stream %s: %w", stream.MemoryStream, err)
	}
	var workers []*worker
	var group *committer
	if p.cfg.InFlight > 0 {
		group = newCommitter(p.cfg.InFlight, p.cfg.CommitInterval, p.log)
	}
	for _, part := range p.cfg.Partitions {
		cc, err := ConsumerConfig(p.cfg, part)
		if err != nil {
			return err
		}
		cons, err := p.js.CreateOrUpdateConsumer(ctx, stream.MemoryStream, cc)
		if err != nil {
			return fmt.Errorf("projector: apply consumer %s: %w", cc.Durable, err)
		}
		workers = append(workers, &worker{
			partition: part, consumer: cc.Durable, filter: cc.FilterSubject, cfg: p.cfg,
			group: cc.PriorityGroups[0], js: p.js, ccfg: cc, cons: cons, stream: mem, driver: p.driver,
			database: p.cfg.Common.Neo4j.Database, dlq: p.dlq, metrics: p.metrics, warm: p.warm, progress: p.progress, committer: group,
			log:       p.log.With("partition", part),
			erasures:  newErasures(p.js),
			multiUser: p.cfg.Common.MultiTenant,
			backoff:   Backoff{Min: p.cfg.RetryMin, Max: p.cfg.RetryMax},
			// A pinned process renews its pin with every pull request; an idle one sends one
			// per expiry, three per pin timeout.
			pullExpiry: min(max(p.cfg.PinTimeout/3, time.Second), 30*time.Second),
		})
	}
	byPartition := map[int]*worker{}
	for _, w := range workers {
		byPartition[w.partition] = w
	}
	p.progress.setHolds(func(ctx context.Context, part int) bool {
		w := byPartition[part]
		return w != nil && w.holds(ctx)
	})
	stop, cancelStop := context.WithCancel(context.Background())
	hard, cancelHard := context.WithCancel(context.Background())
	p.stop, p.hard, p.workers = cancelStop, cancelHard, workers
	p.warmed.Store(false)
	p.running.Store(true)
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		// Warm-up before the first pull: the first events are applied with planned
		// statements, and no partition is taken (JetStream pins a partition to the process
		// whose pull receives its first event) by a process that cannot apply it yet.
		if !p.warmUp(stop) {
			return
		}
		p.releaseDeadPins(stop)
		p.warmed.Store(true)
		for _, w := range workers {
			w.init(stop)
			p.done.Add(1)
			go func() {
				defer p.done.Done()
				_ = w.run(stop, hard)
			}()
		}
		p.log.Info("projector consuming", "partitions", p.cfg.Partitions)
	}()
	p.log.Info("projector started", "partitions", p.cfg.Partitions, "batch_size", p.cfg.BatchSize, "batch_wait", p.cfg.BatchWait,
		"in_flight", p.cfg.InFlight, "commit_interval", p.cfg.CommitInterval, "pin_timeout", p.cfg.PinTimeout)
	return nil
}

// warmUp runs the warm-up until it succeeds or stop ends (false), logging what it waits for.
func (p *Projector) warmUp(stop context.Context) bool {
	backoff := Backoff{Min: p.cfg.RetryMin, Max: min(p.cfg.RetryMax, 5*time.Second)}
	start := time.Now()
	if p.graphReady != nil {
		select {
		case <-p.graphReady:
		default:
			p.log.Info("waiting for the neo4j schema before the warm-up")
			select {
			case <-p.graphReady:
			case <-stop.Done():
				return false
			}
		}
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(stop, 2*time.Minute)
		err := p.warm.ensure(ctx)
		cancel()
		if err == nil {
			p.openConnections(stop)
			p.log.Info("projector warmed up", "elapsed", time.Since(start).Round(time.Millisecond))
			return true
		}
		if stop.Err() != nil {
			return false
		}
		p.log.Warn("waiting for neo4j to warm up the projection statements", "attempt", attempt, "err", err)
		if !sleep(stop, backoff.Delay(attempt)) {
			return false
		}
	}
}

// openConnections opens one Bolt connection per partition (they stay in the driver's pool), so
// that a partition's first transaction, a take-over's above all, does not pay for connecting
// and authenticating. Failures are ignored: the transaction connects then.
func (p *Projector) openConnections(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Every transaction stays open until all have begun, so each holds a connection of its own.
	var wg, began sync.WaitGroup
	release := make(chan struct{})
	for range p.cfg.Partitions {
		began.Add(1)
		wg.Go(func() {
			sess := p.driver.NewSession(ctx, neo4j.SessionConfig{AccessMode: neo4j.AccessModeWrite, DatabaseName: p.cfg.Common.Neo4j.Database})
			defer func() { _ = sess.Close(context.WithoutCancel(ctx)) }()
			tx, err := sess.BeginTransaction(ctx)
			began.Done()
			if err != nil {
				return
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			_ = tx.Rollback(context.WithoutCancel(ctx))
		})
	}
	began.Wait()
	close(release)
	wg.Wait()
}

// releaseDeadPins unpins partitions pinned to a process that no longer pulls: a pin with no
// pull request waiting on the consumer belongs to a process that died (a live one always has
// a pull request open, see inbox). Without this a restarted projector would wait out the pin
// timeout of its own previous life. A wrong guess only moves the partition, which the fence
// makes safe.
func (p *Projector) releaseDeadPins(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, w := range p.workers {
		info, err := w.cons.Info(ctx)
		if err != nil {
			continue
		}
		for _, g := range info.PriorityGroups {
			if g.Group == w.group && g.PinnedClientID != "" && info.NumWaiting == 0 {
				if err := w.stream.UnpinConsumer(ctx, w.consumer, w.group); err == nil {
					p.log.Info("released the pin of a process that stopped pulling", "consumer", w.consumer)
				}
			}
		}
	}
}

// Stop stops pulling, lets each partition's transaction in flight finish (until ctx ends:
// then it is abandoned and rolled back), hands back what was received but not applied, and
// releases the partitions this process holds so another process takes them over at once.
func (p *Projector) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running.Load() {
		return nil
	}
	p.running.Store(false)
	p.stop()
	finished := make(chan struct{})
	go func() {
		p.done.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-ctx.Done():
		p.hard()
		<-finished
	}
	p.hard()
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	for _, w := range p.workers {
		w.unpin(uctx)
	}
	p.log.Info("projector stopped")
	return nil
}

// ErrWarmingUp is what Ready reports while the projector waits for Neo4j to plan its
// statements, before it takes any partition.
var ErrWarmingUp = errors.New("projector warming up (waiting for neo4j)")

// Ready reports whether the projector runs and has warmed up (a readiness check).
func (p *Projector) Ready(context.Context) error {
	if !p.running.Load() {
		return ErrNotRunning
	}
	if !p.warmed.Load() {
		return ErrWarmingUp
	}
	return nil
}

// Metrics returns the projector's metrics.
func (p *Projector) Metrics() *Metrics { return p.metrics }

// PartitionFilter is the subject filter of a partition's events in the memory stream.
func PartitionFilter(partition int) string {
	return fmt.Sprintf("%s.*.*.%d", events.SubjectRoot, partition)
}
