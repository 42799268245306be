package replay

import (
	"os"
	"runtime/debug"
)

// BulkGCPercent is the garbage collector's target while a replay runs (BulkGC).
const BulkGCPercent = 400

// BulkGC has the garbage collector run less often, for a process whose work is a replay: a
// replay allocates some 10 KB per event it decodes and keeps little of it, so with Go's
// default (GOGC=100) a fifth of its CPU went to collecting. At BulkGCPercent the heap grows
// to about five times what is live (a few hundred MB for a 1M-event replay) and the process
// spends about a fifth less CPU per event — CPU that Neo4j, on the same cores, gets instead.
// A GOGC in the environment is left alone. The returned function restores the setting.
func BulkGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(BulkGCPercent)
	return func() { debug.SetGCPercent(old) }
}
