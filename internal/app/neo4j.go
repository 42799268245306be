package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"go.uber.org/fx"

	"github.com/engram-memory/engram/internal/graph"
)

// Neo4jModule gives a service the graph: the Neo4j driver (neo4j.DriverWithContext, as
// every graph package takes it) and its *Neo4j, whose readiness shows on /readyz as "neo4j".
// The projector and the query service include it after Module (whose Common, logger and
// Health it uses); the ingestor does not.
//
// Start-up does not wait for Neo4j. A cold Neo4j can take minutes, and a service that blocks
// its start on it dies on fx's start timeout with no word of what it waited for. Instead the
// driver exists at once (its calls fail with connectivity errors until Neo4j answers, as in
// any outage, and every caller handles those), and a goroutine started with the service
// connects and applies the schema, retrying with backoff and logging "waiting for neo4j".
// Until it is done, /readyz reports neo4j unavailable with the reason.
func Neo4jModule() fx.Option {
	return fx.Module("neo4j",
		fx.Provide(
			NewNeo4j,
			func(n *Neo4j) neo4j.DriverWithContext { return n.Driver() },
		),
		fx.Invoke(func(h *Health, n *Neo4j) { h.Add("neo4j", n.Ready) }),
	)
}

// errNotAttempted is the readiness of a Neo4j whose first connection attempt has not ended.
var errNotAttempted = errors.New("connecting")

// Neo4j is a service's Neo4j: the driver, usable from the start, and whether the server has
// answered and the schema is applied.
type Neo4j struct {
	driver    neo4j.DriverWithContext
	cfg       graph.Config
	log       *slog.Logger
	connected chan struct{}
	once      sync.Once // closes connected

	mu   sync.Mutex
	last error // why it is not connected yet
}

// NewNeo4j creates the driver of c.Neo4j without connecting. On start it connects and
// applies the schema in the background (Connect); on stop it ends that and closes the driver.
func NewNeo4j(lc fx.Lifecycle, c Common, logger *slog.Logger) (*Neo4j, error) {
	d, err := graph.NewDriver(c.Neo4j)
	if err != nil {
		return nil, err
	}
	n := &Neo4j{driver: d, cfg: c.Neo4j, log: logger, connected: make(chan struct{}), last: errNotAttempted}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				_ = n.Connect(ctx)
			}()
			return nil
		},
		OnStop: func(stop context.Context) error {
			cancel()
			select {
			case <-done:
			case <-stop.Done():
			}
			return d.Close(stop)
		},
	})
	return n, nil
}

// Driver returns the driver.
func (n *Neo4j) Driver() neo4j.DriverWithContext { return n.driver }

// Connected is closed once Neo4j has answered and the schema is applied.
func (n *Neo4j) Connected() <-chan struct{} { return n.connected }

// Connect waits until Neo4j answers and applies the schema, retrying with backoff and
// logging "waiting for neo4j" with the reason, until it succeeds or ctx ends. Several
// services may do this at once on a fresh database (graph.ApplySchema tolerates it).
func (n *Neo4j) Connect(ctx context.Context) error {
	select {
	case <-n.connected:
		return nil
	default:
	}
	start := time.Now()
	err := Retry(ctx, n.log, "waiting for neo4j", []any{"uri", n.cfg.URI}, func(ctx context.Context) error {
		err := n.connect(ctx)
		n.mu.Lock()
		n.last = err
		n.mu.Unlock()
		return err
	})
	if err != nil {
		return err
	}
	n.once.Do(func() {
		n.log.Info("neo4j ready", "uri", n.cfg.URI, "waited", time.Since(start).Round(time.Millisecond))
		close(n.connected)
	})
	return nil
}

func (n *Neo4j) connect(ctx context.Context) error {
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.driver.VerifyConnectivity(vctx); err != nil {
		return fmt.Errorf("not reachable (start it with `make neo4j-start` or set NEO4J_URI): %w", err)
	}
	return graph.ApplySchema(ctx, n.driver, n.cfg.Database)
}

// Ready is the readiness check: the reason while Connect has not succeeded, then whether
// Neo4j answers now.
func (n *Neo4j) Ready(ctx context.Context) error {
	select {
	case <-n.connected:
		return n.driver.VerifyConnectivity(ctx)
	default:
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Errorf("waiting for neo4j at %s: %w", n.cfg.URI, n.last)
}
