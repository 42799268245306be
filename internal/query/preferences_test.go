package query

import (
	"errors"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/events"
)

// seedPrefs is Sara's graph of the seed page, with times chosen so every bi-temporal case has
// an answer:
//
//	senior   consultants "Senior on healthcare clients" → Healthcare/Industry, valid from t0, recorded r1
//	junior   consultants "Junior" → Healthcare/Sector, valid from t1, recorded r2, superseded at t3 (recorded r4)
//	senior2  consultants "Senior", valid from t3, recorded r3
//	golang   tools "Prefers Go" → Go/Language, valid from t4, recorded r5
type seedPrefs struct {
	f                               *fixture
	senior, junior, senior2, golang string
	t0, t1, t3, t4                  time.Time
	r1, r2, r3, r4, r5              time.Time
}

func writeSeedPrefs(t *testing.T, d neo4j.DriverWithContext, name string) seedPrefs {
	t.Helper()
	return writeSeedPrefsIn(t, d, name, offsetZ)
}

// writeSeedPrefsIn stores the datetimes in loc.
func writeSeedPrefsIn(t *testing.T, d neo4j.DriverWithContext, name string, loc *time.Location) seedPrefs {
	t.Helper()
	base := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	f := newFixture(t, d, name)
	f.loc = loc
	s := seedPrefs{f: f,
		t0: base, t1: base.Add(time.Hour), t3: base.Add(3 * time.Hour), t4: base.Add(4 * time.Hour)}
	// Transaction time runs a little behind valid time, as when events arrive late.
	s.r1, s.r2, s.r3, s.r4, s.r5 = s.t0.Add(time.Minute), s.t1.Add(time.Minute), s.t3.Add(time.Minute),
		s.t3.Add(2*time.Minute), s.t4.Add(time.Minute)
	s.f.user(map[string]any{"role": "manager"}, s.t0)
	s.senior = s.f.preference(pref{category: "consultants", text: "Senior on healthcare clients", validFrom: s.t0, recordedAt: s.r1,
		appliesTo: []events.EntityRef{{Name: "Healthcare", Type: "Industry"}}, metadata: map[string]any{"source": "seed"}})
	s.junior = s.f.preference(pref{category: "consultants", text: "Junior", validFrom: s.t1, recordedAt: s.r2,
		appliesTo: []events.EntityRef{{Name: "Healthcare", Type: "Sector"}}})
	s.senior2 = s.f.preference(pref{category: "consultants", text: "Senior", context: "after the reorg", validFrom: s.t3, recordedAt: s.r3})
	s.f.supersede(s.junior, s.senior2, s.t3, s.r4)
	s.golang = s.f.preference(pref{category: "tools", text: "Prefers Go", validFrom: s.t4, recordedAt: s.r5,
		appliesTo: []events.EntityRef{{Name: "Go", Type: "Language"}}})
	return s
}

func ids(ps []Preference) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.ID)
	}
	sort.Strings(out)
	return out
}

func sorted(in ...string) []string {
	out := slices.Clone(in)
	if out == nil {
		out = []string{}
	}
	sort.Strings(out)
	return out
}

func TestPreferencesForSeedSemantics(t *testing.T) {
	t.Parallel()
	// Stored as docs/graph.md asks (offset Z) and with the zone id UTC, which Neo4j orders
	// apart from Z at equal instants: the boundary cases must hold for both.
	for _, loc := range []*time.Location{offsetZ, time.UTC} {
		t.Run("stored in "+loc.String(), func(t *testing.T) {
			t.Parallel()
			testSeedSemantics(t, loc)
		})
	}
}

func testSeedSemantics(t *testing.T, loc *time.Location) {
	d := neo4jDriver(t)
	r, err := NewReader(d, "")
	if err != nil {
		t.Fatal(err)
	}
	s := writeSeedPrefsIn(t, d, "sara", loc)
	healthcare := events.EntityID(s.f.id, "Healthcare", "Industry")
	mid := func(a, b time.Time) time.Time { return a.Add(b.Sub(a) / 2) }

	tests := []struct {
		name string
		opts []PreferenceOption
		want []string
	}{
		{"active by default", nil, sorted(s.senior, s.senior2, s.golang)},
		{"active_only=true", []PreferenceOption{ActiveOnly(true)}, sorted(s.senior, s.senior2, s.golang)},
		{"active_only=false keeps superseded", []PreferenceOption{ActiveOnly(false)}, sorted(s.senior, s.junior, s.senior2, s.golang)},
		{"applies_to by id", []PreferenceOption{AppliesTo(events.EntityRef{ID: healthcare})}, sorted(s.senior)},
		{"applies_to by name and type", []PreferenceOption{AppliesTo(events.EntityRef{Name: "Healthcare", Type: "Industry"})}, sorted(s.senior)},
		{"applies_to by name and other type", []PreferenceOption{AppliesTo(events.EntityRef{Name: "Healthcare", Type: "Sector"}), ActiveOnly(false)}, sorted(s.junior)},
		{"applies_to by name only", []PreferenceOption{AppliesTo(events.EntityRef{Name: "Healthcare"}), ActiveOnly(false)}, sorted(s.senior, s.junior)},
		{"applies_to by name, active only", []PreferenceOption{AppliesTo(events.EntityRef{Name: "Healthcare"})}, sorted(s.senior)},
		{"applies_to type is case-sensitive", []PreferenceOption{AppliesTo(events.EntityRef{Name: "Healthcare", Type: "industry"})}, sorted()},
		{"applies_to unknown entity", []PreferenceOption{AppliesTo(events.EntityRef{Name: "Fintech"})}, sorted()},
		{"applies_to unknown id", []PreferenceOption{AppliesTo(events.EntityRef{ID: events.NewID()})}, sorted()},
		{"as_of before anything", []PreferenceOption{AsOf(s.t0.Add(-time.Hour)), ActiveOnly(false)}, sorted()},
		{"as_of before the supersede", []PreferenceOption{AsOf(mid(s.t1, s.t3)), ActiveOnly(false)}, sorted(s.senior, s.junior)},
		{"as_of at the supersede instant", []PreferenceOption{AsOf(s.t3), ActiveOnly(false)}, sorted(s.senior, s.senior2)},
		{"as_of after the supersede", []PreferenceOption{AsOf(s.t4), ActiveOnly(false)}, sorted(s.senior, s.senior2, s.golang)},
		{"as_of with active_only drops superseded", []PreferenceOption{AsOf(mid(s.t1, s.t3))}, sorted(s.senior)},
		{"known_at before anything was recorded", []PreferenceOption{KnownAt(s.t0)}, sorted()},
		{"known_at after r2: junior still active", []PreferenceOption{KnownAt(mid(s.r2, s.r3))}, sorted(s.senior, s.junior)},
		{"known_at between new and supersede: both active", []PreferenceOption{KnownAt(mid(s.r3, s.r4))}, sorted(s.senior, s.junior, s.senior2)},
		{"known_at after supersede", []PreferenceOption{KnownAt(mid(s.r4, s.r5))}, sorted(s.senior, s.senior2)},
		{"known_at now equals the default", []PreferenceOption{KnownAt(time.Now())}, sorted(s.senior, s.senior2, s.golang)},
		{"known_at exactly r4 sees the supersede", []PreferenceOption{KnownAt(s.r4)}, sorted(s.senior, s.senior2)},
		// Before r4 the system did not know junior's valid_until: as of t4 it believed junior valid.
		{"bi-temporal: as_of t4 as known before the supersede", []PreferenceOption{AsOf(s.t4), KnownAt(mid(s.r3, s.r4)), ActiveOnly(false)}, sorted(s.senior, s.junior, s.senior2)},
		{"bi-temporal: as_of t4 as known after the supersede", []PreferenceOption{AsOf(s.t4), KnownAt(mid(s.r4, s.r5)), ActiveOnly(false)}, sorted(s.senior, s.senior2)},
		{"all options", []PreferenceOption{AppliesTo(events.EntityRef{Name: "Healthcare"}), AsOf(mid(s.t1, s.t3)), KnownAt(mid(s.r3, s.r4)), ActiveOnly(true)}, sorted(s.senior, s.junior)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.PreferencesFor(t.Context(), s.f.id, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if g := ids(got); !slices.Equal(g, tc.want) {
				t.Fatalf("got %v, want %v", names(s, g), names(s, tc.want))
			}
		})
	}
}

// names makes failures readable.
func names(s seedPrefs, list []string) []string {
	n := map[string]string{s.senior: "senior", s.junior: "junior", s.senior2: "senior2", s.golang: "golang"}
	out := make([]string, 0, len(list))
	for _, id := range list {
		if v, ok := n[id]; ok {
			out = append(out, v)
		} else {
			out = append(out, id)
		}
	}
	return out
}

func TestPreferenceFields(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, _ := NewReader(d, "")
	s := writeSeedPrefs(t, d, "fields")
	ctx := t.Context()

	all, err := r.PreferencesFor(ctx, s.f.id, ActiveOnly(false))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Preference{}
	for _, p := range all {
		byID[p.ID] = p
	}
	senior := byID[s.senior]
	if senior.Category != "consultants" || senior.Preference != "Senior on healthcare clients" || senior.Confidence != 1.0 ||
		senior.Context != nil || string(senior.Metadata) != `{"source":"seed"}` {
		t.Fatalf("senior: %+v", senior)
	}
	want := Entity{ID: events.EntityID(s.f.id, "Healthcare", "Industry"), Name: "Healthcare", Type: "Industry"}
	if len(senior.AppliesTo) != 1 || senior.AppliesTo[0] != want {
		t.Fatalf("senior applies_to %+v, want %+v", senior.AppliesTo, want)
	}
	if !senior.ValidFrom.Equal(s.t0) || senior.ValidUntil != nil || !senior.RecordedAt.Equal(s.r1) || senior.SupersededBy != nil {
		t.Fatalf("senior times: %+v", senior)
	}
	junior := byID[s.junior]
	if junior.SupersededBy == nil || *junior.SupersededBy != s.senior2 || junior.ValidUntil == nil || !junior.ValidUntil.Equal(s.t3) ||
		junior.SupersededRecordedAt == nil || !junior.SupersededRecordedAt.Equal(s.r4) || junior.SupersededSeq == nil {
		t.Fatalf("junior: %+v", junior)
	}
	senior2 := byID[s.senior2]
	if !slices.Equal(senior2.Supersedes, []string{s.junior}) || senior2.Context == nil || *senior2.Context != "after the reorg" ||
		string(senior2.Metadata) != "{}" || len(senior2.AppliesTo) != 0 || senior2.AppliesTo == nil {
		t.Fatalf("senior2: %+v", senior2)
	}

	// As known before the supersede was recorded: junior open-ended, nothing superseded.
	before, err := r.PreferencesFor(ctx, s.f.id, KnownAt(s.r4.Add(-time.Second)), ActiveOnly(false))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range before {
		if p.ID == s.junior && (p.ValidUntil != nil || p.SupersededBy != nil || p.SupersededRecordedAt != nil) {
			t.Fatalf("junior as known before r4 shows the later supersede: %+v", p)
		}
		if p.ID == s.senior2 && len(p.Supersedes) != 0 {
			t.Fatalf("senior2 as known before r4 supersedes %v", p.Supersedes)
		}
	}
}

func TestPreferenceHistory(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, _ := NewReader(d, "")
	s := writeSeedPrefs(t, d, "history")
	ctx := t.Context()

	h, err := r.PreferenceHistory(ctx, s.f.id)
	if err != nil {
		t.Fatal(err)
	}
	// Recorded order: senior, junior, senior2, golang.
	got := make([]string, 0, len(h))
	for _, p := range h {
		got = append(got, p.ID)
	}
	if want := []string{s.senior, s.junior, s.senior2, s.golang}; !slices.Equal(got, want) {
		t.Fatalf("history order %v, want %v", names(s, got), names(s, want))
	}
	for i := 1; i < len(h); i++ {
		if *h[i].RecordedSeq <= *h[i-1].RecordedSeq {
			t.Fatalf("history not in recorded order: %d after %d", *h[i].RecordedSeq, *h[i-1].RecordedSeq)
		}
	}
	j := h[1]
	if j.SupersededBy == nil || *j.SupersededBy != s.senior2 || !j.ValidUntil.Equal(s.t3) || !j.SupersededRecordedAt.Equal(s.r4) {
		t.Fatalf("junior in history: %+v", j)
	}

	old, err := r.PreferenceHistory(ctx, s.f.id, KnownAt(s.r3.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != 3 || old[1].SupersededBy != nil || old[1].ValidUntil != nil {
		t.Fatalf("history as known at r3: %+v", old)
	}
}

// libraryGetPreferencesFor is the seed library's get_preferences_for query, built the way the
// library builds it (GRAPH-SCHEMA.md: match user → preferences, optional APPLIES_TO by id,
// else name and type, else name; active_only: no outgoing SUPERSEDED_BY; as_of on the
// validity bounds). Engram's graph must answer it the same way PreferencesFor does.
func libraryGetPreferencesFor(t *testing.T, d neo4j.DriverWithContext, identifier string, appliesTo *events.EntityRef, activeOnly bool, asOf *time.Time) []string {
	t.Helper()
	params := map[string]any{"user_identifier": identifier}
	query := "MATCH (u:User {identifier: $user_identifier})-[:HAS_PREFERENCE]->(p:Preference)"
	var where []string
	if activeOnly {
		where = append(where, "NOT (p)-[:SUPERSEDED_BY]->(:Preference)")
	}
	if asOf != nil {
		where = append(where, "(p.valid_from IS NULL OR p.valid_from <= datetime($as_of)) AND (p.valid_until IS NULL OR p.valid_until > datetime($as_of))")
		params["as_of"] = asOf.Format(time.RFC3339Nano)
	}
	if appliesTo != nil {
		query += "\nMATCH (p)-[:APPLIES_TO]->(e:Entity)"
		switch {
		case appliesTo.ID != "":
			where = append(where, "e.id = $applies_to_id")
			params["applies_to_id"] = appliesTo.ID
		case appliesTo.Type != "":
			where = append(where, "e.name = $applies_to_name AND e.type = $applies_to_type")
			params["applies_to_name"], params["applies_to_type"] = appliesTo.Name, appliesTo.Type
		default:
			where = append(where, "e.name = $applies_to_name")
			params["applies_to_name"] = appliesTo.Name
		}
	}
	for i, w := range where {
		if i == 0 {
			query += "\nWHERE " + w
		} else {
			query += " AND " + w
		}
	}
	query += "\nRETURN DISTINCT p.id AS id"
	res, err := neo4j.ExecuteQuery(t.Context(), d, query, params, neo4j.EagerResultTransformer)
	if err != nil {
		t.Fatalf("library query: %v", err)
	}
	out := []string{}
	for _, rec := range res.Records {
		id, _ := rec.Get("id")
		out = append(out, id.(string))
	}
	sort.Strings(out)
	return out
}

func TestLibraryQueryAgrees(t *testing.T) {
	t.Parallel()
	d := neo4jDriver(t)
	r, _ := NewReader(d, "")
	s := writeSeedPrefs(t, d, "library")
	refs := []*events.EntityRef{nil,
		{ID: events.EntityID(s.f.id, "Healthcare", "Industry")},
		{Name: "Healthcare", Type: "Industry"}, {Name: "Healthcare", Type: "Sector"}, {Name: "Healthcare"}, {Name: "Go"}, {Name: "Fintech"}}
	instants := []*time.Time{nil, &s.t0, &s.t1, &s.t3, &s.t4, ptr(s.t0.Add(-time.Hour)), ptr(s.t1.Add(time.Hour))}
	for _, ref := range refs {
		for _, asOf := range instants {
			for _, active := range []bool{true, false} {
				want := libraryGetPreferencesFor(t, d, s.f.id, ref, active, asOf)
				opts := []PreferenceOption{ActiveOnly(active)}
				if ref != nil {
					opts = append(opts, AppliesTo(*ref))
				}
				if asOf != nil {
					opts = append(opts, AsOf(*asOf))
				}
				got, err := r.PreferencesFor(t.Context(), s.f.id, opts...)
				if err != nil {
					t.Fatal(err)
				}
				if g := ids(got); !slices.Equal(g, want) {
					t.Errorf("applies_to %+v as_of %v active_only %v: Engram %v, library %v", ref, asOf, active, names(s, g), names(s, want))
				}
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestPreferencesBadOptions(t *testing.T) {
	t.Parallel()
	r, _ := NewReader(neo4jDriver(t), "")
	tests := []struct {
		name      string
		user      string
		opt       PreferenceOption
		wantField string
	}{
		{"control character", "a\x00b", nil, "identifier"},
		{"id and name", "u@x", AppliesTo(events.EntityRef{ID: "x", Name: "y"}), "applies_to_id"},
		{"type without name", "u@x", AppliesTo(events.EntityRef{Type: "Industry"}), "applies_to_type"},
		{"empty reference", "u@x", AppliesTo(events.EntityRef{}), "applies_to_name"},
		{"name too long", "u@x", AppliesTo(events.EntityRef{Name: string(make([]byte, 300))}), "applies_to_name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts []PreferenceOption
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			_, err := r.PreferencesFor(t.Context(), tc.user, opts...)
			var arg *ArgumentError
			if !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &arg) || arg.Field != tc.wantField {
				t.Fatalf("err %v, want an ArgumentError for %s", err, tc.wantField)
			}
		})
	}
}
