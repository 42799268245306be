package bench_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/bench"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestFailoverScenario runs the failover scenario alone with two kills and one restart against
// a private embedded JetStream and the local Neo4j: every round is measured without error, the
// survivor applied every probe, the exactly-once and per-tenant order check passed, and nothing
// of the run (the second projector above all) is left behind. It asserts no duration.
func TestFailoverScenario(t *testing.T) {
	t.Parallel()
	srv, _, js := testenv.NATS(t)
	driver := testenv.Neo4j(t)
	c := tinyConfig(t, srv.ClientURL())
	c.Scenarios = []string{bench.ScenarioFailover}
	c.FailoverKills, c.FailoverRestarts = 2, 1
	var out bytes.Buffer
	rep, err := bench.Run(t.Context(), c, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []struct {
		name  string
		count int
	}{
		{"failover two projectors: SIGKILL of the holder → applied (2 kills)", 2},
		{"failover single projector: SIGKILL → applied (1 restarts)", 1},
		{"failover single projector: ready → applied (1 restarts)", 1},
	} {
		res, ok := rep.Find(want.name)
		switch {
		case !ok:
			t.Errorf("no row %q in the report:\n%s", want.name, out.String())
		case res.Status == bench.StatusError || res.Status == bench.StatusNA:
			t.Errorf("row %q: %s: %s", want.name, res.Status, res.Note)
		case res.Count != want.count || res.Errors != 0:
			t.Errorf("row %q: %d rounds measured, %d errors, want %d and none: %s", want.name, res.Count, res.Errors, want.count, res.Note)
		}
	}
	check, ok := rep.Find("failover exactly once, in per-tenant order")
	if !ok {
		t.Fatalf("no exactly-once row in the report:\n%s", out.String())
	}
	if check.Status != bench.StatusMet || check.Errors != 0 || check.Count == 0 {
		t.Errorf("exactly-once check: %s, %d errors over %d events: %s", check.Status, check.Errors, check.Count, check.Note)
	}
	if !slices.ContainsFunc(rep.Series, func(s bench.Series) bool { return strings.HasPrefix(s.Name, "Failover") && len(s.Points) == 2 }) {
		t.Errorf("no catch-up series of 2 kills in the report: %+v", rep.Series)
	}
	if !slices.ContainsFunc(rep.Processes, func(p bench.ProcessInfo) bool { return p.Name == bench.ServiceProjector2 }) {
		t.Errorf("the report does not list %s: %+v", bench.ServiceProjector2, rep.Processes)
	}
	assertStopped(t, rep)

	prefix := bench.Tenants{RunID: rep.RunID}.OwnerPrefix()
	if n, err := bench.CountGraph(context.Background(), driver, "", prefix); err != nil || n != 0 {
		t.Errorf("%d nodes of the run left in Neo4j (%v)", n, err)
	}
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.CachedInfo().State; st.Msgs != 0 || st.Consumers != 0 {
		t.Errorf("%d messages and %d consumers left on the memory stream", st.Msgs, st.Consumers)
	}
}
