// Package replay rebuilds the graph from the log: the whole memory stream into an empty (or
// wiped) database, or one tenant's subjects after deleting that tenant's subgraph, through
// the projector's own apply code (projection.Apply), the stream's partitions in parallel
// (apply.go). Progress is checkpointed per partition in the same transactions as the
// effects, so an interrupted replay resumes where it stopped.
//
// Replay and live projection must not write the same tenants at once: Run refuses while a
// projector of the live group is pulling (its consumers have waiting pull requests) unless
// Force is set. See docs/replay.md for the procedure.
package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/stream"
)

// Options configure a replay.
type Options struct {
	// User, when set, replays only that user's tenant (mem.<token>.>), deleting its subgraph
	// first; Shared replays the shared tenant. Neither: the whole stream.
	User   string
	Shared bool
	// Wipe deletes the whole graph before a whole-stream replay into a database that is not
	// empty. Without it such a replay is refused (ErrNotEmpty).
	Wipe bool
	// Group names the replay's checkpoints (<Group>-replay-p<N> per partition, or
	// <Group>-replay-<token> for a tenant); default "replay".
	Group string
	// LiveGroup is the projector group whose checkpoints a whole-stream replay sets to the
	// last replayed sequence, so the live projector resumes after it; default "projector".
	LiveGroup string
	// Force skips the check that no projector of LiveGroup is running. Nothing else may write
	// the graph during a whole-stream replay all the same: it remembers what it wrote instead
	// of reading it back (projection.Rebuild).
	Force     bool
	BatchSize int // events per transaction; default DefaultBatchSize
	// Writers bounds the transactions that run at once (one per partition at most); default
	// DefaultWriters.
	Writers int
	// MemoryNodes bounds the nodes a whole-stream replay remembers, per partition, instead of
	// looking them up in the graph (projection.Rebuild; about 150 bytes each); default
	// DefaultMemoryNodes, negative: none.
	MemoryNodes int
	MultiTenant bool
	Database    string
	Progress    io.Writer // progress line every 500 ms; nil: none
	// Keys opens sealed events (events.Codec); nil: a ring on the data keys' bucket of js
	// (keys.KV), so a replay reads what the live projector reads.
	Keys events.Keyring
}

// Stats summarise a replay.
type Stats struct {
	Applied   int    // events applied
	Skipped   int    // events not applied: undecodable or rejected (they are in the DLQ), or written after their user's erasure (dropped)
	Shredded  int    // of Skipped, the events whose data key an erasure destroyed (never in the DLQ)
	Resumed   bool   // continued an interrupted replay
	FirstSeq  uint64 // first stream sequence read
	LastSeq   uint64 // last stream sequence covered
	Duration  time.Duration
	EventsPer float64
}

// Defaults of Options.
const (
	// DefaultBatchSize events per transaction: a bulk rebuild commits less often than the live
	// projector (whose batches are small to keep reads fresh).
	DefaultBatchSize = 2000
	// DefaultWriters transactions at once: on the two cores of a development machine that
	// Neo4j shares with the replay, more transactions at once cost Neo4j more CPU per event
	// (docs/replay.md); a Neo4j with cores of its own takes more.
	DefaultWriters = 2
	// DefaultMemoryNodes per partition: 8 partitions of 1M nodes take about 1.2 GB.
	DefaultMemoryNodes = 1_000_000
)

// Errors callers branch on.
var (
	ErrNotEmpty        = errors.New("the database is not empty")
	ErrProjectorActive = errors.New("a live projector is running")
)

// Run replays according to o.
func Run(ctx context.Context, d neo4j.DriverWithContext, js jetstream.JetStream, o Options) (Stats, error) {
	if o.Group == "" {
		o.Group = "replay"
	}
	if o.LiveGroup == "" {
		o.LiveGroup = projection.DefaultGroup
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Writers <= 0 {
		o.Writers = DefaultWriters
	}
	if o.MemoryNodes == 0 {
		o.MemoryNodes = DefaultMemoryNodes
	}
	if o.Keys == nil {
		o.Keys = keys.Default(js)
	}
	var st Stats
	filter, name := "", o.Group+"-replay"
	tenant := o.User != "" || o.Shared
	var lanes []*lane
	if tenant {
		if o.User != "" {
			if err := events.ValidateIdentifier(o.User); err != nil {
				return st, fmt.Errorf("user: %w", err)
			}
		}
		f, err := events.TenantSubjects(o.User)
		if err != nil {
			return st, err
		}
		tok, _ := events.TenantToken(o.User)
		filter = f
		lanes = []*lane{{partition: events.Partition(tok, natsdeploy.Partitions), name: name + "-" + tok}}
	} else {
		for p := range natsdeploy.Partitions {
			lanes = append(lanes, &lane{partition: p, name: laneName(name, p)})
		}
	}
	if !o.Force {
		if err := checkPaused(ctx, js, o.LiveGroup); err != nil {
			return st, err
		}
	}
	s, err := js.Stream(ctx, stream.MemoryStream)
	if err != nil {
		return st, fmt.Errorf("memory stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return st, err
	}
	last := info.State.LastSeq

	done := last
	names := make([]string, len(lanes))
	for i, l := range lanes {
		if l.done, err = projection.ReadCheckpoint(ctx, d, o.Database, l.name); err != nil {
			return st, err
		}
		st.Resumed = st.Resumed || l.done > 0
		done = min(done, l.done)
		names[i] = l.name
	}
	if !st.Resumed {
		if tenant {
			if err := eraseTenant(ctx, d, o); err != nil {
				return st, err
			}
		} else if err := prepareEmpty(ctx, d, o); err != nil {
			return st, err
		}
	}
	for _, l := range lanes {
		l.erasures = projection.NewErasures(erasedBefore(js, l.done))
	}
	if !tenant {
		// The graph was empty when the replay started and only the replay writes it: a lane
		// knows what the graph holds of its tenants, as long as it saw all of it committed.
		for _, l := range lanes {
			l.rebuild = projection.NewRebuild(0)
			if l.done == 0 && o.MemoryNodes > 0 {
				l.rebuild = projection.NewRebuild(o.MemoryNodes)
			}
		}
	}
	start := time.Now()
	st.FirstSeq = done + 1
	if last > done {
		// Plan every statement once, before the partitions' first batches all ask for the
		// same plans at once (a fresh server has an empty plan cache).
		warm := projection.Warm
		if !tenant {
			warm = projection.WarmRebuild
		}
		if err := warm(ctx, d, o.Database); err != nil {
			return st, err
		}
		if err := apply(ctx, d, js, o, lanes, filter, last, &st); err != nil {
			return st, err
		}
	}
	st.LastSeq = max(last, done)
	if !tenant {
		if err := recountTools(ctx, d, o.Database); err != nil {
			return st, err
		}
		if err := setLiveCheckpoints(ctx, d, o, st.LastSeq); err != nil {
			return st, err
		}
	}
	if err := deleteCheckpoints(ctx, d, o.Database, names); err != nil {
		return st, err
	}
	st.Duration = time.Since(start)
	if secs := st.Duration.Seconds(); secs > 0 {
		st.EventsPer = float64(st.Applied+st.Skipped) / secs
	}
	return st, nil
}

// erasedBefore is how a lane that starts after done learns whether a tenant it sees for the
// first time is erased there: from the log (stream.ErasedAt) when it resumes, and not at all
// when it reads from the stream's start, where it meets every tombstone in order itself.
func erasedBefore(js jetstream.JetStream, done uint64) func(context.Context, string, uint64) (bool, error) {
	if done == 0 {
		return func(context.Context, string, uint64) (bool, error) { return false, nil }
	}
	return func(ctx context.Context, subject string, seq uint64) (bool, error) {
		erased, _, err := stream.ErasedAt(ctx, js.Conn(), subject, seq)
		return erased, err
	}
}

// checkPaused refuses while any consumer of the live group has a pull waiting: a projector
// is running and would interleave its writes with the replay's.
func checkPaused(ctx context.Context, js jetstream.JetStream, group string) error {
	for p := range natsdeploy.Partitions {
		c, err := js.Consumer(ctx, stream.MemoryStream, projection.CheckpointName(group, p))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("consumer %s: %w", projection.CheckpointName(group, p), err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumWaiting > 0 {
			return fmt.Errorf("%w: consumer %s has %d waiting pulls; stop the projectors first (or --force)",
				ErrProjectorActive, info.Name, info.NumWaiting)
		}
	}
	return nil
}
