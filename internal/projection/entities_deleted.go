package projection

import (
	"context"
	"fmt"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// An entity deletion (entity_deleted) is applied on its own, like a message deletion
// (deletions.go): deleting what does not exist, or no longer does, is a counted no-op, and
// naming another owner's entity a dead letter. A merged id names its survivor, as every read
// answers it: the survivor goes, and with it the tombstones merged into it, whose ids would
// otherwise answer an entity that is gone. Facts are not linked to entities (their subject
// and object are text, as in the library), so the facts that go are the owner's whose subject
// or object is, exactly, one of the deleted entities' names or aliases: what the user's
// get_facts_about of that name would answer. Preferences, messages and traces stay; only
// their APPLIES_TO and MENTIONS edges to it go.

// cypherFindEntity reads the owner of an entity and the survivor its id resolves to.
const cypherFindEntity = planOnce + `
OPTIONAL MATCH (n:Entity {id: $id}) USING INDEX SEEK n:Entity(id)
OPTIONAL MATCH (n)-[:MERGED_INTO*0..64]->(e:Entity) WHERE NOT (e)-[:MERGED_INTO]->()
RETURN n IS NOT NULL AS found, n.owner AS owner, e.id AS survivor`

// cypherDeleteEntity deletes an entity, the entities merged into it and the owner's facts that
// name one of them, with every edge of theirs, and returns the ids it deleted.
const cypherDeleteEntity = planOnce + `
MATCH (e:Entity {id: $id}) USING INDEX SEEK e:Entity(id)
OPTIONAL MATCH (t:Entity)-[:MERGED_INTO*1..64]->(e)
WITH e, collect(DISTINCT t) AS merged
WITH e, merged, [x IN [e] + merged | x.id] AS ids,
     reduce(ns = [], x IN [e] + merged | ns + [x.name] + coalesce(x.aliases, [])) AS names
OPTIONAL MATCH (f:Fact {owner: e.owner}) WHERE f.subject IN names OR f.object IN names
WITH e, merged, ids, collect(f) AS facts
WITH e, merged, ids, facts, [f IN facts | f.id] AS fact_ids
FOREACH (f IN facts | DETACH DELETE f)
FOREACH (x IN merged | DETACH DELETE x)
DETACH DELETE e
RETURN ids, fact_ids`

// deleteEntity applies an entity_deleted event and returns its status.
func deleteEntity(ctx context.Context, tx neo4j.ManagedTransaction, r Record, src stateSource) (string, error) {
	m, err := row(r)
	if err != nil {
		return "", err
	}
	d, err := dataAs[events.EntityDeleted](r)
	if err != nil {
		return "", err
	}
	owner, _ := m["owner"].(string)
	rec, status, err := findOwned(ctx, tx, cypherFindEntity, "entity", d.EntityID, owner)
	if rec == nil {
		return status, err
	}
	id := d.EntityID
	if s, _ := rec.Get("survivor"); s != nil {
		id, _ = s.(string)
	}
	rec, err = single(ctx, tx, cypherDeleteEntity, map[string]any{"id": id})
	if err != nil {
		return "", fmt.Errorf("delete entity %s: %w", id, err)
	}
	list := func(key string) []string {
		v, _ := rec.Get(key)
		list, _ := v.([]any)
		out := make([]string, 0, len(list))
		for _, x := range list {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	src.deleted(deletion{entities: list("ids"), facts: list("fact_ids")})
	return "ok", nil
}

func entityDeletedRow(r Record, m map[string]any) error {
	d, err := dataAs[events.EntityDeleted](r)
	if err != nil {
		return err
	}
	m["entity_id"] = d.EntityID
	return nil
}
