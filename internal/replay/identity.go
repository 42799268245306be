package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"
)

// Identity is what a Neo4j database says it is. ID is the database's store id: it is the same
// whatever address, scheme or cluster member reached it, and differs between any two
// databases created apart (two servers, two databases of one server). A copy of a store keeps
// its id.
type Identity struct {
	ID      string
	Name    string // the database's name, e.g. "neo4j"
	Created string // when its store was created, as Neo4j reports it
	Address string // the server that answered, as the driver reached it
}

func (i Identity) String() string {
	return fmt.Sprintf("database %q at %s (id %s, created %s)", i.Name, i.Address, i.ID, i.Created)
}

// identifyQuery asks the database itself; Neo4j 5 Community and Enterprise both answer it.
const identifyQuery = "CALL db.info() YIELD id, name, creationDate RETURN id, name, creationDate"

// Identify asks the database d reaches (database: empty for the default one) for its identity.
func Identify(ctx context.Context, d neo4j.DriverWithContext, database string) (Identity, error) {
	res, err := neo4j.ExecuteQuery(ctx, d, identifyQuery, nil, neo4j.EagerResultTransformer,
		neo4j.ExecuteQueryWithDatabase(database))
	if err != nil {
		return Identity{}, fmt.Errorf("identify the database (db.info): %w", err)
	}
	if len(res.Records) != 1 {
		return Identity{}, fmt.Errorf("identify the database (db.info): %d records, want 1", len(res.Records))
	}
	r := res.Records[0]
	id, _ := r.Get("id")
	name, _ := r.Get("name")
	created, _ := r.Get("creationDate")
	i := Identity{ID: text(id), Name: text(name), Created: text(created)}
	if s := res.Summary.Server(); s != nil {
		i.Address = s.Address()
	}
	if i.ID == "" {
		return Identity{}, fmt.Errorf("identify the database (db.info): no id (answered %v)", id)
	}
	return i, nil
}

func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(v)
	}
}

// Distinct proves that scratch, which a caller is about to wipe, is not the live database:
// by the databases' own identities, never by the addresses used to reach them (bolt://localhost
// and neo4j://127.0.0.1/ reach the same server). It returns an error wrapping ErrSameDatabase
// when both answer with one id, and any other error when either cannot say which it is: no
// proof, no wipe.
func Distinct(ctx context.Context, live neo4j.DriverWithContext, liveDatabase string, scratch neo4j.DriverWithContext, scratchDatabase string) error {
	l, err := Identify(ctx, live, liveDatabase)
	if err != nil {
		return fmt.Errorf("live: %w", err)
	}
	s, err := Identify(ctx, scratch, scratchDatabase)
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	if l.ID == s.ID {
		return fmt.Errorf("%w: the scratch address reaches %s, which is the live %s (or a copy of its store): nothing was deleted; use a Neo4j started on an empty data directory",
			ErrSameDatabase, s, l)
	}
	return nil
}
