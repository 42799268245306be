package ctl

import (
	"bytes"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/migrate/migratetest"
	"github.com/engram-memory/engram/internal/stream"
	"github.com/engram-memory/engram/internal/testenv"
)

// TestImportCommand runs memctl import as an operator does, against a graph the real library
// wrote into a Neo4j of the test's own: the dry run prints the events per kind and per user and
// what it cannot import, and publishes nothing; the import publishes every user's events into
// their tenant's subjects; a second run publishes nothing; --user imports that user only.
// (internal/migrate checks what the imported events project to.)
func TestImportCommand(t *testing.T) {
	t.Parallel()
	g := migratetest.WriteLibraryGraph(t, migratetest.Library)
	man := g.Manifest
	sara, liam := man.Users[0], man.Users[1]
	total := migratetest.PlannedTotal()
	c := testenv.Neo4jSettings()
	testenv.Neo4j(t) // fails with the fix when the shared Neo4j is not running
	srv, _, js := testenv.NATS(t)
	env := map[string]string{"NEO4J_URI": c.URI, "NEO4J_USER": c.User, "NEO4J_PASSWORD": c.Password,
		"IMPORT_FROM_PASSWORD": g.Password, "NATS_URL": srv.ClientURL()}
	from := []string{"import", "--from", g.URI, "--from-user", g.User}

	dry := runImportCmd(t, env, append(from, "--dry-run", "-v")...)
	if !strings.HasPrefix(dry, "import --dry-run (nothing published): source ") || !strings.Contains(dry, ", 2 users\n") {
		t.Errorf("dry run's heading:\n%s", dry)
	}
	if got := kindCounts(t, dry); !maps.Equal(got, migratetest.Planned) {
		t.Errorf("dry run printed the events per kind %v, want %v:\n%s", got, migratetest.Planned, dry)
	}
	for _, u := range man.Users {
		if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(u) + `: .*message_added=\d`).MatchString(dry) {
			t.Errorf("dry run -v prints no counts for %s:\n%s", u, dry)
		}
	}
	for _, want := range []string{
		"  second_supersede: 1\n",
		"    " + man.SecondSupersede[0] + " (" + liam + "): superseded again by " + man.SecondSupersede[1],
		"  no_user: ", "conversation of session " + man.OrphanSession,
		"  unmodelled_label: ", "    :Fact: ",
	} {
		if !strings.Contains(dry, want) {
			t.Errorf("dry run's issues lack %q:\n%s", want, dry)
		}
	}
	if strings.Contains(dry, "published ") || strings.Contains(dry, "(published") {
		t.Errorf("the dry run says it published:\n%s", dry)
	}
	if n := tenantMsgs(t, js, ""); n != 0 {
		t.Fatalf("the dry run stored %d events", n)
	}

	out := runImportCmd(t, env, append(from, "-v")...)
	if want := fmt.Sprintf("published %d events, 0 already in the log (skipped)", total); !strings.Contains(out, want) {
		t.Errorf("the import printed no %q:\n%s", want, out)
	}
	perUser := publishedPerUser(t, out)
	for _, u := range man.Users {
		if n := tenantMsgs(t, js, u); n == 0 || n != perUser[u] {
			t.Errorf("%s: the stream holds %d events on the tenant's subjects, the import printed %d published", u, n, perUser[u])
		}
	}
	if n := tenantMsgs(t, js, ""); n != total {
		t.Fatalf("the stream holds %d events after the import, want %d", n, total)
	}

	again := runImportCmd(t, env, from...)
	if want := fmt.Sprintf("published 0 events, %d already in the log (skipped)", total); !strings.Contains(again, want) {
		t.Errorf("the second run printed no %q:\n%s", want, again)
	}
	if n := tenantMsgs(t, js, ""); n != total {
		t.Fatalf("the stream holds %d events after a second run, want %d", n, total)
	}

	// One user, into an empty log: that user's events, no one else's.
	srv2, _, js2 := testenv.NATS(t)
	env2 := maps.Clone(env)
	env2["NATS_URL"] = srv2.ClientURL()
	one := runImportCmd(t, env2, append(from, "--user", liam)...)
	if want := fmt.Sprintf("published %d events, 0 already in the log", perUser[liam]); !strings.Contains(one, ", 1 users\n") || !strings.Contains(one, want) {
		t.Errorf("--user %s printed no %q for 1 user:\n%s", liam, want, one)
	}
	if n, all, other := tenantMsgs(t, js2, liam), tenantMsgs(t, js2, ""), tenantMsgs(t, js2, sara); n != perUser[liam] || all != n || other != 0 {
		t.Errorf("--user %s stored %d events of %s's tenant, %d of %s's, %d in all; want %d, 0, %d", liam, n, liam, other, sara, all, perUser[liam], perUser[liam])
	}

	var stdout, stderr bytes.Buffer
	args := append(from, "--dry-run", "--user", testenv.User(t, "nobody"))
	if code := Main(t.Context(), args, &stdout, &stderr, func(k string) string { return env[k] }); code != 1 || !strings.Contains(stderr.String(), "the source has no importable User") {
		t.Errorf("--user of no one in the source: exit %d, stderr %q; want 1 and the reason", code, stderr.String())
	}
}

// runImportCmd runs memctl with args and the environment env, and returns its standard output.
func runImportCmd(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := Main(t.Context(), args, &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("memctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

var kindRow = regexp.MustCompile(`^\s*([a-z_]+)\s+(\d+)\s*$`)

// kindCounts reads the table of events per kind that memctl import prints.
func kindCounts(t *testing.T, out string) map[events.Kind]int {
	t.Helper()
	got := map[events.Kind]int{}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "KIND  EVENTS" {
			continue
		}
		for _, l := range lines[i+1:] {
			m := kindRow.FindStringSubmatch(l)
			if m == nil {
				break
			}
			n, _ := strconv.Atoi(m[2])
			got[events.Kind(m[1])] = n
		}
		return got
	}
	t.Fatalf("no table of events per kind in:\n%s", out)
	return nil
}

var userRow = regexp.MustCompile(`(?m)^  (\S+): .* \(published (\d+), already in the log (\d+)\)$`)

// publishedPerUser reads the events published per user from memctl import -v.
func publishedPerUser(t *testing.T, out string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, m := range userRow.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[2])
		got[m[1]] = n
	}
	if len(got) == 0 {
		t.Fatalf("no per-user lines in:\n%s", out)
	}
	return got
}

// tenantMsgs counts the events the memory stream holds on the user's subjects; for "" on all.
func tenantMsgs(t *testing.T, js jetstream.JetStream, user string) int {
	t.Helper()
	s, err := js.Stream(t.Context(), stream.MemoryStream)
	if err != nil {
		t.Fatal(err)
	}
	if user == "" {
		info, err := s.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return int(info.State.Msgs)
	}
	filter, err := events.TenantSubjects(user)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// TestImportRefusesEngramsDatabase points --from at the Engram Neo4j the command is configured
// with, under another address: the import refuses before reading anything, and says why.
// (internal/migrate tests the import itself against the real library.)
func TestImportRefusesEngramsDatabase(t *testing.T) {
	t.Parallel()
	c := testenv.Neo4jSettings()
	testenv.Neo4j(t) // fails with the fix when the shared Neo4j is not running
	env := map[string]string{"NEO4J_URI": c.URI, "NEO4J_USER": c.User, "NEO4J_PASSWORD": c.Password,
		"IMPORT_FROM_PASSWORD": c.Password, "NATS_URL": "nats://127.0.0.1:1"}
	from := strings.Replace(c.URI, "127.0.0.1", "localhost", 1)
	var out, errOut bytes.Buffer
	code := Main(t.Context(), []string{"import", "--from", from, "--from-user", c.User}, &out, &errOut, func(k string) string { return env[k] })
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, out.String(), errOut.String())
	}
	if msg := errOut.String(); !strings.Contains(msg, "is an Engram database") || !strings.Contains(msg, "same db.info() id") {
		t.Fatalf("stderr %q: want the refusal and its reason", msg)
	}
	if out.Len() != 0 {
		t.Fatalf("printed %q before refusing", out.String())
	}
}

func TestImportFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import"}, "--from is required"},
		{[]string{"import", "--from", "bolt://127.0.0.1:1", "--batch-size", "0"}, "--batch-size 0"},
		{[]string{"import", "--from", "bolt://127.0.0.1:1", "--user", " sara"}, "--user"},
		{[]string{"import", "--from", "bolt://127.0.0.1:1", "extra"}, "unexpected arguments"},
	} {
		var out, errOut bytes.Buffer
		code := Main(t.Context(), tc.args, &out, &errOut, func(string) string { return "" })
		if code != 1 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}
