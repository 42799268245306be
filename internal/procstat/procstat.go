// Package procstat reads what Linux's /proc says of CPU time: a process's and the whole
// machine's. The benchmarks use it to say where a run's CPU went; it reads nothing else.
package procstat

import (
	"fmt"
	"os"
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
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
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
