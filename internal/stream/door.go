package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
)

// The agents' door. In the production accounts (deploy/nats/accounts.conf) an agent publishes
// its events on mem.<token>.<kind> in the AGENTS account as it always did, but the import maps
// them to agent.<token>.<kind> in the ENGRAM account, where no stream listens: the ingestors
// relay them to the memory stream (Door). What the door exists for is what a NATS permission
// cannot do, looking at headers: the memory stream admits atomic batches (POST /v1/batch
// stores its events as one), and nats-server keeps at most 50 batches open per stream for all
// publishers together, without a per-client or per-account limit. An agent that published the
// first message of a batch (Nats-Batch-Id) and never its commit held one of them until the
// server's batch timeout (renewed by each further message), and 50 such held every tenant's
// batch endpoint at 503 (issue 12, finding 5). The door refuses such messages; everything else
// it forwards unchanged and passes JetStream's own acknowledgement (or refusal) back to the
// agent: same sequence, same deduplication, same errors as before.

// AgentRoot is the first token of the subjects on which agents' events reach the ENGRAM
// account through the AGENTS account's imports: agent.<tenant-token>.<kind>.
const AgentRoot = "agent"

// Every ingestor's door takes every agent event and relays it; the stream keeps one copy (the
// same Nats-Msg-Id within the duplicate window). Not a queue group: a queue group hands an
// agent's consecutive events to different ingestors, whose relays can then reach the stream in
// another order than the agent published them (a trace step stored before its trace, and
// dead-lettered). Each door relays in the order the server delivers to it, which is the
// agent's order, so with every door relaying everything an event is stored before any copy
// of the agent's next one. The cost: N ingestors publish each agent event N times (N - 1 of
// them answered duplicate), and the agent takes the first answer.

// DoorSubject is what the doors subscribe to.
const DoorSubject = AgentRoot + ".*.*"

// Refusals of the door, as JetStream API errors (the agent's client reads them as it reads
// the server's): a batch header answers what the server answers on a stream without atomic
// publishing (10174), a condition on a subject outside the agent's tenant and a kind agents
// may not publish a bad request.
const (
	errCodeAtomicDisabled = 10174
	errCodeBadRequest     = 10003
)

// DoorOutcome is what the door did with one message.
type DoorOutcome string

const (
	DoorRelayed DoorOutcome = "relayed"
	DoorRefused DoorOutcome = "refused"
	DoorFailed  DoorOutcome = "failed" // forwarding failed (connection lost); the agent retries
)

// Door relays agents' events from agent.<token>.<kind> to mem.<token>.<kind>. A client may
// not publish with another's reply subject (nats-server reserves the service imports' _R_
// replies), so the door publishes with a reply subject of its own and passes JetStream's
// answer on, byte for byte, to the agent's.
type Door struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	answers *nats.Subscription
	inbox   string // <inbox>.<n>: the reply subject of the door's n-th relayed event
	logger  *slog.Logger
	counted func(DoorOutcome)

	mu      sync.Mutex
	next    uint64
	pending map[uint64]pendingAnswer // n -> the agent's reply subject
	swept   time.Time
}

type pendingAnswer struct {
	reply string
	since time.Time
}

// doorAnswerWait is how long the door keeps an agent's reply subject for JetStream's answer:
// far beyond any publish timeout (the agent has given up by then; its retry is a new request).
const doorAnswerWait = time.Minute

// OpenDoor subscribes to the agents' subjects (every door to all of them, see above).
// counted, if not nil, is told the outcome of each message.
func OpenDoor(nc *nats.Conn, logger *slog.Logger, counted func(DoorOutcome)) (*Door, error) {
	if counted == nil {
		counted = func(DoorOutcome) {}
	}
	d := &Door{nc: nc, logger: logger, counted: counted, inbox: nc.NewInbox(), pending: map[uint64]pendingAnswer{}, swept: time.Now()}
	answers, err := nc.Subscribe(d.inbox+".*", d.answer)
	if err != nil {
		return nil, fmt.Errorf("open the agents' door: its answers' inbox: %w", err)
	}
	sub, err := nc.Subscribe(DoorSubject, d.relay)
	if err != nil {
		_ = answers.Unsubscribe()
		return nil, fmt.Errorf("open the agents' door (%s.*.*): %w", AgentRoot, err)
	}
	// Relaying is a header check and a buffered publish: keep what a burst of agents sends.
	for _, s := range []*nats.Subscription{sub, answers} {
		if err := s.SetPendingLimits(1<<20, 256<<20); err != nil {
			_ = sub.Unsubscribe()
			_ = answers.Unsubscribe()
			return nil, err
		}
	}
	d.sub, d.answers = sub, answers
	return d, nil
}

// Close stops taking agents' events; those already taken are forwarded first, and their
// answers passed on while the connection lasts.
func (d *Door) Close() error {
	if d == nil || d.sub == nil {
		return nil
	}
	err := d.sub.Drain()
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) {
		return nil
	}
	return err
}

func (d *Door) relay(m *nats.Msg) {
	token, kind, ok := agentSubject(m.Subject)
	if !ok {
		// The queue subscription matches agent.*.* only; the import only agent kinds.
		d.refuse(m, errCodeBadRequest, fmt.Sprintf("subject %q is not agent.<tenant-token>.<kind>", m.Subject))
		return
	}
	if reason, code := doorRefusal(m.Header, token, kind); reason != "" {
		d.refuse(m, code, reason)
		return
	}
	// Every door must send the same Nats-Msg-Id, or the stream keeps each door's copy: an
	// event without one gets the id events.Encode gives (tenant and ce-id).
	if m.Header.Get(nats.MsgIdHdr) == "" {
		id := m.Header.Get("ce-id")
		if id == "" {
			d.refuse(m, errCodeBadRequest, "an agent's event needs a Nats-Msg-Id or a ce-id header: every ingestor relays it, and the stream keeps one copy by that id")
			return
		}
		m.Header.Set(nats.MsgIdHdr, events.MsgID(token, id))
	}
	out := &nats.Msg{Subject: events.SubjectRoot + "." + token + "." + kind, Header: m.Header, Data: m.Data}
	var n uint64
	if m.Reply != "" {
		n = d.await(m.Reply)
		out.Reply = d.inbox + "." + strconv.FormatUint(n, 36)
	}
	if err := d.nc.PublishMsg(out); err != nil {
		// Not stored, and the agent hears nothing: its client times out and publishes again
		// (with the same Nats-Msg-Id, so a copy that did get through counts once).
		if m.Reply != "" {
			d.take(n)
		}
		d.counted(DoorFailed)
		d.logger.Warn("agent event not relayed", "subject", m.Subject, "err", err)
		return
	}
	d.counted(DoorRelayed)
}

// await keeps the agent's reply subject until JetStream's answer, and returns its number.
func (d *Door) await(reply string) uint64 {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.swept) > doorAnswerWait {
		for n, p := range d.pending {
			if now.Sub(p.since) > doorAnswerWait {
				delete(d.pending, n)
			}
		}
		d.swept = now
	}
	d.next++
	d.pending[d.next] = pendingAnswer{reply: reply, since: now}
	return d.next
}

func (d *Door) take(n uint64) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.pending[n]
	delete(d.pending, n)
	return p.reply, ok
}

// answer passes JetStream's answer on to the agent.
func (d *Door) answer(r *nats.Msg) {
	n, err := strconv.ParseUint(r.Subject[strings.LastIndexByte(r.Subject, '.')+1:], 36, 64)
	if err != nil {
		return
	}
	reply, ok := d.take(n)
	if !ok {
		return
	}
	if err := d.nc.PublishMsg(&nats.Msg{Subject: reply, Header: r.Header, Data: r.Data}); err != nil {
		d.logger.Warn("agent's acknowledgement not passed on", "err", err)
	}
}

// agentSubject splits agent.<token>.<kind>.
func agentSubject(subject string) (token, kind string, ok bool) {
	parts := strings.Split(subject, ".")
	if len(parts) != 3 || parts[0] != AgentRoot || parts[1] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[1], parts[2], true
}

// doorRefusal says why the door does not relay a message with these headers on the agent's
// subject, with the API error code; "" to relay it.
func doorRefusal(h nats.Header, token, kind string) (string, int) {
	k := events.Kind(kind)
	if k == events.KindUserErased || k == events.KindUserRecreated {
		// Second line behind the exports, which name the agent kinds only.
		return fmt.Sprintf("agents may not publish %s over NATS: erasure and re-creation need the admin scope, over HTTP", kind), errCodeBadRequest
	}
	for name, vals := range h {
		// In any case: nats.go keeps a header name's case as received and sends it on as
		// kept, and the server matches names exactly, so only the exact spelling takes effect
		// today; refusing every spelling does not depend on that.
		switch {
		case hasPrefixFoldASCII(name, "nats-batch-"):
			return "atomic batches are not accepted over NATS (header " + name + "): publish the events one by one, or send them to POST /v1/batch", errCodeAtomicDisabled
		case len(name) == len(jetstream.ExpectedLastSubjSeqSubjHeader) && hasPrefixFoldASCII(name, strings.ToLower(jetstream.ExpectedLastSubjSeqSubjHeader)):
			// A condition on another tenant's subject would tell the agent that subject's
			// last sequence.
			for _, v := range vals {
				if !strings.HasPrefix(v, events.SubjectRoot+"."+token+".") {
					return fmt.Sprintf("header %s must name a subject of the publishing tenant (%s.%s.>), not %q", name, events.SubjectRoot, token, v), errCodeBadRequest
				}
			}
		}
	}
	return "", 0
}

// hasPrefixFoldASCII: s starts with prefix (lower-case ASCII) but for the case of ASCII
// letters. Header names are ASCII on the wire; Unicode folding (ſ as s) is not what the
// server does with them.
func hasPrefixFoldASCII(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// refuse answers the agent as JetStream answers a refused publish.
func (d *Door) refuse(m *nats.Msg, code int, reason string) {
	d.counted(DoorRefused)
	d.logger.Info("agent event refused at the door", "subject", m.Subject, "reason", reason)
	if m.Reply == "" {
		return
	}
	body, _ := json.Marshal(map[string]any{
		"type":  "io.nats.jetstream.api.v1.pub_ack_response",
		"error": map[string]any{"code": 400, "err_code": code, "description": reason},
	})
	if err := m.Respond(body); err != nil {
		d.logger.Warn("agent's refusal not sent", "subject", m.Subject, "err", err)
	}
}
