// Package e2e runs Engram as in production — ingestor, projector and query as separate
// processes on real JetStream and real Neo4j — and drives it through the Go client.
package e2e

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/engram-memory/engram/client"
	"github.com/engram-memory/engram/internal/demo"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestSeedScenario makes every line of the seed page work end to end.
func TestSeedScenario(t *testing.T) {
	t.Parallel()
	stack := testenv.StartStack(t)
	users := demo.Users{Sara: testenv.User(t, "sara"), Liam: testenv.User(t, "liam")}
	t.Cleanup(func() { testenv.Cleanup(t, testenv.Neo4j(t), users.Sara, users.Liam) })

	c, err := client.New(client.WithHTTP(stack.IngestorURL, stack.QueryURL), client.WithMultiTenant(true))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := demo.Run(t.Context(), c, users, &out)
	if err != nil {
		t.Fatalf("scenario: %v\n%s", err, out.String())
	}

	ids := func(ps []client.Preference) []string {
		var s []string
		for _, p := range ps {
			s = append(s, p.Preference)
		}
		slices.Sort(s)
		return s
	}
	check := func(name string, got []client.Preference, want ...string) {
		t.Helper()
		slices.Sort(want)
		if g := ids(got); !slices.Equal(g, want) {
			t.Errorf("%s = %q, want %q", name, g, want)
		}
	}
	check("get_preferences_for(sara)", res.AllPrefs, "Senior on healthcare clients")
	check("applies_to Healthcare/Industry", res.HealthcarePrefs, "Senior on healthcare clients")
	if len(res.HealthcarePrefs) == 1 {
		ap := res.HealthcarePrefs[0].AppliesTo
		if len(ap) != 1 || ap[0].Name != "Healthcare" || ap[0].Type != "Industry" {
			t.Errorf("applies_to = %+v", ap)
		}
	}
	check("active after supersede", res.ActiveAfter, "Senior on healthcare clients", "Senior")
	check("active_only=False", res.History, "Senior on healthcare clients", "Junior", "Senior")
	check("as_of before the supersede", res.Snapshot, "Senior on healthcare clients", "Junior", "Senior")
	for _, p := range res.History {
		if p.ID == res.Junior.ID {
			if p.SupersededBy == nil || *p.SupersededBy != res.Senior.ID || p.ValidUntil == nil {
				t.Errorf("junior after supersede: superseded_by %v valid_until %v", p.SupersededBy, p.ValidUntil)
			}
		}
	}
	if len(res.SaraTraces) != 1 || res.SaraTrace == nil || len(res.SaraTrace.Steps) != 1 || len(res.SaraTrace.Steps[0].ToolCalls) != 1 {
		t.Errorf("sara's traces %+v, trace %+v", res.SaraTraces, res.SaraTrace)
	}
	if len(res.SaraMessages.Messages) != 1 || res.SaraMessages.Messages[0].Content != "Find me a healthcare team" {
		t.Errorf("sara's messages %+v", res.SaraMessages.Messages)
	}

	// Isolation: none of Liam's reads shows anything of Sara's, whatever ids he passes.
	if len(res.LiamTraces) != 0 || len(res.LiamPrefs) != 0 {
		t.Errorf("liam sees traces %+v, preferences %+v", res.LiamTraces, res.LiamPrefs)
	}
	ctx := t.Context()
	if _, err := c.Reasoning.GetTrace(ctx, users.Liam, res.SaraTrace.ID); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("liam reading sara's trace: %v, want ErrNotFound", err)
	}
	if page, err := c.ShortTerm.GetMessages(ctx, users.Liam, "sara-2026-05-01"); err != nil || len(page.Messages) != 0 {
		t.Errorf("liam reading sara's session: %+v, %v", page, err)
	}
	if ps, err := c.LongTerm.GetPreferencesFor(ctx, users.Liam, client.AppliesToEntity(client.EntityRef{ID: res.HealthcarePrefs[0].AppliesTo[0].ID}), client.ActiveOnly(false)); err != nil || len(ps) != 0 {
		t.Errorf("liam by sara's entity id: %+v, %v", ps, err)
	}

	// The guardrail: in multi-tenant mode a write without a user fails before sending.
	if _, err := c.LongTerm.AddPreference(ctx, "consultants", "Anyone"); !errors.Is(err, client.ErrUserRequired) {
		t.Errorf("write without user: %v, want ErrUserRequired", err)
	}
	t.Logf("demo output:\n%s", out.String())
}
