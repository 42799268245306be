package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/client"
	natsdeploy "github.com/engram-memory/engram/deploy/nats"
	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/ingest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestProductionNATSConfig runs the whole stack under the shipped production NATS
// configuration (deploy/production/nats-server.conf with deploy/nats/accounts.conf, one node),
// each service with its own restricted user and authentication on, plus a tenant's agent
// publishing over NATS with an nkey user made as `memctl nats-user` makes it. Writes for users
// of several partitions, a batch across two partitions read back with the batch's token, the
// agent's direct publish, an invalid event dead-lettered, fate reads (fateReads), an erasure,
// and writes after an erasure refused, dropped and re-admitted by a re-creation
// (erasedWrites) must all land: a permission the services need and the configuration lacks fails it.
//
// Not parallel: the server reads the users' password hashes from the environment.
func TestProductionNATSConfig(t *testing.T) {
	// Users of distinct partitions, so that tokens of one partition are read in another.
	var users []string
	parts := map[int]bool{}
	for len(users) < 4 {
		u := testenv.User(t, "prod")
		tok, err := events.EncodeToken(u)
		if err != nil {
			t.Fatal(err)
		}
		if p := events.Partition(tok, natsdeploy.Partitions); !parts[p] {
			parts[p] = true
			users = append(users, u)
		}
	}
	sara, liam, noah, agentUser := users[0], users[1], users[2], users[3]
	t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), users...) })

	nats1 := testenv.StartProductionNATS(t, agentUser)
	secret := bytes.Repeat([]byte("prod-secret-"), 4)
	secretFile := filepath.Join(t.TempDir(), "hs256")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	stack := testenv.StartStackWith(t, testenv.StackOptions{
		NATSURL: nats1.Server.ClientURL(),
		Env:     []string{"AUTH_ENABLED=true", "AUTH_HS256_SECRET_FILE=" + secretFile, "MULTI_TENANT=true"},
		ServiceEnv: map[string][]string{
			"ingestor":  {"NATS_URL=" + nats1.URL("ingestor")},
			"projector": {"NATS_URL=" + nats1.URL("projector")},
			"query":     {"NATS_URL=" + nats1.URL("query")},
		},
	})
	ops, err := auth.SignHS256(secret, auth.TokenSpec{Subject: "ops", Users: []string{"*"}, Scopes: auth.AllScopes, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true), client.WithBearerToken(ops))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	// Writes through the ingestor, each read back with its own token.
	written := map[string]*client.Preference{}
	for _, u := range []string{sara, liam, noah} {
		if _, err := c.Users.UpsertUser(ctx, u, client.WithAttributes(map[string]any{"email": u})); err != nil {
			t.Fatalf("upsert %s: %v", u, err)
		}
		p, err := c.LongTerm.AddPreference(ctx, "consultants", "senior for "+u, client.ForUser(u))
		if err != nil {
			t.Fatalf("preference of %s: %v", u, err)
		}
		ps, err := c.LongTerm.GetPreferencesFor(ctx, u, client.AtLeast(p.Receipt.Sequence))
		if err != nil || len(ps) != 1 || ps[0].ID != p.ID {
			t.Fatalf("read %s's preference with its token: %v, %v", u, ps, err)
		}
		written[u] = p
	}
	fateReads(t, stack.QueryURL, c, secret, written[sara], liam)
	// Multi-tenant mode is on: there is no shared tenant to read, and the answer says so.
	if code, body := get(t, stack.QueryURL+"/v1/shared/preferences", ops); code != http.StatusNotFound || !strings.Contains(body, "multi-tenant mode is on") {
		t.Fatalf("shared tenant read with multi-tenant mode on: %d %s", code, body)
	}

	// A batch across two partitions; each user read with the batch's token, which for one of
	// them is another partition's sequence.
	body, _ := json.Marshal(map[string]any{"commands": []any{
		map[string]any{"op": "add_message", "user_identifier": sara, "session_id": "s1", "role": "user", "content": "batch for " + sara},
		map[string]any{"op": "add_message", "user_identifier": liam, "session_id": "s1", "role": "user", "content": "batch for " + liam},
	}})
	var batch ingest.BatchAccepted
	if code := doJSON(t, http.MethodPost, stack.IngestorURL+"/v1/batch", ops, body, &batch); code != http.StatusAccepted {
		t.Fatalf("batch: %d", code)
	}
	for _, u := range []string{sara, liam} {
		code, raw := get(t, fmt.Sprintf("%s/v1/users/%s/conversations/s1/messages?consistency=%d", stack.QueryURL, url.PathEscape(u), batch.Sequence), ops)
		if code != http.StatusOK || !strings.Contains(raw, "batch for "+u) {
			t.Fatalf("read %s with the batch's token %d: %d %s", u, batch.Sequence, code, raw)
		}
		if _, err := c.Users.GetUser(ctx, u, client.AtLeast(batch.Sequence)); err != nil {
			t.Fatalf("read %s with the batch's token: %v", u, err)
		}
	}

	// The agent publishes for its own tenant over NATS; the query service reads it.
	anc, _ := nats1.ConnectAgent(t, agentUser)
	agent, err := client.New(client.WithHTTP("", stack.QueryURL), client.WithNATS(anc, 16), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Users.UpsertUser(ctx, agentUser); err != nil {
		t.Fatal(err)
	}
	ap, err := agent.LongTerm.AddPreference(ctx, "food", "vegetarian", client.ForUser(agentUser))
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Wait(ctx); err != nil {
		t.Fatalf("agent's publishes: %v", err)
	}
	// And one event the projector cannot apply: it must reach the dead-letter stream.
	tok, _ := events.EncodeToken(agentUser)
	bad := nats.NewMsg("mem." + tok + ".preference_added")
	bad.Header.Set(nats.MsgIdHdr, events.NewID())
	bad.Data = []byte("not a cloud event")
	ajs, _ := jetstream.New(anc)
	badAck, err := ajs.PublishMsg(ctx, bad)
	if err != nil {
		t.Fatalf("agent's invalid event: %v", err)
	}
	waitFor(t, "the agent's preference", func() (bool, string) {
		ps, err := c.LongTerm.GetPreferencesFor(ctx, agentUser, client.AtLeast(badAck.Sequence))
		return err == nil && len(ps) == 1 && ps[0].ID == ap.ID, fmt.Sprint(ps, err)
	})
	// The agent's receipt has no sequence: the fate read finds the event by its id's time.
	if ap.Receipt.Sequence != 0 || ap.Receipt.User != agentUser {
		t.Fatalf("receipt of a write over NATS: %+v", ap.Receipt)
	}
	if f, err := c.WaitApplied(ctx, ap.Receipt); err != nil || f.Status != client.FateApplied || f.Sequence == 0 {
		t.Fatalf("fate of the agent's preference: %+v, %v", f, err)
	}

	// Erasure: the graph forgets noah, the stream keeps only the tombstone.
	r, err := c.Users.EraseUser(ctx, noah, client.WithReason("production config test"))
	if err != nil {
		t.Fatalf("erase: %v", err)
	}
	if _, err := c.Users.GetUser(ctx, noah, client.AtLeast(r.Sequence)); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("erased user readable: %v", err)
	}
	// The erased user's events are gone from the log, and so is their fate.
	if f, err := c.Fate(ctx, written[noah].Receipt); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("fate of an erased user's write: %+v, %v", f, err)
	}
	if f, err := c.Fate(ctx, r); err != nil || f.Kind != string(events.KindUserErased) {
		t.Fatalf("fate of the tombstone: %+v, %v", f, err)
	}
	if ps, err := c.LongTerm.GetPreferencesFor(ctx, noah, client.AtLeast(r.Sequence)); err != nil || len(ps) != 0 {
		t.Fatalf("erased user's preferences: %v, %v", ps, err)
	}
	_, admin := nats1.Connect(t, "admin")
	filter, _ := events.TenantSubjects(noah)
	mem, err := admin.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := mem.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	for subj, n := range info.State.Subjects {
		if _, kind, _ := events.ParseSubject(subj); kind != events.KindUserErased || n != 1 {
			t.Errorf("after erasure %d events on %s", n, subj)
		}
	}
	for _, u := range []string{sara, liam} {
		if _, err := c.Users.GetUser(ctx, u, client.AtLeast(r.Sequence)); err != nil {
			t.Errorf("%s after noah's erasure: %v", u, err)
		}
	}
	erasedWrites(t, c, agent, nats1, agentUser)

	// The projector applied everything: no lag on any partition (the metric is missing when
	// the stream cannot be read), no retry for NATS, and the two refused events (only they:
	// the agent's invalid one, the supersede of fateReads) in the dead-letter stream.
	waitFor(t, "projector caught up", func() (bool, string) {
		m, err := scrape(stack.ProjectorURL)
		if err != nil {
			return false, err.Error()
		}
		for p := range natsdeploy.Partitions {
			lag, ok := m[fmt.Sprintf(`engram_projector_lag_events{partition="%d"}`, p)]
			if !ok || lag != 0 {
				return false, fmt.Sprintf("partition %d: lag %v (reported: %v)", p, lag, ok)
			}
		}
		return true, ""
	})
	m, err := scrape(stack.ProjectorURL)
	if err != nil {
		t.Fatal(err)
	}
	var dead float64
	for k, v := range m {
		if strings.HasPrefix(k, "engram_projector_dead_lettered_total") {
			dead += v
		}
	}
	if dead != 2 || m[`engram_projector_retries_total{cause="nats"}`] != 0 {
		t.Errorf("dead-lettered %v (want the two refused events), nats retries %v", dead, m[`engram_projector_retries_total{cause="nats"}`])
	}
	dlq, err := admin.Stream(ctx, stream.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	// The agent's invalid event's dead letter went with its user's erasure (erasedWrites).
	if n := dlq.CachedInfo().State.Msgs; n != 1 {
		t.Errorf("%d dead letters, want 1 (fateReads' supersede)", n)
	}
	// And no service met a permission violation on the way.
	if v := nats1.Violations(); len(v) > 0 {
		t.Errorf("nats permission violations:\n%s", strings.Join(v, "\n"))
	}
}

// erasedWrites erases the agent's user and checks, with each service as its production NATS
// user, the rule of writes after an erasure: the ingestor refuses a write for the user (410:
// its last-by-subject reads of the tombstone and re-creation), the agent's own publish is
// stored but dropped (the projector's check, no dead letter) and its fate is refused (the
// query service's), and after the re-creation (the ingestor's per-kind purges) the agent's
// writes are applied again.
func erasedWrites(t *testing.T, c, agent *client.Client, n *testenv.SecuredNATS, user string) {
	t.Helper()
	ctx := t.Context()
	if _, err := c.Users.EraseUser(ctx, user); err != nil {
		t.Fatalf("erase the agent's user: %v", err)
	}
	if _, err := c.ShortTerm.AddMessage(ctx, "s1", "user", "after the erasure", client.ForUser(user)); !errors.Is(err, client.ErrGone) {
		t.Fatalf("write for an erased user through the ingestor: %v, want ErrGone (410)", err)
	}
	dropped, err := agent.LongTerm.AddPreference(ctx, "food", "after the erasure", client.ForUser(user))
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Wait(ctx); err != nil {
		t.Fatalf("agent's publish after the erasure: %v", err)
	}
	if f, err := c.WaitApplied(ctx, dropped.Receipt); !errors.Is(err, client.ErrGone) || f.Status != client.FateRefused {
		t.Fatalf("fate of the agent's write after the erasure: %+v, %v; want refused", f, err)
	}
	again, err := c.Users.RecreateUser(ctx, user)
	if err != nil {
		t.Fatalf("re-create the agent's user: %v", err)
	}
	_, admin := n.Connect(t, "admin")
	filter, _ := events.TenantSubjects(user)
	mem, err := admin.Stream(ctx, stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := mem.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 2 {
		t.Errorf("after the re-creation the user's subjects are %v, want the tombstone and the re-creation", info.State.Subjects)
	}
	back, err := agent.LongTerm.AddPreference(ctx, "food", "tea", client.ForUser(user))
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Wait(ctx); err != nil {
		t.Fatalf("agent's publish after the re-creation: %v", err)
	}
	if f, err := c.WaitApplied(ctx, back.Receipt); err != nil || f.Status != client.FateApplied || f.Sequence <= again.Sequence {
		t.Fatalf("fate of the agent's write after the re-creation: %+v, %v", f, err)
	}
}

// fateReads asks the query service, as its production NATS user, what became of writes: an
// applied preference of sara's (by its receipt, and found by its id alone), a supersede of a
// preference that never existed (accepted by the ingestor, dead-lettered by the projector),
// and sara's event asked about as liam's (404) or by a principal limited to liam (403).
func fateReads(t *testing.T, queryURL string, c *client.Client, secret []byte, p *client.Preference, liam string) {
	t.Helper()
	ctx := t.Context()
	sara := p.Receipt.User
	f, err := c.WaitApplied(ctx, p.Receipt)
	if err != nil || f.Status != client.FateApplied || f.Sequence != p.Receipt.Sequence || f.Kind != string(events.KindPreferenceAdded) {
		t.Fatalf("fate of sara's preference: %+v, %v", f, err)
	}
	if f, err := c.Fate(ctx, client.Receipt{EventID: p.Receipt.EventID, User: sara}); err != nil ||
		f.Status != client.FateApplied || f.Sequence != p.Receipt.Sequence {
		t.Fatalf("fate of sara's preference found by its id: %+v, %v", f, err)
	}

	r, err := c.LongTerm.SupersedePreference(ctx, events.NewID(), p.ID, client.ForUser(sara))
	if err != nil {
		t.Fatalf("supersede of a preference that does not exist: %v", err)
	}
	_, err = c.WaitApplied(ctx, r)
	var rej *client.RejectedError
	if !errors.Is(err, client.ErrRejected) || !errors.As(err, &rej) || rej.Reason != "missing_reference" || rej.Message == "" ||
		rej.Sequence != r.Sequence || rej.EventID != r.EventID {
		t.Fatalf("fate of the supersede: %v", err)
	}

	ops := bearer(t, secret, []string{"*"})
	target := fmt.Sprintf("%s/v1/users/%s/events/%s?sequence=%d", queryURL, url.PathEscape(liam), p.Receipt.EventID, p.Receipt.Sequence)
	if code, body := get(t, target, ops); code != http.StatusNotFound || strings.Contains(body, sara) {
		t.Fatalf("sara's event asked about as liam's: %d %s", code, body)
	}
	target = fmt.Sprintf("%s/v1/users/%s/events/%s?sequence=%d", queryURL, url.PathEscape(sara), p.Receipt.EventID, p.Receipt.Sequence)
	if code, body := get(t, target, bearer(t, secret, []string{liam})); code != http.StatusForbidden {
		t.Fatalf("sara's event asked about by liam's principal: %d %s", code, body)
	}
}

// bearer signs a read token for users.
func bearer(t *testing.T, secret []byte, users []string) string {
	t.Helper()
	tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: "reader", Users: users, Scopes: []auth.Scope{auth.ScopeRead}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func waitFor(t *testing.T, what string, ok func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		done, last := ok()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s (last: %s)", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func doJSON(t *testing.T, method, url, token string, body []byte, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// scrape reads a Prometheus text exposition into name{labels} -> value.
func scrape(base string) (map[string]float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("/metrics: %d %s", resp.StatusCode, raw)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}
