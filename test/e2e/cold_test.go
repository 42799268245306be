package e2e

import (
	"bytes"
	"testing"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/demo"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestColdStackDemo is a new user's first minutes: a Neo4j that never served a query (fresh
// store, new JVM, empty plan caches), the services started on it as `make run` does (each
// waited for until /readyz), then at once the seed scenario with the read-your-writes wait of
// the dev stack (CONSISTENCY_WAIT 5s) and no retry. Every read must find its write.
func TestColdStackDemo(t *testing.T) {
	t.Parallel()
	neo := testenv.StartNeo4jProcess(t)
	stack := testenv.StartStack(t,
		"NEO4J_URI="+neo.URI, "NEO4J_USER="+neo.User, "NEO4J_PASSWORD="+neo.Password,
		"CONSISTENCY_WAIT=5s", "READ_TIMEOUT=5s", "PROJECTOR_BATCH_WAIT=0s")
	users := demo.Users{Sara: testenv.User(t, "sara"), Liam: testenv.User(t, "liam")}
	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := demo.Run(t.Context(), c, users, &out)
	if err != nil {
		t.Fatalf("seed scenario on a cold stack: %v\n%s", err, out.String())
	}
	if len(res.AllPrefs) == 0 {
		t.Errorf("no preference of sara read back on a cold stack:\n%s", out.String())
	}
}
