package procstat

import (
	"os"
	"strings"
	"testing"
	"time"
)

// burn keeps a core busy for d.
func burn(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
	}
	return n
}

// TestThreadsCPU: the threads named with a prefix account for the process's CPU time, and
// a prefix no thread has for none of it.
func TestThreadsCPU(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSpace(string(comm)) // a Go program's threads all carry its name
	burn(300 * time.Millisecond)
	pid := os.Getpid()
	threads, whole := ThreadsCPU(pid, name), CPU(pid)
	if threads < 0.2 || threads > whole+0.05 {
		t.Errorf("threads named %q used %.2f s, the process %.2f s: want at least the 0.3 s burnt, at most the whole", name, threads, whole)
	}
	if got := ThreadsCPU(pid, "no thread is called this"); got != 0 {
		t.Errorf("ThreadsCPU with a prefix no thread has = %.2f s, want 0", got)
	}
	if got := ThreadsCPU(0, name); got != 0 {
		t.Errorf("ThreadsCPU(0) = %.2f, want 0", got)
	}
}

// TestEnv: a variable the process started with is found with its value, one it did not have
// is not, and neither is a prefix of a name.
func TestEnv(t *testing.T) {
	pid := os.Getpid()
	path, ok := Env(pid, "PATH") // /proc/self/environ is the start's environment: set it earlier
	if !ok || path != os.Getenv("PATH") {
		t.Errorf("Env(PATH) = %q, %v; want %q, true", path, ok, os.Getenv("PATH"))
	}
	if v, ok := Env(pid, "PAT"); ok {
		t.Errorf("Env(PAT) = %q, true; want nothing (a prefix of PATH)", v)
	}
	if v, ok := Env(pid, "ENGRAM_NO_SUCH_VARIABLE"); ok {
		t.Errorf("Env of an unset variable = %q, true", v)
	}
}
