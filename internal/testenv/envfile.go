package testenv

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// ReadEnvFiles reads KEY=VALUE lines of environment files (deploy/production/*.env), skipping
// comments and blank lines; a later file's value wins. A line that is not KEY=VALUE fails
// the test.
func ReadEnvFiles(t testing.TB, files ...string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not KEY=VALUE", f, line)
			}
			env[k] = v
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return env
}
