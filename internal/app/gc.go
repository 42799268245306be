package app

import (
	"runtime/debug"
)

// The garbage collector's settings of a service on the hot path, unless the operator chose
// their own with Go's GOGC or GOMEMLIMIT.
//
// The ingestor's live heap is small (about 6 MB under load) and it allocates about 10 KB
// per write, so with Go's default GOGC of 100 it collected 40 times a second at 6,000
// writes/s: each cycle's fixed costs (stopping the world twice, waking the mark workers,
// sweeping) on two shared cores. With GOGC 400 it collects 12 times a second, its resident
// memory goes from 26 to 37 MB, and it served 1.36× the writes at c=32 in the same run
// (docs/BENCHMARKS.md, "Issue 17, session 16"). The memory limit bounds what the larger
// target could grow to when the live heap grows (a burst of large batches): near the limit
// the collector runs as often as it must, whatever GOGC says. (replay.BulkGC does the same
// for a replay, whose heap may grow with the batch.)
const (
	HotPathGCPercent   = 400
	HotPathMemoryLimit = 192 << 20 // under the 256 MiB limit of deploy/k8s/ingestor.yaml, with room for what the Go runtime does not count
)

// TuneGC sets GOGC to percent and the soft memory limit to limit, each only when the
// environment (getenv) does not set it. It returns what it set, for the log.
func TuneGC(getenv func(string) string, percent int, limit int64) (setPercent, setLimit bool) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
		setPercent = true
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(limit)
		setLimit = true
	}
	return setPercent, setLimit
}
