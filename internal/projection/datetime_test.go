package projection

import (
	"testing"
	"time"

	"github.com/engram-memory/engram/internal/events"
)

// TestDatetimesAreStoredWithAnOffset: the library's get_preferences_for compares with
// datetime($as_of), an offset DateTime; Neo4j orders equal instants of a zone id and an offset
// apart, so Engram stores offsets and the library's read finds a preference at exactly its
// valid_from and not at exactly its valid_until.
func TestDatetimesAreStoredWithAnOffset(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	d := testNeo4j(t)
	sara := newTenant(t, "sara")
	var s scope
	s.add(sara)
	cleanupScope(t, d, &s)
	r := newRecorder()
	from := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	until := from.Add(time.Hour)
	old, repl := events.NewID(), events.NewID()
	apply(ctx, t, d, []Record{
		r.rec(sara.user, events.PreferenceAdded{PreferenceID: old, Category: "c", Preference: "Junior", ValidFrom: &from}),
		r.rec(sara.user, events.PreferenceAdded{PreferenceID: repl, Category: "c", Preference: "Senior", ValidFrom: &until}),
		r.rec(sara.user, events.PreferenceSuperseded{OldID: old, NewID: repl, ValidUntil: &until}),
	})
	vf := value[time.Time](ctx, t, d, "MATCH (p:Preference {id: $id}) RETURN p.valid_from AS v", map[string]any{"id": old})
	if name, off := vf.Zone(); name != "Offset" || off != 0 {
		t.Fatalf("valid_from stored in zone %q (offset %d), want an offset of 0", name, off)
	}
	// The library's as_of filter, verbatim in spirit (GRAPH-SCHEMA.md).
	const library = `MATCH (u:User {identifier: $identifier})-[:HAS_PREFERENCE]->(p:Preference)
WHERE (p.valid_from IS NULL OR p.valid_from <= datetime($as_of))
  AND (p.valid_until IS NULL OR p.valid_until > datetime($as_of))
RETURN p.preference AS v`
	for at, want := range map[string]string{
		from.Format(time.RFC3339):  "Junior",
		until.Format(time.RFC3339): "Senior",
	} {
		if got := value[string](ctx, t, d, library, map[string]any{"identifier": sara.user, "as_of": at}); got != want {
			t.Errorf("library as_of %s = %q, want %q", at, got, want)
		}
	}
}
