package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// venvDir names a virtualenv after its requirement: var/venv/<requirement with every character
// outside [A-Za-z0-9._-] as "-">, e.g. var/venv/neo4j-agent-memory-0.8.0.
var venvUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// PythonVenv returns the python of a Python 3.11 virtualenv that has requirement (a pip
// requirement, e.g. "neo4j-agent-memory==0.8.0") installed from pip's configured index. It is
// created once under the repository's var/venv/ and reused by later tests and runs; a file lock
// keeps test processes running at once from building it twice. A missing python3.11 or a
// failed install fails the test with pip's output.
func PythonVenv(t testing.TB, requirement string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Trim(venvUnsafe.ReplaceAllString(strings.ReplaceAll(requirement, "==", "-"), "-"), "-")
	base := filepath.Join(root, "var", "venv")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, name)
	python := filepath.Join(dir, "bin", "python")
	marker := filepath.Join(dir, ".engram-installed")

	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock %s: %v", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()

	if b, err := os.ReadFile(marker); err == nil && string(b) == requirement {
		return python
	}
	interp, err := exec.LookPath("python3.11")
	if err != nil {
		t.Fatalf("python3.11 not found on PATH (needed to install %s for the test): install Python 3.11", requirement)
	}
	// A directory without the marker is a half-built venv (an interrupted run): start over.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(interp, "-m", "venv", dir).CombinedOutput(); err != nil {
		t.Fatalf("create the virtualenv %s: %v\n%s", dir, err, out)
	}
	cmd := exec.Command(python, "-m", "pip", "install", "--quiet", requirement)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip install %s into %s: %v\n%s", requirement, dir, err, out)
	}
	if err := os.WriteFile(marker, []byte(requirement), 0o644); err != nil {
		t.Fatal(err)
	}
	return python
}

// RunPython runs a Python script with args and returns its standard output; a failure fails
// the test with the script's standard error.
func RunPython(t testing.TB, python, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), python, append([]string{script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(script), err, tail(stderr.String(), 6000))
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("…%s", s[len(s)-n:])
	}
	return s
}
