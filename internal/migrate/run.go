package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/keys"
	"github.com/engram-memory/engram/internal/stream"
)

// Options of an import.
type Options struct {
	Users     []string // import only these users; empty: every user
	DryRun    bool     // plan and report, publish nothing
	Settings  Settings
	BatchSize int       // events per atomic batch; default DefaultBatchSize
	Progress  io.Writer // progress line while publishing; nil: none
	// Keys seals the imported events as the ingestor seals its own (events.Codec); nil: a
	// ring on the data keys' bucket of the run's JetStream. Plaintext imports unsealed.
	Keys      events.Keyring
	Plaintext bool

	afterBatch func(published int) // tests: called after each stored batch
}

// DefaultBatchSize is the events of one atomic batch: a killed import leaves whole batches.
const DefaultBatchSize = 500

// UserResult is what the import did for one user.
type UserResult struct {
	User      string
	Planned   map[events.Kind]int // events the source yields, per kind
	Published int                 // events stored by this run
	Logged    int                 // events the log already held (an earlier run's): skipped
}

// Result summarises an import.
type Result struct {
	SourceID string // the source's db.info() id
	Users    []UserResult
	Issues   []Issue
	Duration time.Duration
}

// Planned totals the planned events per kind over every user.
func (r *Result) Planned() map[events.Kind]int {
	out := map[events.Kind]int{}
	for _, u := range r.Users {
		for k, n := range u.Planned {
			out[k] += n
		}
	}
	return out
}

// Published totals the events this run stored, and those already in the log.
func (r *Result) Published() (published, logged int) {
	for _, u := range r.Users {
		published += u.Published
		logged += u.Logged
	}
	return published, logged
}

// Run imports the source's users (o.Users, or all) into the log through pub, one user at a
// time: it plans the user's events, asks the log (js) which of their ids it already holds for
// that tenant, and publishes the others in order, in atomic batches. An import interrupted at
// any point and run again publishes exactly what is missing. With o.DryRun it publishes
// nothing and needs neither pub nor js.
func Run(ctx context.Context, src *Source, js jetstream.JetStream, pub *stream.Publisher, o Options) (*Result, error) {
	start := time.Now()
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.BatchSize > stream.MaxAtomicBatch {
		return nil, fmt.Errorf("batch size %d: at most %d (nats-server's atomic batch limit)", o.BatchSize, stream.MaxAtomicBatch)
	}
	if !o.DryRun && (js == nil || pub == nil) {
		return nil, errors.New("import: a JetStream connection is required unless it is a dry run")
	}
	if !o.DryRun && !o.Plaintext && o.Keys == nil {
		o.Keys = keys.Default(js)
	}
	id, err := src.Identity(ctx)
	if err != nil {
		return nil, err
	}
	if o.Settings.CorrelationID == "" {
		// Groups the imported events in the audit; the same on every run of one source.
		o.Settings.CorrelationID = "import-" + id
	}
	users, issues, err := src.Users(ctx, o.Users)
	if err != nil {
		return nil, err
	}
	srcIssues, err := src.SourceIssues(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{SourceID: id, Issues: append(issues, srcIssues...)}
	var prog *progress
	if !o.DryRun && o.Progress != nil {
		total, err := src.estimate(ctx, users)
		if err != nil {
			return nil, err
		}
		prog = startProgress(ctx, o.Progress, total, len(users))
		defer prog.stop()
	}
	for _, u := range users {
		plan, err := src.Plan(ctx, u, o.Settings)
		if err != nil {
			return res, err
		}
		res.Issues = append(res.Issues, plan.Issues...)
		ur := UserResult{User: u, Planned: plan.Counts()}
		if !o.DryRun {
			err = publishUser(ctx, js, pub, plan, o, &ur, prog)
		}
		res.Users = append(res.Users, ur)
		if err != nil {
			return res, err
		}
		if prog != nil {
			prog.users.Add(1)
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// publishUser publishes what of the user's plan the log does not hold yet.
func publishUser(ctx context.Context, js jetstream.JetStream, pub *stream.Publisher, plan *UserPlan, o Options, ur *UserResult, prog *progress) error {
	logged, err := Logged(ctx, js, plan.User)
	if err != nil {
		return err
	}
	var ids []string
	var msgs []*nats.Msg
	for _, e := range plan.Events {
		if logged[e.ID] {
			ur.Logged++
			continue
		}
		if !o.Plaintext {
			if err := (events.Codec{Keys: o.Keys}).Seal(ctx, e.Event.User, e.Msg); err != nil {
				return fmt.Errorf("import %s: %w", plan.User, err)
			}
		}
		ids, msgs = append(ids, e.ID), append(msgs, e.Msg)
	}
	if prog != nil {
		prog.done.Add(int64(ur.Logged))
	}
	for i := 0; i < len(msgs); i += o.BatchSize {
		j := min(i+o.BatchSize, len(msgs))
		n, err := publishBatch(ctx, pub, ids[i:j], msgs[i:j])
		if err != nil {
			return fmt.Errorf("import %s: %w", plan.User, err)
		}
		ur.Published += n
		if prog != nil {
			prog.done.Add(int64(j - i))
		}
		if o.afterBatch != nil {
			o.afterBatch(ur.Published)
		}
	}
	return nil
}

// publishBatch stores one batch atomically. A batch holding an event the stream stored
// meanwhile (another import of the same source running at once) is refused whole; its events
// are then published one by one, the stored one answered as a duplicate. It returns the events
// stored by this call.
func publishBatch(ctx context.Context, pub *stream.Publisher, ids []string, msgs []*nats.Msg) (int, error) {
	_, err := pub.PublishBatchMsgs(ctx, ids, msgs)
	if err == nil {
		return len(msgs), nil
	}
	if !errors.Is(err, stream.ErrDuplicateInBatch) {
		return 0, err
	}
	n := 0
	for i, m := range msgs {
		st, err := pub.PublishMsg(ctx, ids[i], m)
		if err != nil {
			return n, err
		}
		if !st.Duplicate {
			n++
		}
	}
	return n, nil
}

// Logged returns the ids of the events the log holds for the user's tenant (mem.<token>.>):
// JetStream's duplicate window is minutes, an import may be resumed days later.
func Logged(ctx context.Context, js jetstream.JetStream, user string) (map[string]bool, error) {
	filter, err := events.TenantSubjects(user)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	err = stream.Each(ctx, js, stream.MemoryStream, filter, true, func(msg jetstream.Msg) error {
		if id := msg.Headers().Get("ce-id"); id != "" {
			out[id] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the log of %s: %w", user, err)
	}
	return out, nil
}

// estimateQuery counts the events the users' graphs yield at most, for the progress line.
const estimateQuery = `
UNWIND $users AS id
MATCH (u:User {identifier: id})
RETURN sum(1 + COUNT { (u)-[:HAS_CONVERSATION]->(:Conversation)-[:HAS_MESSAGE]->(:Message) }
         + COUNT { (u)-[:HAS_PREFERENCE]->(:Preference) }
         + COUNT { (u)-[:HAS_PREFERENCE]->(:Preference)-[:SUPERSEDED_BY]->(:Preference) }
         + COUNT { (u)-[:HAS_TRACE]->(:ReasoningTrace) }
         + COUNT { (u)-[:HAS_TRACE]->(t:ReasoningTrace) WHERE t.completed_at IS NOT NULL }
         + COUNT { (u)-[:HAS_TRACE]->(:ReasoningTrace)-[:HAS_STEP]->(:ReasoningStep) }
         + COUNT { (u)-[:HAS_TRACE]->(:ReasoningTrace)-[:HAS_STEP]->(:ReasoningStep)-[:USES_TOOL]->(:ToolCall) }) AS total`

func (s *Source) estimate(ctx context.Context, users []string) (int64, error) {
	rows, err := s.read(ctx, estimateQuery, map[string]any{"users": users})
	if err != nil {
		return 0, fmt.Errorf("count the source's events: %w", err)
	}
	n, _ := rows[0]["total"].(int64)
	return n, nil
}

// progress prints one line, rewritten in place every half second: events done of the
// estimated total (published or already in the log), users done, events/s.
type progress struct {
	w           io.Writer
	total       int64
	usersTotal  int
	start       time.Time
	done, users atomic.Int64
	quit        chan struct{}
	stopped     chan struct{}
}

func startProgress(ctx context.Context, w io.Writer, total int64, users int) *progress {
	p := &progress{w: w, total: total, usersTotal: users, start: time.Now(), quit: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.print("\r")
			case <-p.quit:
				p.print("\r")
				fmt.Fprintln(p.w)
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

func (p *progress) print(prefix string) {
	done := p.done.Load()
	rate := float64(done) / max(time.Since(p.start).Seconds(), 1e-3)
	pct := 100.0
	if p.total > 0 {
		pct = min(100, 100*float64(done)/float64(p.total))
	}
	fmt.Fprintf(p.w, "%simport: %d/%d events (%.0f%%), users %d/%d, %.0f events/s   ", prefix, done, p.total, pct, p.users.Load(), p.usersTotal, rate)
}

func (p *progress) stop() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.stopped
}
