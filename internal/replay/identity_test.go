package replay_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/replay"
	"github.com/engram-memory/engram/internal/testenv"
)

// sameServerURIs spells the address of a server listening on 127.0.0.1 (uri is
// bolt://127.0.0.1:P) in the ways an operator might: another host name, a trailing slash,
// the routing scheme.
func sameServerURIs(t *testing.T, uri string) []string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	return []string{
		"bolt://localhost:" + port,
		"bolt://127.0.0.1:" + port + "/",
		"neo4j://127.0.0.1:" + port,
		"neo4j://localhost:" + port + "/",
	}
}

// markers counts the nodes seedMarkers created.
func markers(ctx context.Context, t *testing.T, d neo4j.DriverWithContext) int64 {
	t.Helper()
	res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (m:IdentityMarker) RETURN count(m) AS n", nil, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := res.Records[0].Get("n")
	return n.(int64)
}

func seedMarkers(ctx context.Context, t *testing.T, d neo4j.DriverWithContext) {
	t.Helper()
	if _, err := neo4j.ExecuteQuery(ctx, d, "UNWIND range(1, 3) AS i CREATE (:IdentityMarker {i: i})", nil,
		neo4j.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyRefusesTheLiveDatabaseByIdentity: issue 12, finding 4. Verify wiped "scratch"
// whenever its driver was another object than the live one's, so bolt://localhost:P against a
// live bolt://127.0.0.1:P wiped the live graph. Now the same database under any spelling of
// its address is refused, with nothing deleted; a scratch on another Neo4j is accepted (and
// wiped). The live database here is a Neo4j of the test's own: on the code before the fix the
// test wipes it, never the shared one.
func TestVerifyRefusesTheLiveDatabaseByIdentity(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	neo := testenv.StartNeo4jProcess(t)
	live := neo.Driver(t)
	seedMarkers(ctx, t, live)
	_, _, js := testenv.NATS(t)
	users := []string{testenv.User(t, "identity")}

	for _, uri := range sameServerURIs(t, neo.URI) {
		t.Run(uri, func(t *testing.T) {
			d, err := neo4j.NewDriverWithContext(uri, neo4j.BasicAuth(neo.User, neo.Password, ""))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close(context.Background()) })
			_, err = replay.Verify(ctx, live, d, js, replay.VerifyOptions{Users: users, MultiTenant: true})
			if !errors.Is(err, replay.ErrSameDatabase) {
				t.Fatalf("verify with scratch %s, live %s: %v; want ErrSameDatabase", uri, neo.URI, err)
			}
			if !strings.Contains(err.Error(), "nothing was deleted") {
				t.Errorf("refusal does not say nothing was deleted: %v", err)
			}
			if n := markers(ctx, t, live); n != 3 {
				t.Fatalf("live graph touched: %d of 3 marker nodes left", n)
			}
		})
	}

	// Two Neo4j processes: the shared one as the live graph (only read) and the test's own as
	// the scratch, which is wiped.
	shared := testenv.Neo4j(t)
	if err := replay.Distinct(ctx, shared, "", live, ""); err != nil {
		t.Fatalf("two Neo4j processes: %v", err)
	}
	v, err := replay.Verify(ctx, shared, live, js, replay.VerifyOptions{Users: users, MultiTenant: true})
	if err != nil {
		t.Fatalf("verify into another Neo4j: %v", err)
	}
	if !v.Equal {
		t.Fatalf("an empty stream and an absent tenant differ:\n%s", v.Diff)
	}
	if n := markers(ctx, t, live); n != 0 {
		t.Fatalf("the scratch database was not wiped: %d marker nodes left", n)
	}
}

// TestIdentify: one database reached by two addresses (another host name, scheme and a
// trailing slash) has one identity, and Distinct refuses the pair.
func TestIdentify(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	shared := testenv.Neo4j(t)
	a, err := replay.Identify(ctx, shared, "")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == "" || a.Name == "" || a.Address == "" {
		t.Fatalf("identity %+v: want id, name and address", a)
	}
	c := testenv.Neo4jSettings()
	u, err := url.Parse(c.URI)
	if err != nil {
		t.Fatal(err)
	}
	host := map[string]string{"127.0.0.1": "localhost", "localhost": "127.0.0.1"}[u.Hostname()]
	if host == "" {
		host = u.Hostname()
	}
	d, err := neo4j.NewDriverWithContext("neo4j://"+host+":"+u.Port()+"/", neo4j.BasicAuth(c.User, c.Password, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	b, err := replay.Identify(ctx, d, "")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID {
		t.Fatalf("one database, two ids: %s and %s", a, b)
	}
	if err := replay.Distinct(ctx, shared, "", d, ""); !errors.Is(err, replay.ErrSameDatabase) {
		t.Fatalf("Distinct of one database by two addresses: %v", err)
	}
}
