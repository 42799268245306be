package app

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"go.uber.org/fx/fxtest"
)

// TestTuneGC: the hot path's settings apply only where the operator's GOGC and GOMEMLIMIT
// do not.
func TestTuneGC(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	p, l := TuneGC(getenv, HotPathGCPercent, HotPathMemoryLimit)
	if !p || !l {
		t.Fatalf("TuneGC with neither variable set = %v, %v; want both set", p, l)
	}
	if got := debug.SetGCPercent(100); got != HotPathGCPercent {
		t.Errorf("GOGC after TuneGC = %d, want %d", got, HotPathGCPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != HotPathMemoryLimit {
		t.Errorf("memory limit after TuneGC = %d, want %d", got, HotPathMemoryLimit)
	}

	env["GOGC"], env["GOMEMLIMIT"] = "50", "1GiB"
	p, l = TuneGC(getenv, HotPathGCPercent, HotPathMemoryLimit)
	if p || l {
		t.Fatalf("TuneGC with GOGC and GOMEMLIMIT set = %v, %v; want neither overridden", p, l)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC = %d after TuneGC with GOGC set; want it untouched (100)", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("memory limit = %d after TuneGC with GOMEMLIMIT set; want it untouched", got)
	}
}

// TestProfileCPU: with CPU_PROFILE_DIR a service writes a CPU profile of its run, named for
// the service and the process, complete at stop.
func TestProfileCPU(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "prof")
	lc := fxtest.NewLifecycle(t)
	profileCPU(lc, Common{Service: "ingestor", CPUProfileDir: dir}, slog.New(slog.DiscardHandler))
	lc.RequireStart()
	lc.RequireStop()
	name := filepath.Join(dir, fmt.Sprintf("ingestor-%d.pprof", os.Getpid()))
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	// A CPU profile is a gzip-compressed protocol buffer.
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("%s: %d bytes, not a gzip-compressed profile", name, len(b))
	}
}
