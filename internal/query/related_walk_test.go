package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
)

// byLevelEdges is the oracle's read of one breadth-first level: the edges of each entity of
// $frontier (the read before the walk became one statement).
const byLevelEdges = `
MATCH (u:User {identifier: $identifier})
USING INDEX SEEK u:User(identifier)
WHERE u.owner = $owner
UNWIND $frontier AS fid
MATCH (u)-[:HAS_ENTITY]->(x:Entity {id: fid})
USING INDEX SEEK x:Entity(id)
WHERE x.owner = u.owner
RETURN {from: x.id, edges: ` + entityEdges + `} AS hop
`

// relatedByLevels is RelatedEntities as it was: one read per level, each from the entities
// the level before let through. The oracle of TestRelatedWalkAsByLevels.
func relatedByLevels(ctx context.Context, r *Reader, identifier, id string, depth int, dir Direction, types []any, n int) (Related, error) {
	owner, _ := tenant(identifier)
	rows, err := r.read(ctx, "entity", userEntityByID, map[string]any{"identifier": identifier, "owner": owner, "entity_id": id})
	if err != nil || len(rows) == 0 {
		return Related{}, err
	}
	var typesParam any
	if types != nil {
		typesParam = types
	}
	out := Related{Entity: entityOf(rows[0]), Related: []RelatedEntity{}}
	seen := map[string]bool{out.Entity.ID: true}
	paths := map[string][]Relationship{out.Entity.ID: {}}
	frontier := []string{out.Entity.ID}
	for level := 1; level <= depth && len(frontier) > 0 && !out.Truncated; level++ {
		rows, err := r.read(ctx, "level", byLevelEdges, map[string]any{"identifier": identifier, "owner": owner,
			"frontier": frontier, "types": typesParam, "direction": string(dir)})
		if err != nil {
			return Related{}, err
		}
		edges := map[string][]map[string]any{}
		for _, m := range rows {
			edges[str(m, "from")] = mapList(m, "edges")
		}
		var next []string
	walk:
		for _, from := range frontier {
			hops := edges[from]
			sort.SliceStable(hops, func(i, j int) bool { return hopLess(hops[i], hops[j]) })
			for _, h := range hops {
				e, _ := h["e"].(map[string]any)
				rm, _ := h["r"].(map[string]any)
				other := str(e, "id")
				if seen[other] {
					continue
				}
				if len(out.Related) == n {
					out.Truncated = true
					break walk
				}
				seen[other] = true
				path := append(append([]Relationship{}, paths[from]...), relationshipOf(rm, h["out"] == true))
				paths[other] = path
				out.Related = append(out.Related, RelatedEntity{Entity: entityOf(e), Depth: level, Path: path})
				next = append(next, other)
			}
		}
		frontier = next
	}
	return out, nil
}

// TestRelatedWalkAsByLevels: the one-statement walk answers what reading level by level
// answered, on random graphs of one user's entities (hubs, cycles, parallel edges of several
// types, another user's entities beside them), from every start, at every depth, direction,
// type filter and limit, cut or not.
func TestRelatedWalkAsByLevels(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, err := NewReader(d, "", WithMaxLimit(50))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	f := newFixture(t, d, "walk")
	other := newFixture(t, d, "walk-other")
	f.user(nil, entityT0)
	other.user(nil, entityT0)
	rng := rand.New(rand.NewPCG(3, 5))
	var ids, theirs []string
	for i := range 24 {
		ids = append(ids, f.entity(entitySpec{name: fmt.Sprintf("E%02d", i), typ: []string{"PERSON", "ORGANIZATION"}[i%2], at: entityT0}))
	}
	for i := range 4 {
		theirs = append(theirs, other.entity(entitySpec{name: fmt.Sprintf("T%02d", i), typ: "PERSON", at: entityT0}))
	}
	relTypes := []string{"KNOWS", "WORKS_AT", "LOCATED_IN"}
	for range 60 {
		a := ids[rng.IntN(len(ids))]
		if rng.IntN(3) == 0 {
			a = ids[rng.IntN(3)] // hubs
		}
		b := ids[rng.IntN(len(ids))]
		if a != b {
			f.relate(a, relTypes[rng.IntN(len(relTypes))], b, "", entityT0)
		}
	}
	for _, x := range theirs { // another user's entities, related to theirs only: never reached
		other.relate(x, "KNOWS", theirs[0], "", entityT0)
	}
	compared, nonEmpty, cut := 0, 0, 0
	for _, start := range ids {
		for _, depth := range []int{1, 2, 3} {
			for _, dir := range []Direction{Both, Outgoing, Incoming} {
				for _, types := range [][]any{nil, {"KNOWS"}, {"WORKS_AT", "LOCATED_IN"}} {
					n := []int{1, 3, 10, 50}[rng.IntN(4)]
					var ts []string
					for _, x := range types {
						ts = append(ts, x.(string))
					}
					got, err := r.RelatedEntities(ctx, f.id, start, RelatedQuery{Depth: depth, Direction: dir, Types: ts, Limit: n})
					if err != nil {
						t.Fatal(err)
					}
					want, err := relatedByLevels(ctx, r, f.id, start, depth, dir, types, n)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("from %s depth %d %s types %v limit %d:\n got %+v\nwant %+v", start, depth, dir, types, n, got, want)
					}
					compared++
					if len(want.Related) > 0 {
						nonEmpty++
					}
					if want.Truncated {
						cut++
					}
				}
			}
		}
	}
	if nonEmpty < compared/2 || cut == 0 {
		t.Fatalf("%d of %d walks reached something, %d were cut: the graph does not test the walk", nonEmpty, compared, cut)
	}
	t.Logf("%d walks compared, %d reached something, %d cut", compared, nonEmpty, cut)
}
