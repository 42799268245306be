package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestNeo4jPID: the bench takes the local Neo4j whose process was started for the URI's Bolt
// port (neo4j.sh exports it), from any of deploy/neo4j's pid files, and none for a pid file
// whose process is gone or serves another port.
func TestNeo4jPID(t *testing.T) {
	repo := t.TempDir()
	run := filepath.Join(repo, "var", "run")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	serve := func(port string) int { // a process started as neo4j.sh starts the launcher
		cmd := exec.Command("sleep", "60")
		cmd.Env = append(os.Environ(), "NEO4J_BOLT_PORT="+port)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd.Process.Pid
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	write := func(name string, pid int) {
		if err := os.WriteFile(filepath.Join(run, name), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dev, other := serve("7687"), serve("7741")
	write("neo4j.pid", dev)
	write("neo4j-scratch.pid", other)
	write("neo4j-old.pid", gone.Process.Pid)
	write("neo4j-self.pid", os.Getpid()) // alive, but not started for any port

	for _, c := range []struct {
		uri  string
		want int
	}{
		{"bolt://127.0.0.1:7687", dev},
		{"bolt://localhost", dev}, // Bolt's default port
		{"neo4j://127.0.0.1:7741", other},
		{"bolt://127.0.0.1:7742", 0},
		{"bolt://db.example:7687", 0}, // not this machine's
	} {
		r := &runner{cfg: Config{RepoDir: repo}}
		r.cfg.Endpoints.Neo4j.URI = c.uri
		if got := r.neo4jPID(); got != c.want {
			t.Errorf("neo4jPID for %s = %d, want %d", c.uri, got, c.want)
		}
	}
}
