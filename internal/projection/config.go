package projection

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/app"
	"github.com/engram-memory/engram/internal/events"
)

// Defaults of the projector's settings.
const (
	DefaultGroup      = "projector"
	DefaultBatchSize  = 500
	DefaultBatchWait  = 0
	DefaultRetryMin   = 100 * time.Millisecond
	DefaultRetryMax   = 10 * time.Second
	DefaultAckWait    = time.Minute
	DefaultPinTimeout = 2 * time.Second
	DefaultInFlight   = 1
	// DefaultCommitInterval spaces the starts of batch transactions under load (Config.CommitInterval).
	DefaultCommitInterval = 20 * time.Millisecond
	// DefaultHTTPAddr serves the projector's /healthz, /readyz and /metrics.
	DefaultHTTPAddr = "127.0.0.1:8082"
)

// maxBatchSize keeps a batch within the consumers' max_ack_pending (deploy/nats).
const maxBatchSize = 10000

var groupPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Config is the projector's configuration.
type Config struct {
	Common app.Common
	// Group names the projector deployment: partition p is consumed by the durable consumer
	// "<group>-p<p>" and checkpointed as "<group>-p<p>" (PROJECTOR_GROUP, default projector).
	// Processes of one group share the partitions; another group projects the stream anew.
	Group string
	// BatchSize is the most events applied in one transaction (PROJECTOR_BATCH_SIZE, 500).
	BatchSize int
	// BatchWait is how long a batch waits for more events after its first (PROJECTOR_BATCH_WAIT,
	// 0: a batch is what arrived while the transaction before it ran, so it needs no wait).
	BatchWait time.Duration
	// Partitions this process competes for (PROJECTOR_PARTITIONS: "all" or e.g. "0,1,5").
	Partitions []int
	// RetryMin and RetryMax bound the backoff between attempts of a batch that failed for a
	// transient reason (PROJECTOR_RETRY_MIN 100ms, PROJECTOR_RETRY_MAX 10s).
	RetryMin, RetryMax time.Duration
	// AckWait is the consumers' ack wait: an event delivered but not acknowledged within it is
	// delivered again (PROJECTOR_ACK_WAIT, 1m).
	AckWait time.Duration
	// InFlight is the most batch transactions the process runs at once over all its
	// partitions; the partitions whose batches are ready when one can start share it (group
	// commit, group.go). PROJECTOR_IN_FLIGHT, 1; 0: no limit, each partition's batches in
	// transactions of their own.
	InFlight int
	// CommitInterval is the least time from the start of one batch transaction of the process
	// to the start of the next (PROJECTOR_COMMIT_INTERVAL, 20ms; 0: none; with group commit,
	// InFlight ≥ 1). A step that finds the last transaction started longer ago than this
	// starts at once, so an event reaching an idle projector is applied without a wait; under
	// load the steps ready within the interval share one transaction. Why (group.go): what a
	// transaction costs Neo4j whatever its size (the commit, a refresh per full-text index it
	// touched, its round trips) was most of Neo4j's CPU at 500 events/s, paid back to back.
	CommitInterval time.Duration
	// PinTimeout is how long a partition stays pinned to a process that stopped pulling before
	// another process takes it over (PROJECTOR_PIN_TIMEOUT, 2s). A live process renews its pin
	// every pull expiry (a third of it, at least 1s) whatever its transactions do (see inbox).
	PinTimeout time.Duration
	// Keys opens sealed events (crypto-shredding, docs/security.md): Module sets the data
	// keys' ring on the process's JetStream. Not a setting; nil opens nothing, and a sealed
	// event is then undecodable.
	Keys events.Keyring
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	return errors.Join(c.Common.Validate(), c.validateOwn())
}

// validateOwn checks the projector's own settings.
func (c Config) validateOwn() error {
	var errs []error
	if !groupPattern.MatchString(c.Group) {
		errs = append(errs, fmt.Errorf("PROJECTOR_GROUP %q: want 1-64 letters, digits, '-' or '_'", c.Group))
	}
	if c.BatchSize < 1 || c.BatchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("PROJECTOR_BATCH_SIZE %d: want 1 to %d", c.BatchSize, maxBatchSize))
	}
	if c.BatchWait < 0 || c.BatchWait > 10*time.Second {
		errs = append(errs, fmt.Errorf("PROJECTOR_BATCH_WAIT %s: want 0 to 10s", c.BatchWait))
	}
	if len(c.Partitions) == 0 {
		errs = append(errs, errors.New("PROJECTOR_PARTITIONS: want at least one partition"))
	}
	seen := map[int]bool{}
	for _, p := range c.Partitions {
		if p < 0 || p >= natsdeploy.Partitions {
			errs = append(errs, fmt.Errorf("PROJECTOR_PARTITIONS: partition %d out of range 0-%d", p, natsdeploy.Partitions-1))
		}
		if seen[p] {
			errs = append(errs, fmt.Errorf("PROJECTOR_PARTITIONS: partition %d listed twice", p))
		}
		seen[p] = true
	}
	if c.CommitInterval < 0 || c.CommitInterval > time.Second {
		errs = append(errs, fmt.Errorf("PROJECTOR_COMMIT_INTERVAL %s: want 0 to 1s", c.CommitInterval))
	}
	if c.InFlight < 0 || c.InFlight > 64 {
		errs = append(errs, fmt.Errorf("PROJECTOR_IN_FLIGHT %d: want 0 (no limit) to 64", c.InFlight))
	}
	if c.RetryMin <= 0 {
		errs = append(errs, fmt.Errorf("PROJECTOR_RETRY_MIN %s: must be positive", c.RetryMin))
	}
	if c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("PROJECTOR_RETRY_MAX %s: must be at least PROJECTOR_RETRY_MIN %s", c.RetryMax, c.RetryMin))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("PROJECTOR_ACK_WAIT %s: at least 1s", c.AckWait))
	}
	if c.PinTimeout < 2*time.Second {
		errs = append(errs, fmt.Errorf("PROJECTOR_PIN_TIMEOUT %s: at least 2s (a pinned process renews its pin every third of it)", c.PinTimeout))
	}
	return errors.Join(errs...)
}

// AllPartitions lists every partition of the memory stream.
func AllPartitions() []int {
	out := make([]int, natsdeploy.Partitions)
	for i := range out {
		out[i] = i
	}
	return out
}

// ParsePartitions reads "all" or a comma-separated list of partitions and ranges ("0,2-4").
func ParsePartitions(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "all") {
		return AllPartitions(), nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("PROJECTOR_PARTITIONS %q: %q is not a partition number", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("PROJECTOR_PARTITIONS %q: %q is not a range low-high", s, part)
			}
		}
		for p := a; p <= b; p++ {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// LoadConfig reads the configuration from args and the environment (getenv) and validates it.
// -h returns flag.ErrHelp after printing the settings.
func LoadConfig(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("projector", flag.ContinueOnError)
	f := app.NewFlags(fs, getenv)
	app.BindCommon(f, &c.Common, "projector", DefaultHTTPAddr)
	var partitions string
	f.String(&c.Group, "group", "PROJECTOR_GROUP", DefaultGroup, "projector group: consumer and checkpoint names <group>-p<partition>")
	f.Int(&c.BatchSize, "batch-size", "PROJECTOR_BATCH_SIZE", DefaultBatchSize, "most events applied in one transaction")
	f.Duration(&c.BatchWait, "batch-wait", "PROJECTOR_BATCH_WAIT", DefaultBatchWait, "how long a batch waits for more events after its first")
	f.String(&partitions, "partitions", "PROJECTOR_PARTITIONS", "all", `partitions to compete for: "all" or e.g. "0,1,5" or "0-3"`)
	f.Duration(&c.RetryMin, "retry-min", "PROJECTOR_RETRY_MIN", DefaultRetryMin, "first backoff after a transient failure")
	f.Duration(&c.RetryMax, "retry-max", "PROJECTOR_RETRY_MAX", DefaultRetryMax, "longest backoff after transient failures")
	f.Duration(&c.AckWait, "ack-wait", "PROJECTOR_ACK_WAIT", DefaultAckWait, "consumer ack wait before an unacknowledged event is delivered again")
	f.Int(&c.InFlight, "in-flight", "PROJECTOR_IN_FLIGHT", DefaultInFlight, "most batch transactions at once over all partitions, shared by the partitions ready when one starts (0: each partition its own, no limit)")
	f.Duration(&c.CommitInterval, "commit-interval", "PROJECTOR_COMMIT_INTERVAL", DefaultCommitInterval, "least time between the starts of two batch transactions (the steps ready meanwhile share the next; 0: none)")
	f.Duration(&c.PinTimeout, "pin-timeout", "PROJECTOR_PIN_TIMEOUT", DefaultPinTimeout, "how long a silent process keeps its partitions before another takes over")
	if err := f.Parse(args); err != nil {
		return c, err
	}
	p, err := ParsePartitions(partitions)
	if err != nil {
		return c, errors.Join(err, c.Validate())
	}
	c.Partitions = p
	return c, c.Validate()
}

// DefaultConfig returns the defaults with the given common settings (for tests and tools
// that build a Projector without flags).
func DefaultConfig(common app.Common) Config {
	return Config{
		Common: common, Group: DefaultGroup, BatchSize: DefaultBatchSize, BatchWait: DefaultBatchWait,
		Partitions: AllPartitions(), RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax,
		AckWait: DefaultAckWait, PinTimeout: DefaultPinTimeout, InFlight: DefaultInFlight,
		CommitInterval: DefaultCommitInterval,
	}
}
