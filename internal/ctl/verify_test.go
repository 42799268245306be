package ctl

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/testenv"
)

// TestVerifyRefusesTheLiveDatabase: issue 12, finding 4. memctl verify compared the two URIs
// as strings, so --scratch-uri bolt://localhost:P against a live bolt://127.0.0.1:P wiped the
// live graph and then printed "equal". Now every spelling of the live server's address is
// refused: a non-zero exit, the reason on stderr, nothing deleted. The live database is a
// Neo4j of the test's own, so that the code before the fix wipes it and not the shared one.
func TestVerifyRefusesTheLiveDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	neo := testenv.StartNeo4jProcess(t)
	d := neo.Driver(t)
	srv, _, _ := testenv.NATS(t)
	if _, err := neo4j.ExecuteQuery(ctx, d, "UNWIND range(1, 3) AS i CREATE (:VerifyMarker {i: i})", nil,
		neo4j.EagerResultTransformer); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(neo.URI)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"NATS_URL": srv.ClientURL(), "NEO4J_URI": neo.URI, "NEO4J_USER": neo.User, "NEO4J_PASSWORD": neo.Password,
		"SCRATCH_NEO4J_USER": neo.User, "SCRATCH_NEO4J_PASSWORD": neo.Password,
	}
	for _, scratch := range []string{
		"bolt://localhost:" + u.Port(),
		"bolt://127.0.0.1:" + u.Port() + "/",
		"neo4j://localhost:" + u.Port() + "/",
	} {
		t.Run(scratch, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(ctx, []string{"verify", "--scratch-uri", scratch}, &out, &errOut, func(k string) string { return env[k] })
			if code == 0 || !strings.Contains(errOut.String(), "must not be the live one") {
				t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
			}
			if strings.Contains(out.String(), "equal") {
				t.Errorf("verify printed a verdict: %s", out.String())
			}
			res, err := neo4j.ExecuteQuery(ctx, d, "MATCH (m:VerifyMarker) RETURN count(m) AS n", nil, neo4j.EagerResultTransformer)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.Records[0].Get("n"); n != int64(3) {
				t.Fatalf("live graph touched: %v of 3 marker nodes left", n)
			}
		})
	}
}
