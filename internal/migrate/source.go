package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"

	"github.com/engram-memory/engram/internal/replay"
)

// ErrEngramDatabase means the source is Engram's own graph (the live database, a copy of its
// store, or any graph Engram projected): importing it would publish Engram's projection back
// into the log it came from.
var ErrEngramDatabase = errors.New("the source is an Engram database, not a neo4j-agent-memory graph")

// Source is the library's graph. Every query runs in a read transaction on a reader, so an
// import never writes to it.
type Source struct {
	driver   neo4j.DriverWithContext
	database string
}

// NewSource reads the graph of database ("" for the server's default) through driver.
func NewSource(driver neo4j.DriverWithContext, database string) *Source {
	return &Source{driver: driver, database: database}
}

// read runs one read-only query and returns its records as maps.
func (s *Source) read(ctx context.Context, cypher string, params map[string]any) ([]map[string]any, error) {
	res, err := neo4j.ExecuteQuery(ctx, s.driver, cypher, params, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(s.database), neo4j.ExecuteQueryWithReadersRouting())
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(res.Records))
	for i, r := range res.Records {
		out[i] = r.AsMap()
	}
	return out, nil
}

// identify is replay.Identify in a read transaction: db.info() is a read.
func (s *Source) identify(ctx context.Context) (string, error) {
	rows, err := s.read(ctx, "CALL db.info() YIELD id RETURN id", nil)
	if err != nil {
		return "", fmt.Errorf("identify the source database (db.info): %w", err)
	}
	if len(rows) != 1 {
		return "", fmt.Errorf("identify the source database (db.info): %d records, want 1", len(rows))
	}
	id, _ := rows[0]["id"].(string)
	if id == "" {
		return "", fmt.Errorf("identify the source database (db.info): no id (answered %v)", rows[0]["id"])
	}
	return id, nil
}

// engramMarkers counts what only Engram writes: its projector's checkpoints and the owner
// property on the nodes it owns.
const engramMarkers = `
CALL () { MATCH (c:EngramCheckpoint) RETURN count(c) AS checkpoints }
CALL () { MATCH (u:User) WHERE u.owner IS NOT NULL RETURN count(u) AS owned_users }
CALL () { MATCH (p:Preference) WHERE p.owner IS NOT NULL RETURN count(p) AS owned_preferences }
RETURN checkpoints, owned_users, owned_preferences`

// CheckNotEngram refuses a source that is Engram's own database: the same store id
// (db.info()) as live, the Engram Neo4j the command is configured with, whatever address
// reached either; or, for a copy or another Engram deployment, a graph holding Engram's
// checkpoints or owner properties. The error wraps ErrEngramDatabase and says which.
func (s *Source) CheckNotEngram(ctx context.Context, live neo4j.DriverWithContext, liveDatabase string) error {
	srcID, err := s.identify(ctx)
	if err != nil {
		return err
	}
	l, err := replay.Identify(ctx, live, liveDatabase)
	if err != nil {
		return fmt.Errorf("cannot tell the source from Engram's own database (set --neo4j-uri to Engram's Neo4j): %w", err)
	}
	if l.ID == srcID {
		return fmt.Errorf("%w: --from reaches %s, which is the Engram Neo4j this command is configured with (same db.info() id): nothing was read or published", ErrEngramDatabase, l)
	}
	rows, err := s.read(ctx, engramMarkers, nil)
	if err != nil {
		return fmt.Errorf("look for Engram's nodes in the source: %w", err)
	}
	cp, _ := rows[0]["checkpoints"].(int64)
	users, _ := rows[0]["owned_users"].(int64)
	prefs, _ := rows[0]["owned_preferences"].(int64)
	if cp > 0 || users > 0 || prefs > 0 {
		return fmt.Errorf("%w: the source (db.info() id %s) holds %d EngramCheckpoint nodes and %d User and %d Preference nodes with Engram's owner property: it is a projection of an Engram log (a copy of Engram's store?), whose events are already in a log; nothing was read or published",
			ErrEngramDatabase, srcID, cp, users, prefs)
	}
	return nil
}

// Identity returns the source's db.info() id.
func (s *Source) Identity(ctx context.Context) (string, error) { return s.identify(ctx) }

// timeOf reads a stored time: the library writes Neo4j DATETIME values (datetime()); a graph
// edited by hand may hold a LocalDateTime (read as UTC) or an RFC 3339 string.
func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t.UTC(), true
	case dbtype.LocalDateTime:
		return time.Time(t).UTC(), true
	case string:
		p, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return time.Time{}, false
		}
		return p.UTC(), true
	}
	return time.Time{}, false
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
