package projection

import (
	"time"

	"github.com/engram-memory/engram/internal/events"
)

// toolTally collects what the tool calls created in a segment add to the global Tool
// aggregates, so that the last block of its write (writeToolTally) writes them all.
//
// Tool nodes are the only nodes tenants share, so every partition's transactions update the
// same few of them. An update takes the Tool's write lock, held until the transaction
// commits; taken when the tool call is applied (or, before, at the start of the batch) it
// makes every other partition whose batch has a call of that tool wait for the whole of this
// transaction, and the partitions' transactions run one after the other. Taken in the last
// statement, the lock is held only for the commit. The updates are sums (and a maximum), so
// adding them later in the same transaction gives the same aggregates; the locks are taken in
// name order, so concurrent transactions queue instead of deadlocking.
type toolTally struct {
	byName map[string]*toolDelta
}

type toolDelta struct {
	calls, successful, failed, durationMS int64
	lastUsed                              time.Time
	callIDs                               []any
}

// add counts a tool call whose ToolCall node the transaction created.
func (t *toolTally) add(r Record) error {
	d, err := dataAs[events.ToolCallRecorded](r)
	if err != nil {
		return err
	}
	if t.byName == nil {
		t.byName = map[string]*toolDelta{}
	}
	td := t.byName[d.ToolName]
	if td == nil {
		td = &toolDelta{}
		t.byName[d.ToolName] = td
	}
	td.calls++
	switch d.Status {
	case "success":
		td.successful++
	case "error", "timeout":
		td.failed++
	}
	if d.DurationMS != nil {
		td.durationMS += *d.DurationMS
	}
	if at := r.Event.Time; td.lastUsed.IsZero() || at.After(td.lastUsed) {
		td.lastUsed = at
	}
	td.callIDs = append(td.callIDs, d.ToolCallID)
	return nil
}

// rows are the rows of writeToolTally, one per tool in name order, for what was added.
func (t *toolTally) rows() []any {
	rows := make([]any, 0, len(t.byName))
	for _, name := range sortedKeys(t.byName) {
		td := t.byName[name]
		rows = append(rows, map[string]any{
			"name": name, "calls": td.calls, "successful": td.successful, "failed": td.failed,
			"duration_ms": td.durationMS, "last_used_at": graphTime(td.lastUsed), "call_ids": td.callIDs,
		})
	}
	return rows
}
