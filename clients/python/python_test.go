// Package python_test checks the Python client in this directory: ruff and mypy on its
// source and tests, then its pytest suite — unit tests of the mapping and the tests against
// real stacks, the seed page's code among them — against two Engram stacks started here
// (the three service binaries on an embedded JetStream and the shared local Neo4j).
package python_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j"

	"github.com/engram-memory/engram/internal/auth"
	"github.com/engram-memory/engram/internal/events"
	"github.com/engram-memory/engram/internal/graph"
	"github.com/engram-memory/engram/internal/testenv"
)

// packageDir is this directory, where pyproject.toml is.
func packageDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the Python package")
	}
	return filepath.Dir(file)
}

// run runs python with args in the package directory and fails the test with its output.
func run(t *testing.T, python string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), python, args...)
	cmd.Dir = packageDir(t)
	cmd.Env = append(os.Environ(), append([]string{"PYTHONDONTWRITEBYTECODE=1"}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python %s: %v\n%s", strings.Join(args, " "), err, tail(out, 20000))
	}
	return string(out)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return append([]byte("…"), b[len(b)-n:]...)
	}
	return b
}

// TestPythonClient installs the package (editable, with its test extras) into a virtualenv
// under var/venv/, checks it with ruff and mypy, and runs its pytest suite against a
// production-like stack (multi-tenant mode and authentication on, HS256 JWTs and API keys,
// the hashing embedder EMBEDDER=hash:64 for vector search) and an open one (multi-tenant
// mode and authentication off, no embedder). pytest must run tests and skip none.
func TestPythonClient(t *testing.T) {
	t.Parallel()
	python := testenv.PythonPackage(t, "clients/python", "test")

	t.Run("ruff", func(t *testing.T) {
		run(t, python, nil, "-m", "ruff", "check", "--no-cache", ".")
		run(t, python, nil, "-m", "ruff", "format", "--check", "--no-cache", ".")
	})
	t.Run("mypy", func(t *testing.T) {
		run(t, python, nil, "-m", "mypy", "--cache-dir", t.TempDir())
	})
	t.Run("wheel", func(t *testing.T) {
		// The package builds as a wheel with its standard backend, typed, with httpx and
		// pydantic as its only runtime dependencies.
		dir := t.TempDir()
		run(t, python, nil, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", dir, ".")
		wheels, _ := filepath.Glob(filepath.Join(dir, "engram_memory-*.whl"))
		if len(wheels) != 1 {
			t.Fatalf("wheels built: %v", wheels)
		}
		z, err := zip.OpenReader(wheels[0])
		if err != nil {
			t.Fatal(err)
		}
		defer z.Close()
		files := map[string]*zip.File{}
		for _, f := range z.File {
			files[f.Name] = f
		}
		for _, want := range []string{"engram_memory/__init__.py", "engram_memory/py.typed", "engram_memory/sync.py"} {
			if files[want] == nil {
				t.Errorf("the wheel lacks %s", want)
			}
		}
		var requires []string
		for name, f := range files {
			if strings.HasPrefix(name, "tests/") {
				t.Errorf("the wheel holds the tests: %s", name)
			}
			if !strings.HasSuffix(name, ".dist-info/METADATA") {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			meta, _ := io.ReadAll(rc)
			rc.Close()
			for _, line := range strings.Split(string(meta), "\n") {
				if r, ok := strings.CutPrefix(line, "Requires-Dist: "); ok && !strings.Contains(r, "extra ==") {
					requires = append(requires, strings.Fields(r)[0])
				}
			}
		}
		slices.Sort(requires)
		if !slices.Equal(requires, []string{"httpx<1,>=0.27", "pydantic<3,>=2.6"}) {
			t.Errorf("runtime dependencies %q, want httpx and pydantic only", requires)
		}
	})
	t.Run("seed page", func(t *testing.T) {
		// The package's tests run a copy of the seed page; it must be the page itself. The
		// page lives in shared/, beside the repository, where there is one.
		copyPath := filepath.Join(packageDir(t), "tests", "seed", "multi-tenant-memory.txt")
		mine, err := os.ReadFile(copyPath)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(mine, []byte("async with MemoryClient(settings) as client:")) {
			t.Fatalf("%s is not the seed page", copyPath)
		}
		orig := filepath.Join(packageDir(t), "..", "..", "..", "shared", "seed", "multi-tenant-memory.txt")
		page, err := os.ReadFile(orig)
		switch {
		case errors.Is(err, os.ErrNotExist):
			t.Logf("no %s here: the copy is the reference", orig)
		case err != nil:
			t.Fatal(err)
		case !bytes.Equal(page, mine):
			t.Errorf("%s differs from the seed page %s", copyPath, orig)
		}
	})
	t.Run("pytest", func(t *testing.T) {
		env := stacks(t)
		junit := filepath.Join(t.TempDir(), "junit.xml")
		out := run(t, python, env, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--junitxml", junit)
		t.Logf("pytest: %s", lastLine(out))
		checkJUnit(t, junit)
	})
}

// stacks starts the two stacks, mints their credentials, and answers the environment the
// pytest suite reads (tests/stack/conftest.py); the nodes of every user the suite names
// are deleted from the shared Neo4j when the test ends.
func stacks(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	secret := make([]byte, 48)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "hs256")
	write(t, secretFile, secret)
	key, keyHash, err := auth.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	roKey, roHash, err := auth.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := json.Marshal([]auth.APIKeyEntry{
		{KeySHA256: keyHash, Name: "py-agent-key", Users: []string{"*"}, Scopes: []string{"read", "write"}},
		{KeySHA256: roHash, Name: "py-auditor-key", Users: []string{"*"}, Scopes: []string{"read"}},
	})
	keysFile := filepath.Join(dir, "apikeys.json")
	write(t, keysFile, keys)

	prod := testenv.StartStack(t, "AUTH_ENABLED=true", "AUTH_HS256_SECRET_FILE="+secretFile,
		"AUTH_API_KEYS_FILE="+keysFile, "MULTI_TENANT=true", "EMBEDDER=hash:64")
	open := testenv.StartStack(t, "MULTI_TENANT=false")

	agent := testenv.User(t, "agent")
	mint := func(sub string, users []string, scopes ...auth.Scope) string {
		tok, err := auth.SignHS256(secret, auth.TokenSpec{Subject: sub, Users: users, Scopes: scopes, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	usersFile := filepath.Join(dir, "users.txt")
	sharedFile := filepath.Join(dir, "shared.txt")
	write(t, usersFile, nil)
	write(t, sharedFile, nil)
	t.Cleanup(func() {
		raw, err := os.ReadFile(usersFile)
		if err != nil {
			t.Error(err)
			return
		}
		d := testenv.Neo4j(t)
		testenv.Cleanup(t, d, append(strings.Fields(string(raw)), agent)...)
		deleteShared(t, d, sharedFile)
	})
	return []string{
		"ENGRAM_TEST_INGESTOR_URL=" + prod.IngestorURL,
		"ENGRAM_TEST_QUERY_URL=" + prod.QueryURL,
		"ENGRAM_TEST_ADMIN_TOKEN=" + mint("py-admin", []string{"*"}, auth.AllScopes...),
		"ENGRAM_TEST_API_KEY=" + key,
		"ENGRAM_TEST_READONLY_API_KEY=" + roKey,
		"ENGRAM_TEST_AGENT_USER=" + agent,
		"ENGRAM_TEST_AGENT_TOKEN=" + mint("py-agent", []string{agent}, auth.ScopeRead, auth.ScopeWrite),
		"ENGRAM_TEST_OPEN_INGESTOR_URL=" + open.IngestorURL,
		"ENGRAM_TEST_OPEN_QUERY_URL=" + open.QueryURL,
		"ENGRAM_TEST_USERS_FILE=" + usersFile,
		"ENGRAM_TEST_SHARED_FILE=" + sharedFile,
		// The suite's own settings never come from the machine's environment.
		"ENGRAM_INGESTOR_URL=", "ENGRAM_QUERY_URL=", "ENGRAM_API_KEY=", "ENGRAM_BEARER_TOKEN=",
	}
}

// deleteShared deletes the shared tenant's nodes and the global tools the suite recorded
// ("id <id>", "tool <name>"): the shared tenant is one for the whole Neo4j, so only the
// suite's own nodes go.
func deleteShared(t *testing.T, d neo4j.DriverWithContext, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Error(err)
		return
	}
	var ids, tools []string
	for _, line := range strings.Split(string(raw), "\n") {
		if id, ok := strings.CutPrefix(line, "id "); ok {
			ids = append(ids, id)
		} else if tool, ok := strings.CutPrefix(line, "tool "); ok {
			tools = append(tools, tool)
		}
	}
	ctx := context.Background()
	for _, label := range graph.OwnedLabels {
		if _, err := neo4j.ExecuteQuery(ctx, d,
			"UNWIND $ids AS id MATCH (n:"+label+" {id: id}) WHERE n.owner = $owner DETACH DELETE n",
			map[string]any{"owner": events.SharedTenantToken, "ids": ids}, neo4j.EagerResultTransformer); err != nil {
			t.Errorf("delete the shared tenant's test nodes: %v", err)
		}
	}
	if _, err := neo4j.ExecuteQuery(ctx, d, "UNWIND $names AS name MATCH (tl:Tool {name: name}) DETACH DELETE tl",
		map[string]any{"names": tools}, neo4j.EagerResultTransformer); err != nil {
		t.Errorf("delete the tests' tools: %v", err)
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// checkJUnit fails the test unless pytest's report shows tests run, none failed and none
// skipped (a test that cannot reach its server fails; it is never skipped).
func checkJUnit(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var report struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Errors   int `xml:"errors,attr"`
			Skipped  int `xml:"skipped,attr"`
			Cases    []struct {
				Name    string    `xml:"name,attr"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(raw, &report); err != nil {
		t.Fatalf("pytest's junit report: %v", err)
	}
	var tests, bad, skipped int
	for _, s := range report.Suites {
		tests += s.Tests
		bad += s.Failures + s.Errors
		skipped += s.Skipped
		for _, c := range s.Cases {
			if c.Skipped != nil {
				t.Errorf("pytest skipped %s", c.Name)
			}
		}
	}
	if tests == 0 || bad > 0 || skipped > 0 {
		t.Errorf("pytest ran %d tests: %d failed, %d skipped", tests, bad, skipped)
	}
}
