// Package procstat reads what Linux's /proc says of CPU time — a process's, some of its
// threads', the whole machine's — and of the environment a process started with. The
// benchmarks use it to say where a run's CPU went and which local process served them.
package procstat

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// CPU is the CPU time, in seconds, a process used so far (0 when unknown).
func CPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	return statCPU(s[strings.LastIndexByte(s, ')'):])
}

// statCPU reads utime and stime from a stat line's part after the command's closing
// parenthesis.
func statCPU(rest string) float64 {
	f := strings.Fields(strings.TrimPrefix(rest, ")"))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks; 100 per second on Linux
}

// MachineBusy is the CPU time, in seconds over all cores, the machine spent busy so far
// (/proc/stat; 0 when unknown).
func MachineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	busy := 0.0
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		if i < len(f) {
			x, _ := strconv.ParseFloat(f[i], 64)
			busy += x
		}
	}
	return busy / 100 // clock ticks
}

// ThreadsCPU is the CPU time, in seconds, that the threads of a process whose name (Linux's
// comm, at most 15 bytes) begins with one of the prefixes used so far; threads that ended
// are not counted. The benchmarks read a JVM's compiler and collector threads with it.
func ThreadsCPU(pid int, prefixes ...string) float64 {
	if pid <= 0 {
		return 0
	}
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	total := 0.0
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
		if err != nil {
			continue // the thread ended
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		comm := s[open+1 : end]
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(comm, p) }) {
			continue
		}
		total += statCPU(s[end:])
	}
	return total
}

// Env is the value of name in the environment a process started with (/proc/<pid>/environ),
// and whether it was set; the benchmarks find which local Neo4j serves a port by it.
func Env(pid int, name string) (string, bool) {
	if pid <= 0 {
		return "", false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return "", false
	}
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}
