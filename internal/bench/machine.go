package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Machine describes where a run happened.
type Machine struct {
	CPU     string `json:"cpu"`
	NProc   int    `json:"nproc"`
	Memory  string `json:"memory"`
	OS      string `json:"os"`
	Go      string `json:"go"`
	Java    string `json:"java"`
	Neo4j   string `json:"neo4j"`
	NATS    string `json:"nats_server"`
	Load    string `json:"loadavg_start"`
	LoadEnd string `json:"loadavg_end"`
}

// DescribeMachine reads /proc and asks java for its version; fields it cannot learn say so.
func DescribeMachine(ctx context.Context) Machine {
	m := Machine{CPU: "unknown", NProc: runtime.NumCPU(), Memory: "unknown", Go: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH, Java: "unknown", Neo4j: "unknown", NATS: natsServerVersion()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if kb := meminfo("MemTotal"); kb > 0 {
		m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS += ", Linux " + strings.TrimSpace(string(b))
	}
	m.Load = loadavg()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(cctx, "java", "-version").CombinedOutput(); err == nil {
		if line, _, _ := strings.Cut(string(out), "\n"); line != "" {
			m.Java = strings.TrimSpace(line)
		}
	}
	return m
}

func natsServerVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/nats-io/nats-server/v2" {
			return d.Version
		}
	}
	return "unknown"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// meminfo returns a /proc/meminfo field in KiB, 0 when unknown.
func meminfo(field string) int64 {
	return procField("/proc/meminfo", field)
}

// procField reads "Field:   1234 kB" from a /proc file, 0 when absent.
func procField(path, field string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			return 0
		}
		n, _ := strconv.ParseInt(fs[0], 10, 64)
		return n
	}
	return 0
}

// PeakRSS is a process's peak resident set size (VmHWM) in bytes, 0 when unknown.
func PeakRSS(pid int) int64 {
	return procField(fmt.Sprintf("/proc/%d/status", pid), "VmHWM") * 1024
}
