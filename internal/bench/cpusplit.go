package bench

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/engram-memory/engram/internal/procstat"
)

// cpuSplit is where the machine's CPU went while a step ran: the stack's processes the driver
// knows, the development Neo4j (when it can find it), the driver's own process (the load it
// offers, its probes, and NATS when the driver embeds it), and everything else.
type cpuSplit struct {
	names []string
	pids  []int
	at    []float64
	self  float64
	busy  float64
	start time.Time

	jvm      int // the Neo4j's index in pids, or -1
	jit, gcs float64
}

// The JVM's threads by name (Linux keeps 15 bytes of it): HotSpot's compilers, and its
// collectors' workers with the VM thread that runs their pauses (and a serial collector).
var (
	jitThreads = []string{"C1 CompilerThre", "C2 CompilerThre"}
	gcThreads  = []string{"GC Thread#", "G1 ", "VM Thread"}
)

// startCPUSplit takes the first reading of the stack's services (those started as processes)
// and of Neo4j.
func (r *runner) startCPUSplit(services ...string) *cpuSplit {
	c := &cpuSplit{jvm: -1}
	for _, name := range services {
		if svc, ok := r.stack.services[name]; ok && svc.Proc != nil && svc.Proc.Pid() > 0 {
			c.names, c.pids = append(c.names, name), append(c.pids, svc.Proc.Pid())
		}
	}
	if pid := r.neo4jPID(); pid > 0 {
		c.names, c.pids = append(c.names, "Neo4j"), append(c.pids, pid)
		c.jvm = len(c.pids) - 1
		c.jit, c.gcs = procstat.ThreadsCPU(pid, jitThreads...), procstat.ThreadsCPU(pid, gcThreads...)
	}
	for _, pid := range c.pids {
		c.at = append(c.at, procstat.CPU(pid))
	}
	c.self, c.busy, c.start = procstat.CPU(os.Getpid()), procstat.MachineBusy(), time.Now()
	return c
}

// note says, per process, the CPU seconds since the first reading and the microseconds per
// unit of work (n of them, e.g. writes accepted).
func (c *cpuSplit) note(n int64, unit string) string {
	if n <= 0 {
		return ""
	}
	per := func(s float64) string { return fmt.Sprintf("%.1f s (%.0f µs per %s)", s, s*1e6/float64(n), unit) }
	var parts []string
	known := 0.0
	for i, pid := range c.pids {
		s := procstat.CPU(pid) - c.at[i]
		known += s
		part := c.names[i] + " " + per(s)
		if i == c.jvm {
			// A JVM that is still compiling runs slower and takes the CPU the rest need: a
			// freshly started Neo4j's compilers use minutes of CPU under load.
			part += fmt.Sprintf(" (its JIT compiler %.1f s, its garbage collector %.1f s)",
				procstat.ThreadsCPU(pid, jitThreads...)-c.jit, procstat.ThreadsCPU(pid, gcThreads...)-c.gcs)
		}
		parts = append(parts, part)
	}
	self := procstat.CPU(os.Getpid()) - c.self
	known += self
	parts = append(parts, "the driver (offered load, probes, embedded NATS) "+per(self))
	busy := procstat.MachineBusy() - c.busy
	parts = append(parts, "other processes "+per(max(0, busy-known)))
	return fmt.Sprintf("CPU during the step: %s; of %.0f core-seconds the machine had (%d cores), busy %.0f %%",
		strings.Join(parts, ", "), time.Since(c.start).Seconds()*float64(runtime.NumCPU()), runtime.NumCPU(),
		100*busy/(time.Since(c.start).Seconds()*float64(runtime.NumCPU())))
}
