package projection

import (
	"context"
	"sync"
	"testing"

	"github.com/engram-memory/engram/internal/events"
)

// TestPrefetchDecidesAsTheWalk: the concurrent look-ups of a step's new tenants give each
// event the decision the walk in order gives by looking up one tenant at a time, and look up
// exactly the tenants the walk would: not one whose first event is a tombstone or a
// re-creation, not one already known, not the shared tenant, and each once.
func TestPrefetchDecidesAsTheWalk(t *testing.T) {
	t.Parallel()
	subj := func(token string, kind events.Kind) string { return "mem." + token + "." + string(kind) + ".3" }
	entries := []*entry{
		{seq: 10, subject: subj("erased", events.KindMessageAdded)},
		{seq: 11, subject: subj("alive", events.KindMessageAdded)},
		{seq: 12, subject: subj("tomb", events.KindUserErased)},
		{seq: 13, subject: subj("tomb", events.KindMessageAdded)},
		{seq: 14, subject: subj("known", events.KindMessageAdded)},
		{seq: 15, subject: subj(events.SharedTenantToken, events.KindMessageAdded)},
		{seq: 16, subject: subj("erased", events.KindPreferenceAdded)},
		{seq: 17, subject: subj("alive", events.KindUserErased)},
		{seq: 18, subject: subj("alive", events.KindMessageAdded)},
	}
	decide := func(prefetch bool) ([]bool, map[string]int) {
		var mu sync.Mutex
		asked := map[string]int{}
		e := &erasures{erased: map[string]bool{"known": true}, lookup: func(_ context.Context, subject string, _ uint64) (bool, error) {
			token, _, _ := events.ParseSubject(subject)
			mu.Lock()
			defer mu.Unlock()
			asked[token]++
			return token == "erased", nil
		}}
		v := e.view(0)
		if prefetch {
			if err := v.prefetch(t.Context(), entries); err != nil {
				t.Fatal(err)
			}
		}
		var out []bool
		for _, en := range entries {
			r, err := v.refused(t.Context(), en.subject, en.seq)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out, asked
	}
	walk, walkAsked := decide(false)
	got, asked := decide(true)
	want := []bool{true, false, false, true, true, false, true, false, true}
	for i := range want {
		if walk[i] != want[i] || got[i] != want[i] {
			t.Errorf("event %d: walk %v, prefetched %v, want %v", entries[i].seq, walk[i], got[i], want[i])
		}
	}
	if len(asked) != 2 || asked["erased"] != 1 || asked["alive"] != 1 || len(walkAsked) != 2 {
		t.Errorf("looked up %v (the walk alone: %v), want erased and alive once each", asked, walkAsked)
	}
}
