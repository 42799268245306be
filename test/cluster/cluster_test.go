// Package cluster runs Engram beyond one machine: a three-node JetStream cluster on the
// production configuration, several ingestors and projectors, and node loss under load.
package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/fingerprint"
	"github.com/engram-memory/engram/internal/projection"
	"github.com/engram-memory/engram/internal/replay"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// attempt is one HTTP request of a write.
type attempt struct {
	start, end time.Time
	code       int    // 0: no answer (transport error)
	problem    string // the error body of a refused attempt
	ingestor   int    // which ingestor answered
}

// write is one logical write: the same command (same event id) sent until acknowledged.
type write struct {
	kind     string // message, preference, entity, user
	eventID  string
	id       string // message or preference id, entity name
	seq      uint64 // the acknowledgement's stream sequence
	attempts []attempt
}

func (w *write) latency() time.Duration {
	return w.attempts[len(w.attempts)-1].end.Sub(w.attempts[0].start)
}

// writer is one tenant's agent: it writes in sequence (each write acknowledged before the
// next is sent), alternating between the ingestors, retrying a 503 with the same event id.
type writer struct {
	user   string
	token  string
	writes []*write
	failed error
}

func (w *writer) command(i int) (*write, string, any) {
	wr := &write{eventID: events.NewID()}
	switch {
	case i == 0:
		wr.kind = "user"
		return wr, "/v1/users", map[string]any{"event_id": wr.eventID, "identifier": w.user}
	case i%5 == 0:
		wr.kind, wr.id = "preference", events.NewID()
		return wr, "/v1/preferences", map[string]any{"event_id": wr.eventID, "user_identifier": w.user,
			"preference_id": wr.id, "category": "cat-" + strconv.Itoa(i%3), "preference": "preference " + strconv.Itoa(i)}
	case i%7 == 0:
		wr.kind, wr.id = "entity", "entity-"+strconv.Itoa(i)
		return wr, "/v1/entities", map[string]any{"event_id": wr.eventID, "user_identifier": w.user,
			"name": wr.id, "type": "Thing"}
	default:
		wr.kind, wr.id = "message", events.NewID()
		role := "user"
		if i%2 == 0 {
			role = "assistant"
		}
		return wr, "/v1/messages", map[string]any{"event_id": wr.eventID, "user_identifier": w.user,
			"message_id": wr.id, "session_id": "s1", "role": role, "content": "message " + strconv.Itoa(i)}
	}
}

// run writes until stop is closed or max writes are acknowledged.
func (w *writer) run(ingestors []string, stop <-chan struct{}, max int, pause time.Duration) {
	hc := &http.Client{Timeout: 30 * time.Second}
	for i := 0; i < max; i++ {
		select {
		case <-stop:
			return
		default:
		}
		wr, path, cmd := w.command(i)
		body, _ := json.Marshal(cmd)
		for try := 0; ; try++ {
			if try > 600 {
				w.failed = fmt.Errorf("write %d (%s) not acknowledged after %d attempts", i, wr.kind, try)
				return
			}
			a := attempt{start: time.Now(), ingestor: (i + try) % len(ingestors)}
			resp, err := hc.Post(ingestors[a.ingestor]+path, "application/json", bytes.NewReader(body))
			if err == nil {
				raw, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				a.code = resp.StatusCode
				if resp.StatusCode/100 == 2 {
					var acc struct {
						Sequence uint64 `json:"sequence"`
					}
					if err := json.Unmarshal(raw, &acc); err != nil || acc.Sequence == 0 {
						w.failed = fmt.Errorf("write %d: acknowledgement %s: %v", i, raw, err)
						return
					}
					wr.seq = acc.Sequence
				} else {
					a.problem = strings.TrimSpace(string(raw))
				}
			} else {
				a.problem = err.Error()
			}
			a.end = time.Now()
			wr.attempts = append(wr.attempts, a)
			if wr.seq != 0 {
				break
			}
			if a.code != 0 && a.code != http.StatusServiceUnavailable {
				w.failed = fmt.Errorf("write %d (%s): %d %s", i, wr.kind, a.code, a.problem)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		w.writes = append(w.writes, wr)
		time.Sleep(pause)
	}
}

// fault is a span in which something was down: from just before the kill until the killed
// process was back and caught up.
type fault struct {
	name       string
	node       bool // a NATS node (a projector's loss must never touch writes)
	from, to   time.Time
	leaderless time.Duration // the memory stream without a leader, as polled (the leader kill)
	// keptLeader: the memory stream kept its leader and its quorum throughout (a node that
	// did not lead it): no write may be refused, not even the ones in flight on the lost node.
	keptLeader bool
	// noQuorum: two nodes down; writes must be refused (503) once the ride-through is over.
	noQuorum bool
}

// TestClusterNodeLoss runs the production NATS configuration as a three-node JetStream
// cluster (three nats-server processes, MEM and MEM_DLQ at three replicas), two ingestors,
// two projectors and a query service as processes, under a bounded mixed load of several
// tenants; it SIGKILLs a node that does not lead the memory stream, then the stream's leader,
// then a projector, restarting each. Every acknowledged write is stored exactly once and
// projected exactly once in its tenant's order, the graph equals a replay of the log, and a
// write is answered 503 only while a node is down (a retry with the same event id then
// stores it once), never while the stream kept its leader (the non-leader kill), and not during
// the leader's election either, which writers see as a slower write (stream.WithLeaderWait). The
// election's cost to writers is logged (docs/operations.md).
//
// Not parallel: the NATS users' password hashes are in the environment.
func TestClusterNodeLoss(t *testing.T) {
	ctx := t.Context()
	c := startCluster(t)
	_, js := c.admin()
	c.applyStreams(js)
	c.waitCurrent(js)

	common := []string{"MULTI_TENANT=true", "NATS_STREAM_REPLICAS=3",
		// A killed projector's partitions are taken over in seconds (docs/projector.md).
		"PROJECTOR_PIN_TIMEOUT=2s", "PROJECTOR_ACK_WAIT=3s", "PROJECTOR_RETRY_MIN=20ms", "PROJECTOR_RETRY_MAX=500ms"}
	// Both ingestors share the signing key file, as production's do (ingestor.env): the
	// Nats-Msg-Id is keyed, so with a key of its own each a retry that reaches the other
	// ingestor after a lost acknowledgement would be stored twice.
	keyFile := filepath.Join(t.TempDir(), "engram-ingest-keys")
	if err := os.WriteFile(keyFile, []byte(events.NewID()+events.NewID()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stack := testenv.StartStackWith(t, testenv.StackOptions{
		NATSURL: c.URL("admin"),
		Env:     common,
		ServiceEnv: map[string][]string{
			"ingestor":  {"NATS_URL=" + c.URL("ingestor"), "INGEST_SIGNING_KEY_FILE=" + keyFile},
			"projector": {"NATS_URL=" + c.URL("projector")},
			"query":     {"NATS_URL=" + c.URL("query")},
		},
	})
	ingestors := []string{stack.IngestorURL, stack.StartAs("ingestor-2", "ingestor")}
	stack.StartAs("projector-2", "projector")
	// The services applied the streams at start-up with NATS_STREAM_REPLICAS: still three.
	for _, name := range []string{stream.MemoryStream, stream.DeadLetterStream} {
		if _, _, r := streamState(ctx, js, name); r != 3 {
			t.Fatalf("stream %s has %d replicas after the services started, want 3", name, r)
		}
	}

	d := testenv.Neo4j(t)
	var writers []*writer
	var users []string
	for i := range 6 {
		u := testenv.User(t, "cluster-"+strconv.Itoa(i))
		tok, err := events.TenantToken(u)
		if err != nil {
			t.Fatal(err)
		}
		writers = append(writers, &writer{user: u, token: tok})
		users = append(users, u)
	}
	t.Cleanup(func() { testenv.Cleanup(t, d, users...) })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Go(func() { w.run(ingestors, stop, 3000, 40*time.Millisecond) })
	}
	settle := func() {
		time.Sleep(2 * time.Second) // under load
	}
	// Between two faults: longer than PUBLISH_TIMEOUT (5 s), so that a write in flight at one
	// fault is answered before the next begins and each refusal is told of the right fault.
	quiet := func() { time.Sleep(6 * time.Second) }
	var faults []fault
	// restart starts nodes that are down and waits until they are healthy, the streams'
	// replicas current and both ingestors ready.
	restart := func(nodes ...*node) {
		for _, n := range nodes {
			c.start(n)
		}
		for _, n := range nodes {
			c.waitHealthy(n)
		}
		c.waitCurrent(js)
		for _, u := range ingestors {
			waitReady(t, u)
		}
	}
	nodeLoss := func(name string, victim *node, poll func(*fault)) {
		f := fault{name: name, node: true, from: time.Now()}
		c.kill(victim)
		if poll != nil {
			poll(&f)
		}
		settle()
		restart(victim)
		f.to = time.Now()
		faults = append(faults, f)
		t.Logf("%s %s: down and back in %s", name, victim.name, f.to.Sub(f.from).Round(time.Millisecond))
	}

	settle()
	leader, _, _ := streamState(ctx, js, stream.MemoryStream)
	if leader == "" {
		t.Fatal("the memory stream has no leader")
	}
	var follower *node
	for _, n := range c.nodes {
		if n.name != leader {
			follower = n
			break
		}
	}
	nodeLoss("non-leader kill", follower, nil)
	faults[len(faults)-1].keptLeader = true

	quiet()
	leader, _, _ = streamState(ctx, js, stream.MemoryStream)
	victim := c.byName(leader)
	nodeLoss("leader kill", victim, func(f *fault) {
		// Poll the stream's leader through a surviving node only.
		var other *node
		for _, n := range c.nodes {
			if n != victim {
				other = n
				break
			}
		}
		nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", other.client), nats.UserInfo("engram-admin", c.pc.Passwords["admin"]))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		pjs, _ := jetstream.New(nc)
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if l, _, _ := streamState(ctx, pjs, stream.MemoryStream); l != "" && l != victim.name {
				f.leaderless = time.Since(f.from)
				t.Logf("leader kill: %s leads the memory stream after %s", l, f.leaderless.Round(time.Millisecond))
				return
			}
		}
		t.Fatal("no new leader of the memory stream within 60s")
	})

	quiet()
	pf := fault{name: "projector kill", from: time.Now()}
	stack.Kill("projector")
	settle()
	stack.Start("projector")
	pf.to = time.Now()
	faults = append(faults, pf)

	// A restart done right: the stream's leader in lame-duck mode hands its leadership over
	// before it goes, and its clients reconnect to the others. No write may be refused.
	quiet()
	leader, _, _ = streamState(ctx, js, stream.MemoryStream)
	ld := c.byName(leader)
	lf := fault{name: "lame-duck restart", node: true, keptLeader: true, from: time.Now()}
	c.lameDuck(ld)
	if l, _, _ := streamState(ctx, js, stream.MemoryStream); l == "" || l == ld.name {
		t.Errorf("lame-duck restart: the memory stream's leader is %q after %s left, want another node", l, ld.name)
	}
	restart(ld)
	lf.to = time.Now()
	faults = append(faults, lf)
	t.Logf("lame-duck restart %s: down and back in %s", ld.name, lf.to.Sub(lf.from).Round(time.Millisecond))

	// No quorum: two of the three nodes down. Writes are refused (503, nothing stored) once
	// the ingestors' ride-through is over, and accepted again when a second node is back.
	quiet()
	qf := fault{name: "two nodes down", node: true, noQuorum: true, from: time.Now()}
	downA, downB := c.nodes[0], c.nodes[1]
	c.kill(downA)
	c.kill(downB)
	time.Sleep(leaderRideThrough + 4*time.Second)
	restart(downA, downB)
	qf.to = time.Now()
	faults = append(faults, qf)
	t.Logf("two nodes down (%s, %s): back in %s", downA.name, downB.name, qf.to.Sub(qf.from).Round(time.Millisecond))
	settle()
	close(stop)
	wg.Wait()
	for _, w := range writers {
		if w.failed != nil {
			t.Fatalf("%s: %v", w.user, w.failed)
		}
	}

	checkUnavailability(t, writers, faults)
	concurrentWritesOfOneUser(t, ingestors)
	checkStream(t, js, writers)
	waitProjected(t, d, stack.Group, writers)
	checkGraph(t, d, stack.QueryURL, writers)

	// The graph equals a replay of the log, tenant by tenant, with the projectors stopped.
	stack.Stop("projector")
	stack.Stop("projector-2")
	scope := fingerprint.Scope{}
	for _, w := range writers {
		scope.Owners = append(scope.Owners, w.token)
	}
	live, err := fingerprint.Of(ctx, d, "", scope)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range writers {
		if _, err := replay.Run(ctx, d, js, replay.Options{User: w.user, MultiTenant: true, Force: true, Group: stack.Group}); err != nil {
			t.Fatalf("replay of %s: %v", w.user, err)
		}
	}
	replayed, err := fingerprint.Of(ctx, d, "", scope)
	if err != nil {
		t.Fatal(err)
	}
	if err := fingerprint.Compare(live, replayed, 20); err != nil {
		t.Fatalf("the live graph differs from a replay of the log: %v", err)
	}
	t.Logf("graph %s equals its replay", live)
}

// waitReady waits until a service answers /readyz with 200.
func waitReady(t *testing.T, base string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("%s not ready within 60s", base)
}

// checkUnavailability: every refused attempt was a 503 (or no answer) that overlapped a NATS
// node's loss; nothing was refused while every node ran or while a projector was down. It
// logs what writers saw of each fault: the refusals and the longest acknowledged write
// (first attempt to acknowledgement, retries included) — the leader election's blip.
func checkUnavailability(t *testing.T, writers []*writer, faults []fault) {
	t.Helper()
	in := func(a attempt, f fault) bool { return !a.start.After(f.to) && !a.end.Before(f.from) }
	var outside []time.Duration
	total := 0
	for _, w := range writers {
		for _, wr := range w.writes {
			total++
			hit := false
			for _, a := range wr.attempts[:len(wr.attempts)-1] {
				ok := false
				for _, f := range faults {
					ok = ok || f.node && in(a, f)
				}
				if !ok {
					t.Errorf("%s: a %s write refused at %s outside a node's loss: %d %s", w.user, wr.kind, a.start.Format(time.StampMilli), a.code, a.problem)
				}
			}
			for _, f := range faults {
				hit = hit || in(wr.attempts[0], f) || in(wr.attempts[len(wr.attempts)-1], f)
			}
			if !hit {
				outside = append(outside, wr.latency())
			}
		}
	}
	slices.Sort(outside)
	pct := func(s []time.Duration, p float64) time.Duration {
		if len(s) == 0 {
			return 0
		}
		return s[min(len(s)-1, int(float64(len(s))*p))]
	}
	t.Logf("%d writes acknowledged; outside faults (%d writes): p50 %s, p99 %s, max %s", total, len(outside),
		pct(outside, 0.5).Round(100*time.Microsecond), pct(outside, 0.99).Round(100*time.Microsecond), pct(outside, 1).Round(100*time.Microsecond))
	for _, f := range faults {
		var lat []time.Duration
		refused, retried := 0, 0
		// The refusals by kind and ingestor, with when they came (from the kill).
		type span struct {
			n        int
			from, to time.Duration
		}
		kinds := map[string]*span{}
		for _, w := range writers {
			for _, wr := range w.writes {
				if !in(wr.attempts[0], f) && !in(wr.attempts[len(wr.attempts)-1], f) {
					continue
				}
				lat = append(lat, wr.latency())
				for _, a := range wr.attempts[:len(wr.attempts)-1] {
					kind := "no answer"
					switch {
					case strings.Contains(a.problem, "did not acknowledge in time"):
						kind = "timeout"
					case strings.Contains(a.problem, "unavailable"):
						kind = "unavailable"
					}
					key := fmt.Sprintf("%s from ingestor %d", kind, a.ingestor+1)
					sp := kinds[key]
					if sp == nil {
						sp = &span{from: a.start.Sub(f.from)}
						kinds[key] = sp
					}
					sp.n++
					sp.from, sp.to = min(sp.from, a.start.Sub(f.from)), max(sp.to, a.end.Sub(f.from))
				}
				if len(wr.attempts) > 1 {
					retried++
					refused += len(wr.attempts) - 1
				}
			}
		}
		var problems []string
		for k, sp := range kinds {
			problems = append(problems, fmt.Sprintf("%d× %s between +%s and +%s", sp.n, k, sp.from.Round(time.Millisecond), sp.to.Round(time.Millisecond)))
		}
		slices.Sort(problems)
		slices.Sort(lat)
		line := fmt.Sprintf("%s: %d writes during it, %d refused answers (503) on %d writes, each then stored by a retry; write latency p50 %s, p99 %s, max %s",
			f.name, len(lat), refused, retried, pct(lat, 0.5).Round(100*time.Microsecond), pct(lat, 0.99).Round(100*time.Microsecond), pct(lat, 1).Round(time.Millisecond))
		if f.leaderless > 0 {
			line += fmt.Sprintf("; stream leaderless for %s (polled every 20ms)", f.leaderless.Round(time.Millisecond))
		}
		t.Log(line)
		if len(problems) > 0 {
			t.Logf("%s: refusals (from the kill): %s", f.name, strings.Join(problems, "; "))
		}
		if !f.node && refused > 0 {
			t.Errorf("%s: writes refused while only a projector was down", f.name)
		}
		if f.keptLeader && refused > 0 {
			// A publish in flight on the lost node is sent again once the ingestor is back
			// on another node (stream.Publisher); before, it waited out PUBLISH_TIMEOUT and
			// answered 503.
			t.Errorf("%s: %d writes refused while the memory stream kept its leader", f.name, refused)
		}
		if f.noQuorum && refused == 0 {
			t.Errorf("%s: no write refused while the cluster had no quorum for %s", f.name, f.to.Sub(f.from).Round(time.Millisecond))
		}
		if f.leaderless > 0 && f.leaderless < leaderRideThrough && refused > 0 {
			// The ingestors ride through the election (stream.WithLeaderWait, the default
			// PUBLISH_LEADER_WAIT): a write waits for the new leader instead of being refused.
			// Before, 33 to 66 answers were 503 during a leader kill.
			t.Errorf("%s: %d writes refused during an election of %s, shorter than the %s the ingestors wait for one",
				f.name, refused, f.leaderless.Round(time.Millisecond), leaderRideThrough)
		}
	}
}

// leaderRideThrough is how long an ingestor's write waits out an election: PUBLISH_TIMEOUT
// plus PUBLISH_LEADER_WAIT at their defaults, less a second for the writes that were already
// waiting when the leader was lost.
const leaderRideThrough = 5*time.Second + 10*time.Second - time.Second

// checkStream: the stream holds every acknowledged write exactly once, at the sequence its
// acknowledgement named, and nothing the writers did not send; a tenant's writes are stored
// in the order they were acknowledged.
func checkStream(t *testing.T, js jetstream.JetStream, writers []*writer) {
	t.Helper()
	for _, w := range writers {
		filter, err := events.TenantSubjects(w.user)
		if err != nil {
			t.Fatal(err)
		}
		var stored map[string][]uint64
		// The admin's connection may have moved to a node that was restarted a moment ago,
		// whose JetStream API answers once it has caught up: retry a failed read.
		for try := 0; ; try++ {
			stored = map[string][]uint64{}
			err = stream.Each(t.Context(), js, stream.MemoryStream, filter, true, func(m jetstream.Msg) error {
				md, err := m.Metadata()
				if err != nil {
					return err
				}
				id := m.Headers().Get("ce-id")
				stored[id] = append(stored[id], md.Sequence.Stream)
				return nil
			})
			if err == nil {
				break
			}
			if try == 20 {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		var last uint64
		for i, wr := range w.writes {
			seqs := stored[wr.eventID]
			if len(seqs) != 1 || seqs[0] != wr.seq {
				t.Errorf("%s: write %d (%s, acknowledged at %d) stored at %v, want once", w.user, i, wr.kind, wr.seq, seqs)
			}
			if wr.seq <= last {
				t.Errorf("%s: write %d stored at %d, before the previous write's %d", w.user, i, wr.seq, last)
			}
			last = wr.seq
			delete(stored, wr.eventID)
		}
		if len(stored) != 0 {
			t.Errorf("%s: %d stored events no writer acknowledged", w.user, len(stored))
		}
	}
}

// waitProjected waits until the group's checkpoints cover every acknowledged write.
func waitProjected(t *testing.T, d neo4j.DriverWithContext, group string, writers []*writer) {
	t.Helper()
	want := map[int]uint64{}
	for _, w := range writers {
		p := events.Partition(w.token, natsdeploy.Partitions)
		want[p] = max(want[p], w.writes[len(w.writes)-1].seq)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		done := true
		for p, seq := range want {
			got, err := projection.ReadCheckpoint(t.Context(), d, "", projection.CheckpointName(group, p))
			done = done && err == nil && got >= seq
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the projectors did not apply every acknowledged write within 2 minutes")
		}
	}
}

// checkGraph: each tenant's messages form one chain in acknowledged order, each message,
// preference and entity exists once, and the query service reads the preferences back.
func checkGraph(t *testing.T, d neo4j.DriverWithContext, queryURL string, writers []*writer) {
	t.Helper()
	ctx := t.Context()
	for _, w := range writers {
		var msgs, prefs, ents []string
		for _, wr := range w.writes {
			switch wr.kind {
			case "message":
				msgs = append(msgs, wr.id)
			case "preference":
				prefs = append(prefs, wr.id)
			case "entity":
				ents = append(ents, wr.id)
			}
		}
		res, err := neo4j.ExecuteQuery(ctx, d, `
			MATCH (c:Conversation {owner: $owner})-[:FIRST_MESSAGE]->(f)
			MATCH p = (f)-[:NEXT_MESSAGE*0..]->(m) WHERE NOT (m)-[:NEXT_MESSAGE]->()
			RETURN [n IN nodes(p) | n.id] AS ids`, map[string]any{"owner": w.token}, neo4j.EagerResultTransformer)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Records) != 1 {
			t.Errorf("%s: %d conversation chains, want 1", w.user, len(res.Records))
		} else if ids, _ := res.Records[0].Get("ids"); fmt.Sprint(ids) != fmt.Sprint(msgs) {
			t.Errorf("%s: the message chain is not the acknowledged order:\n got %v\nwant %v", w.user, ids, msgs)
		}
		for _, c := range []struct {
			label, key string
			want       []string
		}{{"Message", "id", msgs}, {"Preference", "id", prefs}, {"Entity", "name", ents}} {
			res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (n:"+c.label+" {owner: $owner}) RETURN n."+c.key+" AS k",
				map[string]any{"owner": w.token}, neo4j.EagerResultTransformer)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res.Records {
				k, _ := r.Get("k")
				got = append(got, fmt.Sprint(k))
			}
			sort.Strings(got)
			want := slices.Sorted(slices.Values(c.want))
			if !slices.Equal(got, want) {
				t.Errorf("%s: %d %s nodes, want each of the %d acknowledged once", w.user, len(got), c.label, len(want))
			}
		}
		// The query service, with the last write's token.
		u := fmt.Sprintf("%s/v1/users/%s/preferences?consistency=%d", queryURL, url.PathEscape(w.user), w.writes[len(w.writes)-1].seq)
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Preferences []struct {
				ID string `json:"id"`
			} `json:"preferences"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: query preferences: %d, %v", w.user, resp.StatusCode, err)
		}
		var got []string
		for _, p := range body.Preferences {
			got = append(got, p.ID)
		}
		slices.Sort(got)
		if want := slices.Sorted(slices.Values(prefs)); !slices.Equal(got, want) {
			t.Errorf("%s: the query service reads %d preferences, want %d", w.user, len(got), len(want))
		}
	}
}

// concurrentWritesOfOneUser: many writes of one user at once, through both ingestors, are all
// accepted at the first attempt. Each write is stored on the condition that the user's
// erasure subject is unchanged (internal/ingest/erasurecache.go), and a clustered stream
// refuses a second such condition on a subject while the first is still being replicated
// (nats-server's "in process" check): the ingestor must wait that out, not answer it.
func concurrentWritesOfOneUser(t *testing.T, ingestors []string) {
	t.Helper()
	user := testenv.User(t, "burst")
	hc := &http.Client{Timeout: 30 * time.Second}
	// The check follows the loss of quorum: a node back and healthy, the replicas current and
	// the ingestors ready, the stream may still be electing or catching up and refuse writes
	// (503, nothing stored) for a few seconds more, which is the refusal checkUnavailability
	// accounts for, not the one this check is about. One write of the user accepted first.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		body, _ := json.Marshal(map[string]any{"user_identifier": user, "session_id": "burst", "role": "user", "content": "first"})
		resp, err := hc.Post(ingestors[0]+"/v1/messages", "application/json", bytes.NewReader(body))
		last := fmt.Sprint(err)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				break
			}
			last = resp.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write accepted within 60s after the cluster was back (last: %s)", last)
		}
	}
	const n = 48
	codes := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body, _ := json.Marshal(map[string]any{"user_identifier": user, "session_id": "burst", "role": "user",
				"content": "burst " + strconv.Itoa(i)})
			resp, err := hc.Post(ingestors[i%len(ingestors)]+"/v1/messages", "application/json", bytes.NewReader(body))
			if err != nil {
				codes[i] = err.Error()
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				codes[i] = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(raw)))
			}
		})
	}
	wg.Wait()
	refused := 0
	for i, c := range codes {
		if c != "" {
			refused++
			t.Errorf("concurrent write %d of one user: %s, want 202", i, c)
		}
	}
	t.Logf("%d concurrent writes of one user through %d ingestors: %d refused", n, len(ingestors), refused)
}
