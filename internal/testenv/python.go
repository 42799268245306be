package testenv

import (
	"crypto/sha256"
	"encoding/hex"
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
	name := strings.Trim(venvUnsafe.ReplaceAllString(strings.ReplaceAll(requirement, "==", "-"), "-"), "-")
	return pythonVenv(t, name, requirement, requirement)
}

// PythonPackage returns the python of a Python 3.11 virtualenv under var/venv/ that has the
// package in dir (relative to the repository root, e.g. "clients/python") installed editable
// with extras (e.g. "test"), its dependencies from pip's configured index. Editable, the venv
// sees every change of the package's source at once; it is built again when the package's
// pyproject.toml, its place or the extras change (the marker keeps their digest).
func PythonPackage(t testing.TB, dir string, extras ...string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(root, filepath.FromSlash(dir))
	pyproject, err := os.ReadFile(filepath.Join(pkg, "pyproject.toml"))
	if err != nil {
		t.Fatalf("python package %s: %v", dir, err)
	}
	target := pkg
	if len(extras) > 0 {
		target += "[" + strings.Join(extras, ",") + "]"
	}
	sum := sha256.Sum256(append(append(pyproject, 0), target...))
	key := "editable " + target + " " + hex.EncodeToString(sum[:])
	name := strings.Trim(venvUnsafe.ReplaceAllString(dir, "-"), "-") + "-editable"
	return pythonVenv(t, name, key, "--editable", target)
}

// pythonVenv makes (once per key) the virtualenv var/venv/<name> with pip install args.
func pythonVenv(t testing.TB, name, key string, args ...string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
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

	if b, err := os.ReadFile(marker); err == nil && string(b) == key {
		return python
	}
	interp, err := exec.LookPath("python3.11")
	if err != nil {
		t.Fatalf("python3.11 not found on PATH (needed to install %s for the test): install Python 3.11", strings.Join(args, " "))
	}
	// A directory without the marker is a half-built venv (an interrupted run), and one with
	// another key an outdated one: start over.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(interp, "-m", "venv", dir).CombinedOutput(); err != nil {
		t.Fatalf("create the virtualenv %s: %v\n%s", dir, err, out)
	}
	cmd := exec.Command(python, append([]string{"-m", "pip", "install", "--quiet"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pip install %s into %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	if err := os.WriteFile(marker, []byte(key), 0o644); err != nil {
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
