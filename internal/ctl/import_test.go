package ctl

import (
	"bytes"
	"strings"
	"testing"

	"github.com/engram-memory/engram/internal/testenv"
)

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
