package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/procstat"
)

func init() {
	scenarios[ScenarioReads] = reads
}

// The reads scenario seeds its graph straight into Neo4j with UNWIND statements that write
// exactly what the projector writes for the same events (docs/graph.md: owner, derived ids,
// valid and transaction time); projecting 100k users × 10 preferences through the stream
// would take far longer than the reads it prepares for.
const seedUsers = `
UNWIND $users AS s
CREATE (u:User {identifier: s.identifier, id: s.uid, owner: s.owner, created_at: s.at, attributes_json: '{}',
                recorded_at: s.at, recorded_seq: s.seq})
WITH u, s
CALL (s) {
  UNWIND s.entities AS e
  CREATE (:Entity {id: e.id, name: e.name, type: e.type, owner: s.owner, created_at: s.at,
                   recorded_at: s.at, recorded_seq: s.seq})
}
CALL (u, s) {
  UNWIND s.prefs AS p
  CREATE (x:Preference {id: p.id, category: p.category, preference: p.preference, context: null,
                        confidence: p.confidence, created_at: p.at, valid_from: p.at, metadata: '{}',
                        owner: s.owner, recorded_at: p.at, recorded_seq: p.seq})
  CREATE (u)-[:HAS_PREFERENCE]->(x)
  WITH x, p
  UNWIND p.entities AS eid
  MATCH (e:Entity {id: eid})
  CREATE (x)-[:APPLIES_TO]->(e)
}
CALL (s) {
  WITH s WHERE s.old IS NOT NULL
  MATCH (o:Preference {id: s.old}), (n:Preference {id: s.new})
  CREATE (o)-[:SUPERSEDED_BY {at: s.until, recorded_at: s.until}]->(n)
  SET o.valid_until = s.until, o.superseded_recorded_at = s.until, o.superseded_seq = s.seq
}`

// The seed library's get_preferences_for, run by a plain Go program: the baseline of the
// query service's reads (same graph, same variant, no HTTP, no isolation checks).
const (
	rawReadActive = `
MATCH (u:User {identifier: $identifier})-[:HAS_PREFERENCE]->(p:Preference)
WHERE NOT (p)-[:SUPERSEDED_BY]->()
RETURN p`
	rawReadAppliesTo = `
MATCH (u:User {identifier: $identifier})-[:HAS_PREFERENCE]->(p:Preference)-[:APPLIES_TO]->(e:Entity)
WHERE e.name = $name AND e.type = $type AND NOT (p)-[:SUPERSEDED_BY]->()
RETURN DISTINCT p`
	rawReadAsOf = `
MATCH (u:User {identifier: $identifier})-[:HAS_PREFERENCE]->(p:Preference)
WHERE (p.valid_from IS NULL OR p.valid_from <= $as_of) AND (p.valid_until IS NULL OR p.valid_until > $as_of)
RETURN p`
)

var seedEntities = []events.EntityRef{{Name: "Healthcare", Type: "Industry"}, {Name: "Berlin", Type: "Location"}, {Name: "Finance", Type: "Industry"}}

// seedBase is the valid time of the first seeded preference; preference j is valid from
// seedBase + j days. In the offset form (2026-01-01T09:00Z), as the projection stores every
// datetime (docs/graph.md): in time.UTC the driver would send the zone id
// (2026-01-01T09:00Z[UTC]), which the projector never writes.
var seedBase = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC).In(time.FixedZone("Offset", 0))

// seedRow is one user's part of the seeding statement.
func seedRow(t Tenants, i, prefs int) map[string]any {
	user := t.User(groupReads, i)
	owner, _ := events.TenantToken(user)
	ents := make([]any, len(seedEntities))
	for k, e := range seedEntities {
		ents[k] = map[string]any{"id": events.EntityID(user, e.Name, e.Type), "name": e.Name, "type": e.Type}
	}
	ps := make([]any, prefs)
	ids := make([]string, prefs)
	for j := range prefs {
		ids[j] = events.NewID()
		var applies []any
		if j%2 == 0 {
			applies = append(applies, ents[0].(map[string]any)["id"])
		}
		if j%4 == 0 {
			applies = append(applies, ents[1].(map[string]any)["id"])
		}
		if j%3 == 1 {
			applies = append(applies, ents[2].(map[string]any)["id"])
		}
		if applies == nil {
			applies = []any{}
		}
		ps[j] = map[string]any{"id": ids[j], "category": categories[j%len(categories)],
			"preference": fmt.Sprintf("Preference %d: prefers senior consultants with domain experience and weekly written updates", j),
			"confidence": 0.6 + float64(j%4)/10, "at": seedBase.Add(time.Duration(j) * 24 * time.Hour), "seq": int64(i*prefs + j + 1),
			"entities": applies}
	}
	row := map[string]any{"identifier": user, "uid": events.UserID(user), "owner": owner, "at": seedBase,
		"seq": int64(i*prefs + 1), "entities": ents, "prefs": ps, "old": nil, "new": nil, "until": nil}
	if prefs >= 2 {
		// Preference 0 is superseded by preference 1 when 1 becomes valid.
		row["old"], row["new"], row["until"] = ids[0], ids[1], seedBase.Add(24*time.Hour)
	}
	return row
}

// seed writes users × prefs with rawWriters concurrent writers, UNWIND statements of about
// UnwindBatch preferences each.
func (r *runner) seed(ctx context.Context, users, prefs int) (time.Duration, error) {
	return r.seedWith(ctx, users, max(1, r.cfg.UnwindBatch/prefs), seedUsers, func(i int) any { return seedRow(r.tenants, i, prefs) })
}

// seedWith runs cypher over $users, perStmt rows (row(i) for user i) a statement, with
// rawWriters concurrent writers, and returns how long it took.
func (r *runner) seedWith(ctx context.Context, users, perStmt int, cypher string, row func(i int) any) (time.Duration, error) {
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for range rawWriters {
		wg.Go(func() {
			for from := range next {
				rows := make([]any, 0, perStmt)
				for i := from; i < min(from+perStmt, users); i++ {
					rows = append(rows, row(i))
				}
				_, err := neo4j.ExecuteQuery(ctx, r.stack.Neo4j, cypher, map[string]any{"users": rows},
					neo4j.EagerResultTransformer, neo4j.ExecuteQueryWithDatabase(r.stack.Neo4jDB))
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("seed users %d-%d: %w", from, from+len(rows)-1, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	lastLog := time.Now()
	for from := 0; from < users; from += perStmt {
		mu.Lock()
		err := firstErr
		mu.Unlock()
		if err != nil || ctx.Err() != nil {
			break
		}
		next <- from
		if time.Since(lastLog) > 15*time.Second {
			r.log.Info("seeding", "users", from, "of", users, "elapsed", time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return time.Since(start), ctx.Err()
}

// readVariant is one shape of GetPreferencesFor.
type readVariant struct {
	name   string
	query  string // the query service's query string
	raw    string // the baseline's Cypher
	params map[string]any
}

func readVariants(prefs int) []readVariant {
	asOf := seedBase.Add(time.Duration(prefs) * 12 * time.Hour) // about half of the preferences are valid
	return []readVariant{
		{name: "active", query: "", raw: rawReadActive},
		{name: "applies_to", query: "applies_to_name=Healthcare&applies_to_type=Industry", raw: rawReadAppliesTo,
			params: map[string]any{"name": "Healthcare", "type": "Industry"}},
		{name: "as_of", query: "active_only=false&as_of=" + url.QueryEscape(asOf.Format(time.RFC3339)), raw: rawReadAsOf,
			params: map[string]any{"as_of": asOf}},
	}
}

// reads: GetPreferencesFor through the query service over users × prefs-per-user seeded
// preferences, each variant next to the same read as plain Cypher from Go.
func reads(ctx context.Context, r *runner) error {
	q, err := r.stack.Service(ServiceQuery)
	if err != nil {
		return err
	}
	users, prefs := r.cfg.Users, r.cfg.PrefsPerUser
	r.log.Info("seeding the graph", "users", users, "prefs_per_user", prefs)
	took, err := r.seed(ctx, users, prefs)
	if err != nil {
		return err
	}
	seed := Result{Scenario: "baseline", Variant: fmt.Sprintf("seed %d users × %d preferences", users, prefs), Metric: "prefs/s",
		Value: float64(users*prefs) / took.Seconds(), Count: users * prefs}
	seed = withNote(seed, fmt.Sprintf("UNWIND CREATE of users, entities, preferences (APPLIES_TO, one SUPERSEDED_BY per user) straight into Neo4j, %d writers, %.0f s", rawWriters, took.Seconds()))
	r.report.Add(seed)
	r.log.Info("seeded", "users", users, "elapsed", took.Round(time.Second))
	client := httpClient(r.cfg.ReadWorkers)
	neo4jPID := r.neo4jPID()
	var worst *readVariant
	var worstP99 float64
	for _, v := range readVariants(prefs) {
		// The baseline first: plain Cypher through the driver, same workers.
		rawRate, rs, rawCPU := r.readLoop(ctx, neo4jPID, func(ctx context.Context) (int, error) {
			params := map[string]any{"identifier": r.tenants.User(groupReads, rand.IntN(users))}
			for k, val := range v.params {
				params[k] = val
			}
			_, err := neo4j.ExecuteQuery(ctx, r.stack.Neo4j, v.raw, params, neo4j.EagerResultTransformer,
				neo4j.ExecuteQueryWithDatabase(r.stack.Neo4jDB), neo4j.ExecuteQueryWithReadersRouting())
			return 1, err
		})
		base := latencyResult("baseline", "raw cypher get_preferences_for "+v.name, "req/s", rawRate, rs)
		r.report.Add(base)
		rate, s, cpu := r.readLoop(ctx, neo4jPID, func(ctx context.Context) (int, error) {
			return 1, get(ctx, client, readURL(q.URL, r.tenants, users, v))
		})
		res := ratioTo(latencyResult(ScenarioReads, fmt.Sprintf("GetPreferencesFor %s workers=%d", v.name, r.cfg.ReadWorkers), "req/s", rate, s), base, 0)
		if rawCPU > 0 && cpu > 0 {
			// Where a read's cost lies: in Neo4j (its statement) or around it (HTTP, the
			// service, the driver), on the two cores both share.
			res = withNote(res, fmt.Sprintf("Neo4j's CPU per read %.0f µs, the raw Cypher's %.0f µs (a managed transaction, as ExecuteQuery runs it)", cpu, rawCPU))
		}
		res.Target = fmt.Sprintf("p99 ≤ %s", targetReadP99)
		res.Status = met(s.Count > 0 && s.P99 <= targetReadP99 && s.Errors == 0)
		r.report.Add(res)
		r.log.Info("measured", "row", res.Name(), "req_per_s", int(res.Value), "p99_ms", res.P99)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if res.Status == StatusMissed && (worst == nil || res.P99 > worstP99) {
			worst, worstP99 = &v, res.P99
		}
	}
	if r.cfg.Profile && worst != nil {
		if err := r.profileReads(ctx, *worst, users); err != nil {
			r.report.Note("profile of %s not taken: %v", ScenarioReads, err)
		}
	}
	r.report.Note("reads: the graph of %d users × %d preferences was seeded with UNWIND Cypher following docs/graph.md, not projected", users, prefs)
	t0 := time.Now()
	n, err := DeleteGraph(ctx, r.stack.Neo4j, r.stack.Neo4jDB, r.tenants.GroupPrefix(groupReads))
	r.log.Info("seeded graph removed", "nodes", n, "elapsed", time.Since(t0).Round(time.Second))
	return err
}

// readLoop runs op closed-loop with the read workers, warm-up first, and returns the rate, the
// latencies and Neo4j's CPU time per operation over the timed step in µs (0 when Neo4j's
// process is not known: another machine's, or not the development one).
func (r *runner) readLoop(ctx context.Context, pid int, op func(context.Context) (int, error)) (float64, Summary, float64) {
	if r.cfg.Warmup > 0 {
		closedLoop(ctx, r.cfg.ReadWorkers, 0, r.cfg.Warmup, op)
	}
	cpu0 := procstat.CPU(pid)
	rate, s := closedLoop(ctx, r.cfg.ReadWorkers, 0, r.cfg.Duration, op)
	cpu := procstat.CPU(pid) - cpu0
	if pid <= 0 || cpu0 == 0 || s.Count == 0 {
		return rate, s, 0
	}
	return rate, s, cpu / float64(s.Count+s.Errors) * 1e6
}

// neo4jPID is the process of the local Neo4j the run reads from, else 0: one deploy/neo4j
// started (var/run/neo4j.pid, the development server, or var/run/neo4j-NAME.pid, an instance
// of its own) whose Bolt port is the run's URI's.
func (r *runner) neo4jPID() int {
	uri := r.cfg.Endpoints.Neo4j.URI
	if r.cfg.RepoDir == "" || !isLoopback(uri) {
		return 0
	}
	u, err := url.Parse(uri)
	if err != nil {
		return 0
	}
	port := cmp.Or(u.Port(), "7687")
	files, _ := filepath.Glob(filepath.Join(r.cfg.RepoDir, "var", "run", "neo4j*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		// neo4j.sh exports the port it starts the launcher with; a process that ended has no
		// environment to read, and one that reuses its pid does not have it.
		if p, ok := procstat.Env(pid, "NEO4J_BOLT_PORT"); ok && p == port {
			return pid
		}
	}
	return 0
}

// get GETs u and requires 200.
func get(ctx context.Context, client *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return expectOK(client, req)
}

// post POSTs the JSON body to u and requires 200.
func post(ctx context.Context, client *http.Client, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return expectOK(client, req)
}

// expectOK sends req and requires 200.
func expectOK(client *http.Client, req *http.Request) error {
	u := req.Method + " " + req.URL.String()
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d: %s", u, resp.StatusCode, clip(string(b), 300))
	}
	return nil
}

// readURL is a GetPreferencesFor request of variant v for a random seeded user.
func readURL(base string, t Tenants, users int, v readVariant) string {
	u := base + "/v1/users/" + url.PathEscape(t.User(groupReads, rand.IntN(users))) + "/preferences"
	if v.query != "" {
		u += "?" + v.query
	}
	return u
}
